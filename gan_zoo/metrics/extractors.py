"""The networks ``FidelityMetrics`` scores images with: torch-fidelity's InceptionV3 or gan_zoo's
MNIST CNN, behind one interface.

Each takes the uint8 images that every metric sees (``(B, C, H, W)`` in [0, 255], as they would
be saved to disk) and returns features ``(B, D)`` for FID/FD, KID, precision/recall and
density/coverage, and class logits ``(B, K)`` for IS or the class metrics. ``name`` and
``weights_sha256`` identify the network in protocols and cache keys; ``resize`` says how images
reach its input size.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan_zoo.errors import ConfigValueError
from gan_zoo.metrics import inception, mnist_net


class FeatureExtractor(nn.Module):
    """uint8 images ``(B, C, H, W)`` to ``(features (B, D), logits (B, K) or None)``."""

    name: str
    feature_dim: int
    num_classes: int
    resize: str
    weights_path: Path
    weights_sha256: str

    def describe(self) -> dict[str, Any]:
        """How the network is identified in a protocol: extractor, weights, resize."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


class InceptionExtractor(FeatureExtractor):
    """torch-fidelity's ``inception-v3-compat``: pool3 features (2048-d) and unbiased logits.

    Images of any size, 1 or 3 channels (gray is repeated), resized to 299 px inside the network
    with torch-fidelity's TF1-style bilinear interpolation (no antialias).
    """

    name, feature_dim, num_classes = inception.EXTRACTOR_NAME, 2048, 1008
    resize = inception.RESIZE

    def __init__(self, weights: str | os.PathLike[str] | None, logits: bool) -> None:
        super().__init__()
        self.weights_path = inception.resolve_weights(weights)
        self.weights_sha256 = inception.file_sha256(self.weights_path)
        wanted = [inception.FID_FEATURES] + [inception.IS_FEATURES] * logits
        self.net = inception.load_extractor(self.weights_path, wanted)

    def forward(self, pixels: Tensor) -> tuple[Tensor, Tensor | None]:
        rgb = pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels
        outputs = dict(zip(self.net.features_list, self.net(rgb)))
        return outputs[inception.FID_FEATURES], outputs.get(inception.IS_FEATURES)

    def describe(self) -> dict[str, Any]:
        return {
            "extractor": f"torch-fidelity {self.name} (features: pool3 2048-d, "
            "logits: without bias)",
            "weights": f"{self.weights_path.name} sha256:{self.weights_sha256[:16]}",
            "resize": f"{self.resize} (torch-fidelity TF1 bilinear, no antialias), from uint8",
        }


class MNISTExtractor(FeatureExtractor):
    """gan_zoo's MNIST CNN (``gan_zoo.metrics.mnist_net``): 128-d penultimate features and the
    10 digit logits of ``(B, 1, 28, 28)`` images, read at their own size (no resize)."""

    name, feature_dim, num_classes = mnist_net.EXTRACTOR_NAME, mnist_net.FEATURE_DIM, 10
    resize = "none (28x28 input)"

    def __init__(self, weights: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        # Another file than the shipped one (e.g. retrained) is taken as it is, without the check.
        sha256 = mnist_net.WEIGHTS_SHA256 if weights is None else None
        self.weights_path = mnist_net.default_weights_path() if weights is None else Path(weights)
        self.net = mnist_net.load_mnist_classifier(self.weights_path, sha256)
        self.weights_sha256 = inception.file_sha256(self.weights_path)

    def forward(self, pixels: Tensor) -> tuple[Tensor, Tensor | None]:
        if tuple(pixels.shape[1:]) != mnist_net.INPUT_SHAPE:
            raise ConfigValueError(
                "images",
                tuple(pixels.shape),
                f"(N, 1, 28, 28) digits for the {self.name} extractor",
            )
        return self.net.features_and_logits(pixels)

    def describe(self) -> dict[str, Any]:
        accuracy = mnist_net.HELD_OUT_ACCURACY
        return {
            "extractor": f"gan_zoo {self.name} (features: penultimate {self.feature_dim}-d, "
            f"logits: 10 digits; held-out accuracy {accuracy:.3f})",
            "weights": f"{self.weights_path.name} sha256:{self.weights_sha256[:16]}",
            "resize": f"{self.resize}, from uint8",
        }


WeightsPath = str | os.PathLike[str] | None
# The extractors FidelityMetrics accepts, by the name that also appears in its protocol, each
# built from FidelityMetrics' arguments (inception_weights, whether logits are needed).
EXTRACTORS: dict[str, Callable[[WeightsPath, bool], FeatureExtractor]] = {
    InceptionExtractor.name: InceptionExtractor,
    MNISTExtractor.name: lambda inception_weights, logits: MNISTExtractor(),  # the shipped file
}


def load_feature_extractor(
    name: str, inception_weights: WeightsPath, logits: bool
) -> FeatureExtractor:
    """The extractor called ``name`` (a key of ``EXTRACTORS``), in eval mode on the CPU.

    ``inception_weights``: InceptionV3's weights file (None: the torch hub cache); the MNIST
    network always loads the shipped, checked file. ``logits``: whether the logits are needed.
    """
    if name not in EXTRACTORS:
        raise ConfigValueError("extractor", name, f"one of {', '.join(EXTRACTORS)}")
    return EXTRACTORS[name](inception_weights, logits).eval()
