"""Results files (step: rows <-> the one CSV reader and writer, and what a file says about where it was made)."""
