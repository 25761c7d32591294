"""Weights & Biases (step: a run's row and a sweep's CSV -> W&B runs): one run per config through Lightning's
WandbLogger, and one summary run per sweep read through the one results reader.

Offline by default when no API key is set: runs land in <sweep>/wandb/ ready for `wandb sync`.
Nothing here may fail a sweep: callers catch and warn.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

PROJECT = os.environ.get("WANDB_PROJECT", "dnnbench")
CHECK_TIMEOUT_S = 5.0  # how long a sweep waits to learn whether W&B answers
INIT_TIMEOUT_S = "15"  # wandb.init's own wait (90 s by default) should W&B go away after that check


def online_problem(timeout_s: float = CHECK_TIMEOUT_S) -> str | None:
    """Why online logging would fail now (no API key, W&B unreachable, key rejected); None when W&B answers.

    wandb.init retries an unreachable server for 90 s and then fails the run it is in, so a sweep asks once, at
    the start, within `timeout_s` whatever DNS or the network do, and logs offline instead when the answer is no.
    """
    import threading

    answer = [f"no answer within {timeout_s:g} s"]

    def ask() -> None:
        answer[0] = _ask_wandb(timeout_s)

    asking = threading.Thread(target=ask, daemon=True)  # a hung DNS lookup must not hold the sweep
    asking.start()
    asking.join(timeout_s + 1)
    return answer[0]


def _ask_wandb(timeout_s: float) -> str | None:
    """The viewer query with the credentials wandb.init would use (its own lookup: env, .netrc, settings)."""
    import base64
    import json
    import urllib.error
    import urllib.request

    from wandb.sdk import wandb_setup
    from wandb.sdk.lib import wbauth

    base = (os.environ.get("WANDB_BASE_URL") or wandb_setup.singleton().settings.base_url).rstrip("/")
    try:
        auth = wbauth.authenticate_session(host=base, source="dnnbench", prompt=False, update_session=False)
    except Exception as exc:
        return f"W&B credentials unusable: {exc}".splitlines()[0]
    if auth is None:
        return "no W&B API key: set WANDB_API_KEY or run `wandb login`"
    headers = {"Content-Type": "application/json"}
    if key := getattr(auth, "api_key", None):
        headers["Authorization"] = "Basic " + base64.b64encode(f"api:{key}".encode()).decode()
    query = json.dumps({"query": "query { viewer { id } }"}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{base}/graphql", query, headers), timeout=timeout_s) as r:
            viewer = (json.load(r).get("data") or {}).get("viewer")
    except urllib.error.HTTPError as exc:
        return f"{base} rejected the API key (HTTP {exc.code})" if exc.code in (401, 403) else \
            f"{base} answered HTTP {exc.code}"
    except (OSError, ValueError) as exc:  # refused, no route, DNS, timeout, not JSON
        return f"{base} is unreachable ({getattr(exc, 'reason', None) or exc})"
    return None if viewer or not key else f"{base} rejected the API key"


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """W&B summaries want plain scalars; empty and NaN cells are left out rather than logged as zero."""
    clean = {}
    for key, value in row.items():
        if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
            continue
        clean[key] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return clean


def run_logger(config, save_dir: Path):
    """A WandbLogger for one RunConfig (None when disabled), grouped by sweep, named and tagged by its identity."""
    if config.wandb == "disabled":
        return None
    from lightning.pytorch.loggers import WandbLogger

    os.environ.setdefault("WANDB_SILENT", "true")
    columns = config.columns()
    tags = [str(columns[k]) for k in ("model", "datamodule", "device", "precision", "batch_size")]
    return WandbLogger(project=PROJECT, group=config.sweep_name or None, name=config.label(),
                       save_dir=str(save_dir), mode=config.wandb, tags=tags,
                       config=_clean(config.to_dict() | columns), job_type="run", reinit="finish_previous")


def finish_run(logger, row: dict[str, Any]) -> None:
    """The finished result row becomes the run's summary."""
    experiment = logger.experiment
    experiment.summary.update(_clean(row))
    experiment.finish()


def log_sweep(csv_path: Path, sweep_dir: Path, sweep_name: str, mode: str) -> None:
    """One summary run: the results as a wandb.Table and the report's plots as images."""
    if mode == "disabled":
        return
    import pandas as pd
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    run = wandb.init(project=PROJECT, group=sweep_name or None, name=f"{sweep_name}-summary", job_type="summary",
                     dir=str(sweep_dir), mode=mode, reinit="finish_previous")
    payload: dict[str, Any] = {"results": wandb.Table(dataframe=frame)}
    for image in sorted(Path(sweep_dir).glob("*.png")):
        payload[f"plots/{image.stem}"] = wandb.Image(str(image))
    run.log(payload)
    run.summary.update({"runs": len(frame), "ok": int((frame["status"] == "ok").sum())})
    run.finish()
