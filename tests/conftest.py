import os
import tempfile

import pytest
import torch

# Two cores here: keep torch from oversubscribing when pytest and its children share them.
torch.set_num_threads(min(2, os.cpu_count() or 1))
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ["DNNBENCH_STRICT_COLUMNS"] = "1"  # a row naming a column the table lacks is an error here (children too)
# Instruments trained once (the GAN's feature classifier) are cached per test session, not in the user's home.
os.environ["DNNBENCH_CACHE"] = tempfile.mkdtemp(prefix="dnnbench-cache-")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
