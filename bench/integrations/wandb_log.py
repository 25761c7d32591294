"""Weights & Biases (step: a run's row and a sweep's CSV -> W&B runs): one run per config through Lightning's
WandbLogger, and one summary run per sweep read through the one results reader.

Offline by default when no API key is set: runs land in <sweep>/wandb/ ready for
`wandb sync <sweep>/wandb/offline-run-*` (from any folder). Nothing here may fail a sweep: callers catch and warn.
Names, groups and tags come from the config identity (bench.core.config), so two configs never share a name.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

from bench.core.columns import Status

DEFAULT_PROJECT = os.environ.get("WANDB_PROJECT", "dnnbench")
TAG_LIMIT = 64  # W&B refuses longer tags
INTEGERS = ("num_devices", "num_nodes", "batch_size", "seed", "repeat", "schema_version",
            "infer_batch_size")  # config cells, as numbers

# The sweep summary run's native W&B charts: one bar per config (the table's `config_label`).
CHARTS = (("train_samples_per_s", "train samples/s"), ("infer_samples_per_s", "inference samples/s"),
          ("time_to_target_s", "time to target (s)"), ("peak_rss_mb", "peak RSS (MiB)"))

CHECK_TIMEOUT_S = 5.0  # how long a sweep waits to learn whether W&B answers
INIT_TIMEOUT_S = "15"  # wandb.init's own wait (90 s by default) should W&B go away after that check


def online_problem(timeout_s: float = CHECK_TIMEOUT_S) -> str | None:
    """Why online logging would fail now (no API key, W&B unreachable, key rejected); None when W&B answers.

    wandb.init retries an unreachable server for 90 s and then fails the run it is in, so a sweep asks once, at
    the start, within `timeout_s` whatever DNS or the network do, and logs offline instead when the answer is no.
    """
    import threading

    os.environ.setdefault("WANDB_SILENT", "true")  # before W&B's first look at the environment, which it keeps
    answer: list[str | None] = [f"no answer within {timeout_s:g} s"]

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


def service_gone() -> bool:
    """Whether this process's W&B service is known to be dead (the sweep's shared one, started by
    bench.launch.child_process.share_wandb_service, crashed or was killed)."""
    try:
        from wandb.sdk import wandb_setup

        connection = getattr(wandb_setup._singleton, "_connection", None)
        process = getattr(getattr(connection, "_proc", None), "_process", None)
        return process is not None and process.poll() is not None
    except Exception:  # another wandb layout: nothing known
        return False


def forget_service() -> None:
    """Forget the W&B service this process was told to use: the next wandb.init starts its own.

    When the sweep's shared service dies, each later run would fail to connect to it (online and offline alike),
    the sweep's summary too, and W&B's exit hook would raise on it. This drops the address the children inherit
    (WANDB_SERVICE), the process's W&B state that holds the dead connection, and that connection's exit hook.
    """
    os.environ.pop("WANDB_SERVICE", None)
    try:
        from wandb.sdk import wandb_setup

        singleton, wandb_setup._singleton = wandb_setup._singleton, None
        cleanup = getattr(getattr(singleton, "_connection", None), "_cleanup", None)
        if cleanup is not None:
            cleanup()  # unregisters its atexit teardown, which would talk to the dead service
    except Exception:  # another wandb layout: the environment variable alone still helps the next run
        pass


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """W&B summaries want plain scalars; empty and NaN cells are left out rather than logged as zero."""
    clean = {}
    for key, value in row.items():
        if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
            continue
        clean[key] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return clean


def identity_tags(config) -> list[str]:
    """One tag per identity axis, spelled as the config's label spells it (bench.core.config.label; settings left at
    their defaults are left out there and here)."""
    from bench.core import config as cfg

    columns = config.columns()
    axes = [axis for axis in cfg.IDENTITY if axis not in ("num_devices", "num_nodes")]  # both are in `device`
    tags = [cfg.label(columns, leave_out=tuple(other for other in axes if other != axis)) for axis in axes]
    return [tag[:TAG_LIMIT] for tag in tags if tag]


def run_logger(config, save_dir: Path):
    """A WandbLogger for one RunConfig (None when disabled), grouped by sweep, named and tagged by its identity."""
    if config.wandb == "disabled":
        return None
    from lightning.pytorch.loggers import WandbLogger

    os.environ.setdefault("WANDB_SILENT", "true")
    columns = config.columns()
    return WandbLogger(project=config.wandb_project, entity=config.wandb_entity or None,
                       group=config.sweep_name or None, name=config.label(), save_dir=str(save_dir),
                       mode=config.wandb, tags=identity_tags(config),
                       config=_clean(config.to_dict() | columns) | {"config_label": config.label()},
                       job_type="run", reinit="finish_previous", settings=run_settings())


def run_settings() -> dict[str, Any]:
    """A run's W&B settings: the installed packages (requirements.txt) are saved by the sweep's summary run only,
    once: every run of a sweep shares its environment, and listing them cost each run ~0.2 s of a 2-core CPU
    (W&B releases before the setting existed save them per run, as before)."""
    import wandb

    return {"x_save_requirements": False} if "x_save_requirements" in getattr(wandb.Settings, "model_fields", {}) \
        else {}


def summary_of(row) -> dict[str, Any]:
    """A run's W&B summary: its results.csv row, cell for cell as the writer writes it (numbers as the CSV's numbers,
    `status` as the CSV's `ok`, `started_at` the run's start); empty number cells are left out, not logged as 0."""
    from bench.core.columns import NUMERIC
    from bench.core.row import RunRow
    from bench.results.io import as_cells, flatten

    cells = as_cells(flatten(row) if isinstance(row, RunRow) else row)
    summary: dict[str, Any] = {}
    for column, cell in cells.items():
        if column in INTEGERS or column in NUMERIC:
            if cell != "":
                summary[column] = int(float(cell)) if column in INTEGERS else float(cell)
        else:
            summary[column] = cell
    return summary


def finish_run(logger, row, artifact_dir: Path | None = None) -> None:
    """The finished result row (a RunRow, or a row's cells) becomes the run's summary, its sample grids / attention
    maps images; a run that ended in `error` or `timeout` is marked failed in W&B."""
    import wandb

    from bench.core.columns import Status

    experiment = logger.experiment
    images = sorted(Path(artifact_dir).glob("*.png")) if artifact_dir and Path(artifact_dir).is_dir() else []
    if images:
        experiment.log({f"artifacts/{image.stem}": wandb.Image(str(image), caption=image.stem) for image in images})
    summary = summary_of(row)
    experiment.summary.update(summary)
    status = summary.get("status")
    experiment.finish(exit_code=0 if status not in {s.value for s in Status} or Status(status).measured else 1)


def sweep_plan(flags: dict[str, Any], configs) -> dict[str, Any]:
    """The sweep summary run's config: the `run` command line, its flags and the planned runs (labels), so the
    summary run is the sweep's plan in the group, not a blank run."""
    import shlex

    plan = {name: value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
            for name, value in flags.items() if not callable(value)}
    return plan | {"command": shlex.join(["dnnbench", *sys.argv[1:]]), "planned_runs": len(configs),
                   "run_labels": ", ".join(config.label() for config in configs)}


def results_table(csv_path: Path):
    """The sweep's rows as a wandb.Table: numeric columns as numbers (charts need them), empty cells as None."""
    from bench.core.columns import COLUMNS, NUMERIC
    from bench.results.io import load_results

    return as_table(load_results(csv_path), COLUMNS, NUMERIC)


def inference_table(csv_path: Path):
    """The inference.csv beside the results (one row per run x backend x batch size) as a wandb.Table; None
    without one."""
    from bench.core.inference_columns import INFERENCE_COLUMNS, INFERENCE_NUMERIC
    from bench.results.io import inference_beside, load_inference

    frame = load_inference(inference_beside(csv_path))
    return None if frame.empty else as_table(frame, INFERENCE_COLUMNS, INFERENCE_NUMERIC)


def as_table(frame, names: list[str], numeric: list[str]):
    import pandas as pd
    import wandb

    from bench.results.io import format_cell

    columns = {"config_label": list(frame["config_label"])}
    for column in names:
        cells = frame[column] if column in frame else pd.Series([None] * len(frame))  # absent in older schemas
        if column in INTEGERS:
            columns[column] = [None if pd.isna(v) else int(v) for v in pd.to_numeric(cells, errors="coerce")]
        elif column in numeric:
            columns[column] = [None if pd.isna(v) else float(v) for v in cells]
        else:
            columns[column] = [format_cell(v) for v in cells]
    return wandb.Table(columns=list(columns), data=[list(row) for row in zip(*columns.values())])


def log_sweep(csv_path: Path, sweep_dir: Path, sweep_name: str, mode: str, project: str = DEFAULT_PROJECT,
              entity: str | None = None, plan: dict[str, Any] | None = None) -> None:
    """One summary run, configured with the sweep's `plan` (its flags and runs) and tagged `sweep`: the results (and
    the inference backends' rows, where there are) as wandb.Tables and the report's plots as images."""
    if mode == "disabled":
        return
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    table, inference = results_table(csv_path), inference_table(csv_path)
    if service_gone():
        forget_service()
    attempts = (mode, "offline")  # W&B gone since the start: offline (again, if the service was what died)
    for number, attempt in enumerate(attempts):
        try:
            run = wandb.init(project=project, entity=entity or None, group=sweep_name or None,
                             name=f"{sweep_name}-summary", job_type="summary", dir=str(sweep_dir),
                             config=_clean(plan or {}), tags=["sweep", sweep_name[:TAG_LIMIT]] if sweep_name
                             else ["sweep"],
                             mode=attempt,  # type: ignore[arg-type]
                             reinit="finish_previous", settings=wandb.Settings(silent=True))
            break
        except Exception as exc:
            if number == len(attempts) - 1:
                raise
            print(f"dnnbench: W&B {attempt} logging failed for the sweep summary ({exc})".splitlines()[0],
                  file=sys.stderr)
            forget_service()
    payload: dict[str, Any] = {"results": table} | ({"inference": inference} if inference is not None else {})
    labels = table.get_column("config_label")
    for column, title in CHARTS:  # W&B's own bar charts, one bar per measured config, beside the report's PNGs
        bars = [[label, value] for label, value in zip(labels, table.get_column(column)) if value is not None]
        payload[f"charts/{column}"] = wandb.plot.bar(wandb.Table(columns=["config_label", column], data=bars),
                                                     "config_label", column, title=title)
    for image in sorted(Path(sweep_dir).glob("*.png")):
        payload[f"plots/{image.stem}"] = wandb.Image(str(image))
    run.log(payload)
    statuses = table.get_column("status")
    run.summary.update({"runs": len(statuses), "ok": statuses.count(Status.OK.value)})
    run.finish()
