"""CIFAR-10 training images, 3x32x32 in [-1, 1], via torchvision.

Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images".
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch.utils.data import Dataset
from torchvision import datasets

from gan_zoo.data.base import GANDataModule, UInt8ImageDataset
from gan_zoo.data.fetch import fetch_cifar10
from gan_zoo.errors import ConfigValueError
from gan_zoo.validation import StrictBool, validated

CIFAR10_SHAPE = (3, 32, 32)


class UnverifiedCIFAR10(datasets.CIFAR10):
    """torchvision's CIFAR10 with the per-file md5 checks off; files must still exist.

    torchvision checks the md5 of every batch file and of ``batches.meta`` on each construction,
    even with ``download=False``. Setting the expected md5s to ``None`` (the same class-attribute
    override torchvision's own CIFAR100 uses) makes ``check_integrity`` test existence only, while
    reading goes through the unchanged torchvision code. A download still checks the tarball's md5.
    """

    train_list: ClassVar = [[name, None] for name, _ in datasets.CIFAR10.train_list]
    test_list: ClassVar = [[name, None] for name, _ in datasets.CIFAR10.test_list]
    meta: ClassVar = {**datasets.CIFAR10.meta, "md5": None}


class CIFAR10DataModule(GANDataModule):
    """The 50,000 CIFAR-10 training images as float32 ``(B, 3, 32, 32)`` in ``[-1, 1]``.

    ``prepare_data`` downloads and extracts into ``data_dir/cifar-10-batches-py`` when
    ``download`` is true (Lightning runs it on one process per node).

    Args:
        data_dir: folder holding (or to receive) ``cifar-10-batches-py/``.
        batch_size: samples per batch.
        num_workers: DataLoader worker processes.
        subset: train on this many samples, a fixed random choice (``GANDataModule``).
        download: fetch the files when missing; with false a missing dataset is an error.
        verify: check the official md5 of each batch file (torchvision does this on every load).
            Keep it on; turn it off only for files you trust that differ from the official ones,
            e.g. the tiny stand-ins the unit tests write.

    >>> CIFAR10DataModule(data_dir="data/", download=False).sample_shape
    (3, 32, 32)
    """

    @validated
    def __init__(
        self,
        data_dir: str = "data/",
        batch_size: int = 64,
        num_workers: int = 0,
        subset: int | None = None,
        download: StrictBool = True,
        verify: StrictBool = True,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, subset=subset)
        self.data_dir = str(data_dir)
        self.download = download
        self.verify = verify
        self.sample_shape = CIFAR10_SHAPE

    def _torchvision_class(self) -> type[datasets.CIFAR10]:
        return datasets.CIFAR10 if self.verify else UnverifiedCIFAR10

    def prepare_data(self) -> None:
        if self.download:
            fetch_cifar10(self.data_dir, self._torchvision_class())

    def build_dataset(self) -> Dataset[torch.Tensor]:
        # download=False here: setup runs on every rank, and prepare_data already fetched it.
        try:
            cifar = self._torchvision_class()(self.data_dir, train=True, download=False)
        except RuntimeError as err:
            hint = "call prepare_data() first" if self.download else "or set download=true"
            checked = "md5-checked; verify=false skips that" if self.verify else "not md5-checked"
            raise ConfigValueError(
                "data_dir",
                self.data_dir,
                f"a folder holding cifar-10-batches-py/ ({checked}; {hint})",
            ) from err
        # torchvision keeps (N, 32, 32, 3) uint8 for PIL; the model wants channels first.
        images = torch.from_numpy(cifar.data).permute(0, 3, 1, 2).contiguous()
        return UInt8ImageDataset(images, torch.as_tensor(cifar.targets, dtype=torch.long))
