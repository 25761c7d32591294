"""Provenance (step: the environment columns of rows read back -> where and with what they ran, for the report's
header, and the facts in which two results differ, for compare's warnings)."""

from __future__ import annotations

# Report header and compare warnings: (what, column) of the facts that make two results comparable.
PROVENANCE = (("host", "hostname"), ("device", "device_name"), ("CPU", "cpu_model"), ("CPU threads", "cpu_threads"),
              ("torch threads", "torch_threads"), ("GPU driver", "gpu_driver"), ("torch", "torch_version"),
              ("lightning", "lightning_version"), ("CUDA", "cuda_version"), ("cuDNN", "cudnn_version"),
              ("commit", "git_commit"), ("profile", "profile"), ("environment variables", "env_vars"))
MUST_MATCH = ("hostname", "device_name", "cpu_model", "torch_version", "lightning_version", "cuda_version",
              "cudnn_version")


def distinct(frame, column: str) -> list[str]:
    """The distinct non-empty values of a column of a results frame, in order of appearance ([] if absent)."""
    if column not in frame:
        return []
    values = (str(v) for v in frame[column].dropna() if str(v) not in ("", "{}"))
    return list(dict.fromkeys(values))


def provenance(frame) -> dict[str, list[str]]:
    """What the rows say about where and with what they ran: {fact: distinct values}, for the report header."""
    facts = {}
    started = sorted(distinct(frame, "started_at"))
    if started:
        facts["date"] = [started[0]] if started[0] == started[-1] else [f"{started[0]} to {started[-1]}"]
    for name, column in PROVENANCE:
        values = distinct(frame, column)
        facts[name] = [v.removesuffix(".0") for v in values] if column.endswith("threads") else values
    return facts


def differences(base, new) -> list[str]:
    """The machine and software facts in which two results frames differ (compare warns: not like for like)."""
    found = []
    for column in MUST_MATCH:
        before, after = distinct(base, column), distinct(new, column)
        if before and after and set(before) != set(after):
            found.append(f"{column} differs: {', '.join(before)} vs {', '.join(after)}")
    return found
