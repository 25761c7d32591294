"""datamodules/base.py: where in-memory data is served from, decided without a GPU (the `meta` device stands in for
one), and device-resident batches."""

import torch

import datamodules
from datamodules.base import HOST, PINNED, RESIDENT, DeviceBatches, TensorBatches, batch_loader, placement

MIB = 2**20


def test_a_cpu_run_uses_the_plain_loader_and_a_gpu_run_keeps_what_fits():
    host = [torch.zeros(MIB // 4)]  # 1 MiB of fp32 on the host
    assert placement(torch.device("cpu"), host, None) == HOST
    assert placement(torch.device("cuda"), host, free_bytes=8 * MIB) == RESIDENT  # within a quarter of free
    assert placement(torch.device("cuda"), host, free_bytes=2 * MIB) == PINNED


def test_data_generated_on_the_accelerator_stays_there_whatever_is_free_now():
    """Synthetic data generated on the GPU once fitted; after the model took memory it may no longer fit the
    resident share, and sending it down the pinned path failed (`cannot pin 'torch.cuda.FloatTensor'`)."""
    accelerator = torch.device("meta")
    generated = [torch.empty(256 * MIB, device=accelerator)]
    assert placement(accelerator, generated, free_bytes=0) == RESIDENT
    assert placement(accelerator, generated + [torch.zeros(4)], free_bytes=0) == PINNED  # some on the host


def test_synthetic_data_on_the_device_is_served_as_device_batches(monkeypatch):
    dm = datamodules.get("synthetic")(batch_size=4, shape=(1, 4, 4), num_classes=3, num_samples=16)
    accelerator = torch.device("meta")
    monkeypatch.setattr(type(dm), "accelerator", lambda self: accelerator)
    inputs, labels = torch.empty(16, 1, 4, 4, device=accelerator), torch.empty(16, dtype=torch.long,
                                                                                   device=accelerator)
    dm.train_set = dm.val_set = dm.test_set = datamodules.base.TensorBatches(inputs, labels)
    loader = dm.val_dataloader()
    assert isinstance(loader, DeviceBatches) and loader.tensors[0].device == accelerator


def test_device_resident_batches_are_sized_for_lightnings_finder():
    from datamodules.base import DeviceBatches

    batches = DeviceBatches((torch.zeros(40, 2), torch.zeros(40)), 16, shuffle=False, seed=0)
    assert len(batches.dataset) == 40


def test_device_batches_serve_the_same_epoch_as_the_loader_and_shard_disjointly():
    x, y = torch.arange(50.0).view(50, 1), torch.arange(50)
    plain = [b[1].tolist() for b in batch_loader(TensorBatches(x, y), 8, False, 0)]
    resident = [b[1].tolist() for b in DeviceBatches((x, y), 8, False, 0)]
    assert resident == plain
    shuffled = DeviceBatches((x, y), 8, True, seed=1)
    first, second = [b[1].tolist() for b in shuffled], [b[1].tolist() for b in shuffled]
    assert sorted(sum(first, [])) == list(range(50)) and first != second  # a new permutation each epoch
    ranks = [[i for b in DeviceBatches((x, y), 8, True, seed=1, rank=r, world_size=2) for i in b[1].tolist()]
             for r in (0, 1)]
    assert len(DeviceBatches((x, y), 8, True, 1, 0, 2)) == 3 and not set(ranks[0]) & set(ranks[1])
