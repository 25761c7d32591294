"""CI: every row of the given dnnbench CSVs ended `ok` (results.csv rows, or inference.csv rows by backend and batch).

    python .ci/all_ok.py RESULTS_OR_INFERENCE_CSV ...

`dnnbench run` exits 0 when every run measured something, and an `unsupported` or `oom` row is a measurement; a CI
step that must see every model (and backend) work needs `ok` on every row. Prints one line per row that is not,
with its message, and exits 1; a file that is missing, unreadable or has no rows fails too (no rows proves nothing).
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.core.columns import Status
from bench.core.errors import ResultsError
from bench.results.io import load_inference, load_results


def failures(path: Path) -> list[str]:
    """One line per row of `path` whose status is not ok; a line for the file itself when it has no rows."""
    if not path.is_file():
        return [f"{path}: no such file"]
    inference = path.name == "inference.csv"
    try:
        frame = load_inference(path) if inference else load_results(path)
    except ResultsError as exc:
        return [str(exc)]
    if frame.empty:
        return [f"{path}: no rows"]
    lines = []
    for row in frame[frame["status"] != Status.OK.value].to_dict("records"):
        what = row["config_label"] + (f" {row['backend']} batch {int(row['infer_batch_size'])}" if inference else "")
        lines.append(f"{path}: {what}: {row['status']}: {row['message']}")
    return lines


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python .ci/all_ok.py RESULTS_OR_INFERENCE_CSV ...", file=sys.stderr)
        return 2
    lines = [line for arg in argv for line in failures(Path(arg))]
    for line in lines:
        print(line, file=sys.stderr)
    if not lines:
        print(f"all_ok: every row ok in {', '.join(argv)}")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
