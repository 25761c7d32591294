"""repeats.csv read back (step: a `--repeats auto` sweep's decisions on disk -> a frame for the sweep's --resume and
the report), through the results reader's own record and cell checks (bench/results/io.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.core import config
from bench.core.repeats_columns import READABLE_REPEATS_VERSIONS, REPEATS_COLUMNS, REPEATS_NUMERIC
from bench.results.io import ResultsError, checked_rows
from bench.results.records import parse_records

if TYPE_CHECKING:
    import pandas as pd


def load_repeats(path: str | Path) -> pd.DataFrame:
    """A repeats.csv as a frame (numbers parsed, `config_id` / `config_label`), a config's last row winning."""
    import pandas as pd
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=[*REPEATS_COLUMNS, "config_id", "config_label"])
    header, records = parse_records(path)
    if header != REPEATS_COLUMNS or {cells[-1] for _, cells in records} - {str(v) for v in READABLE_REPEATS_VERSIONS}:
        raise ResultsError(f"{path}: not a repeats.csv this dnnbench reads (other columns or schema_version)")
    frame = pd.DataFrame(checked_rows(path, header, records, REPEATS_NUMERIC), columns=header, dtype=str)
    frame[REPEATS_NUMERIC] = frame[REPEATS_NUMERIC].apply(lambda cells: pd.to_numeric(cells.replace("", None)))
    frame["config_id"] = [config.identity(row) for row in frame.to_dict("records")]
    frame["config_label"] = [config.label(row) for row in frame.to_dict("records")]
    return frame.drop_duplicates(subset="config_id", keep="last").reset_index(drop=True)
