"""Fetching the datasets that download, with a one-line error when that fails.

The DataModules call these from ``prepare_data``; ``python -m gan_zoo.data.download`` calls them
ahead of time. When the files are there, nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

from torchvision import datasets

from gan_zoo.errors import DataUnavailableError


def fetch_mnist(data_dir: str | Path) -> Path:
    """The 60,000 MNIST training digits in ``<data_dir>/MNIST/raw`` (torchvision's layout)."""
    mirror = datasets.MNIST.mirrors[0]
    _fetch(
        "MNIST",
        mirror,
        Path(data_dir) / "MNIST" / "raw",
        "mnist",
        data_dir,
        lambda: datasets.MNIST(str(data_dir), train=True, download=True),
    )
    return Path(data_dir) / "MNIST"


def fetch_cifar10(data_dir: str | Path, cls: type[datasets.CIFAR10] = datasets.CIFAR10) -> Path:
    """The CIFAR-10 training set in ``<data_dir>/cifar-10-batches-py`` (torchvision's layout)."""
    folder = Path(data_dir) / cls.base_folder
    _fetch(
        "CIFAR-10",
        cls.url,
        folder,
        "cifar10",
        data_dir,
        lambda: cls(str(data_dir), train=True, download=True),
    )
    return folder


def _fetch(
    title: str, url: str, folder: Path, name: str, data_dir: str | Path, get: Callable[[], object]
) -> None:
    """Run torchvision's download ``get``; on failure raise one line saying how to get the files.

    torchvision prints its progress and every mirror it tries; that goes to a buffer, and the
    last reason is kept for the message.
    """
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            get()
    except (OSError, RuntimeError, ValueError) as err:  # URLError and HTTPError are OSErrors
        reason = " ".join(str(err).split()) or type(err).__name__
        raise DataUnavailableError(
            f"could not download {title} from {url} into {folder} ({reason}); fetch it on a "
            f"machine with network (`python -m gan_zoo.data.download {name} --data-dir DIR`) and "
            f"copy DIR to {data_dir}, or point paths.data_dir (GAN_ZOO_DATA_DIR) at a copy"
        ) from None
