"""A series over commits (step: one config's rows on one machine and software stack -> the values `dnnbench history`
judges commit by commit; shared by history.py, which finds its steps, and history_page.py, which draws it)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.core.columns import Column


@dataclass
class Series:
    """One config on one machine and software stack: its rows, and the columns judged over commits."""

    label: str
    rows: pd.DataFrame  # ordered by commit, then started_at; `commit` and `commit_order` columns added
    gated: list[str]
    by_name: dict[str, Column]

    def commits(self) -> list[str]:
        return list(dict.fromkeys(self.rows["commit"]))

    def values(self, column: str) -> list[list[float]]:
        """Each commit's values of a column (its rows), in commit order."""
        return [self.rows.loc[self.rows["commit"] == c, column].dropna().astype(float).tolist() for c in self.commits()]

    def direction(self, column: str) -> str | None:
        better = self.by_name[column].better
        return (self.rows["metric_direction"].iloc[0] or "max") if better == "row" else better
