"""bench/core/repeats_columns.py: results/README.md's repeats.csv columns are the table's."""

from bench.core.repeats_columns import markdown_docs
from tests.helpers import ROOT


def test_results_readme_documents_the_repeats_columns():
    text = (ROOT / "results" / "README.md").read_text()
    marker = "tests/core/test_repeats_columns.py checks it -->\n"
    generated = text.split(marker)[1].split("<!-- end of repeats columns")[0]
    assert generated == markdown_docs(), "results/README.md is stale: python -m bench.core.repeats_columns"
