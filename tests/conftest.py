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


def pytest_collection_modifyitems(config, items):
    """`gpu` tests skip (with the reason) where CUDA is absent, even when `-m gpu` selects them."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
