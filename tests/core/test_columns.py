"""bench/core/columns.py: every column documented in results/README.md (generated from the table) and the statuses."""

import re

from bench.core.columns import COLUMNS, Status, markdown_docs
from tests.helpers import ROOT


def test_measured_outcomes_are_not_failures():
    assert [s.value for s in Status if not s.measured] == ["timeout", "error"]


def test_every_column_is_documented():
    text = (ROOT / "results" / "README.md").read_text()
    documented = set(re.findall(r"`([a-z0-9_]+)`", text))
    assert not [c for c in COLUMNS if c not in documented]
    generated = text.split("tests/core/test_columns.py checks it -->\n")[1].split("<!-- end of columns -->")[0]
    assert generated == markdown_docs(), "results/README.md is stale: regenerate it with python -m bench.core.columns"
