"""summary.md shows a model name or a run's message as inert text, as index.html does: no heading, link, remote
image or raw HTML can be injected through a results file."""

import re

from bench.cli import main
from tests.results_fixtures import make_row, write_csv

INJECTED = "evil\n# Injected heading\n![x](http://example.invalid/x.png) <script>alert(1)</script> | cell"


def test_a_model_name_or_message_cannot_inject_markdown_or_html_into_summary_md(tmp_path):
    rows = [make_row(), make_row(model=INJECTED), make_row(model="mlp", status="error", message=INJECTED)]
    path = write_csv(tmp_path / "results.csv", rows)
    assert main(["report", str(path), "--out", str(tmp_path / "report")]) == 0
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "evil" in summary  # the name is shown, escaped
    lines = summary.splitlines()
    assert not any(line.startswith("# Injected") for line in lines)  # no heading of its own
    assert not re.search(r"(?<!\\)\]\(http", summary)  # no link or remote image: its `]` is escaped
    assert "<script>" not in summary and "&lt;script&gt;" in summary
    shown = [line for line in lines if "evil" in line]
    assert shown and all(line.startswith("| ") and "\\| cell" in line for line in shown)  # one row, one cell
