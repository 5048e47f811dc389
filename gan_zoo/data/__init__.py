"""LightningDataModules yielding unlabelled float32 batches ``(B, *sample_shape)``.

Images are in [-1, 1]; toy data are raw coordinates. Each class is the ``_target_`` of one
``configs/data/*.yaml``.
"""

from gan_zoo.data.base import GANDataModule
from gan_zoo.data.cifar10 import CIFAR10DataModule
from gan_zoo.data.image_folder import ImageFolderDataModule
from gan_zoo.data.mnist import MNISTDataModule, MNISTSubsetDataModule
from gan_zoo.data.toy import Toy1DDataModule, Toy2DDataModule

__all__ = [
    "CIFAR10DataModule",
    "GANDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "MNISTSubsetDataModule",
    "Toy1DDataModule",
    "Toy2DDataModule",
]
