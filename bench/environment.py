"""Environment capture (step: what the row says about the machine and software it ran on)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

CODE_PATHS = ["bench", "lightning_modules", "datamodules", "pyproject.toml", "constraints.txt"]


def git_commit() -> str:
    """HEAD's short hash, with `-dirty` when the code (not results) differs from it: the row's code is not HEAD's."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
                                 cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{commit}-dirty" if commit and changed else commit


def environment(device: str) -> dict[str, Any]:
    """The environment columns of a run on `device` ("cpu" / "cuda")."""
    import lightning
    import torch

    device_name = platform.processor() or platform.machine()
    if device == "cuda" and torch.cuda.is_available():
        device_name = torch.cuda.get_device_name(0)
    return {"device_name": device_name, "torch_version": torch.__version__,
            "lightning_version": lightning.__version__, "cuda_version": torch.version.cuda or "",
            "git_commit": git_commit(), "hostname": platform.node()}
