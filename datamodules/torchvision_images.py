"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision's dataset classes (real on-disk formats)."""

from __future__ import annotations

import glob
import os
import pickle

import torch
from torchvision import datasets
from torchvision.datasets.utils import extract_archive

from datamodules import ConfigError, register
from datamodules.images import ImageDataModule


class TorchvisionImages(ImageDataModule):
    """Loads a torchvision dataset into memory; `download=True` fetches it where the network allows."""

    dataset_class: type
    folder: str  # where torchvision looks, under data_dir
    how_to_get: str

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
        normalize: bool = True,
        val_size: int = 5000,
        download: bool = False,
        verify_checksums: bool = True,
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, normalize, val_size)
        self.download = download
        self.verify_checksums = verify_checksums

    def prepare_data(self) -> None:
        if self.download:
            for train in (True, False):
                self._open(train)

    def missing_data(self) -> str | None:
        if self.download:
            return None  # fetched in prepare_data where the network allows
        where = os.path.join(os.path.abspath(self.data_dir), self.folder)
        expected = self.expected_files()
        missing = [name for name in expected if not self._present(os.path.join(where, name))]
        if not missing:
            return None
        return (f"{self.registry_name} data not in {where} ({len(missing)} of {len(expected)} files missing, e.g. "
                f"{missing[0]}): --data-arg download=true fetches it, --data-arg data_dir=FOLDER names a copy")

    def expected_files(self) -> list[str]:
        """The files torchvision reads, under data_dir/folder."""
        raise NotImplementedError

    @staticmethod
    def _present(path: str) -> bool:
        return os.path.isfile(path)

    def _unpack_local_archives(self) -> None:
        """Hook: turn files a user copied in their distributed form into what torchvision reads."""

    def _open(self, train: bool):
        self._unpack_local_archives()
        dataset_class = self.dataset_class
        if not self.verify_checksums:
            # Files that exist are accepted as they are (for trimmed copies); the format is still parsed.
            dataset_class = type(dataset_class.__name__, (dataset_class,),
                                 {"_check_integrity": _files_exist, "_load_meta": _load_meta_unverified})
        try:
            return dataset_class(self.data_dir, train=train, download=self.download)
        except RuntimeError as exc:
            expected = os.path.join(os.path.abspath(self.data_dir), self.folder)
            raise ConfigError(
                f"{self.registry_name}: data not found under {expected} ({exc}). "
                f"{self.how_to_get} Or pass download=True (e.g. --data-arg download=true) on a machine with "
                f"network access, or point data_dir at a folder that already holds it."
            ) from None

    @staticmethod
    def _images_uint8(dataset) -> torch.Tensor:
        data = torch.as_tensor(dataset.data)
        if data.dim() == 3:  # (N, H, W) grayscale
            return data.unsqueeze(1).contiguous()
        return data.permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)

    def _load_raw(self):
        train, test = self._open(train=True), self._open(train=False)
        if self.val_size >= len(train.targets):
            raise ConfigError(f"{self.registry_name}: val_size={self.val_size} leaves no training images "
                              f"(only {len(train.targets)} found).")
        return (self._images_uint8(train), torch.as_tensor(train.targets).long(),
                self._images_uint8(test), torch.as_tensor(test.targets).long())


def _files_exist(self) -> bool:
    root = os.path.join(self.root, self.base_folder)
    return all(os.path.isfile(os.path.join(root, name)) for name, _ in self.train_list + self.test_list)


class IDXImages(TorchvisionImages):
    """MNIST-format (IDX) datasets: torchvision reads unpacked files, users often hold the .gz ones."""

    def expected_files(self) -> list[str]:
        return [os.path.splitext(os.path.basename(name))[0] for name, _ in self.dataset_class.resources]

    @staticmethod
    def _present(path: str) -> bool:
        return os.path.isfile(path) or os.path.isfile(path + ".gz")  # unpacked when it loads

    def _unpack_local_archives(self) -> None:
        raw = os.path.join(self.data_dir, self.folder)
        for archive in glob.glob(os.path.join(raw, "*-ubyte.gz")):
            if not os.path.exists(archive[: -len(".gz")]):
                extract_archive(archive, raw)


def _load_meta_unverified(self) -> None:
    # CIFAR's batches.meta without its md5 check (only used with verify_checksums=False).
    with open(os.path.join(self.root, self.base_folder, self.meta["filename"]), "rb") as f:
        self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
    self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


@register("mnist")
class MNIST(IDXImages):
    """The full MNIST digits (60k train / 10k test)."""

    dataset_class = datasets.MNIST
    folder = "MNIST/raw"
    how_to_get = ("Place train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                  "t10k-labels-idx1-ubyte (optionally .gz) there.")
    mean, std = (0.1307,), (0.3081,)


@register("fashion_mnist")
class FashionMNIST(IDXImages):
    """Fashion-MNIST (60k train / 10k test, 28x28 grayscale)."""

    dataset_class = datasets.FashionMNIST
    folder = "FashionMNIST/raw"
    how_to_get = MNIST.how_to_get
    mean, std = (0.2860,), (0.3530,)


@register("cifar10")
class CIFAR10(TorchvisionImages):
    """CIFAR-10 (50k train / 10k test, 32x32 RGB)."""

    dataset_class = datasets.CIFAR10
    folder = "cifar-10-batches-py"
    how_to_get = "Unpack cifar-10-python.tar.gz (data_batch_1..5, test_batch, batches.meta) there."

    def expected_files(self) -> list[str]:
        lists = self.dataset_class.train_list + self.dataset_class.test_list
        return [name for name, _ in lists] + [self.dataset_class.meta["filename"]]
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
