"""Reports and compare (step: results read back -> tables, charts, pages, and the regression gate)."""
