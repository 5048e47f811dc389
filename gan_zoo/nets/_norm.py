"""Normalisation choices and the input-shape check shared by the nets.

Discriminators take ``norm`` in ``{"batch", "layer", "none"}``. "layer" is the drop-in
Gulrajani et al. 2017 (WGAN-GP, Sec. 4) recommend for the critic: the gradient penalty is
taken per sample, and BatchNorm mixes the samples of a batch, so the penalised gradient
would no longer be the gradient of one sample's score.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from torch import Tensor, nn

# The ``norm`` argument of the discriminators; validated where they are built.
Norm = Literal["batch", "layer", "none"]

# "layer" on feature maps is GroupNorm with one group: statistics over (C, H, W) per sample.
_NORM_2D: dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm2d,
    "layer": lambda channels: nn.GroupNorm(1, channels),
    "none": lambda channels: nn.Identity(),
}
_NORM_1D: dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm1d,
    "layer": nn.LayerNorm,
    "none": lambda features: nn.Identity(),
}


def norm_2d(norm: str, channels: int) -> nn.Module:
    """Normalisation layer for ``(B, channels, H, W)`` feature maps.

    >>> layer = norm_2d("layer", 8)  # statistics over (C, H, W) of each sample
    >>> type(layer).__name__, layer.num_groups
    ('GroupNorm', 1)
    """
    return _NORM_2D[norm](channels)


def norm_1d(norm: str, features: int) -> nn.Module:
    """Normalisation layer for ``(B, features)`` activations."""
    return _NORM_1D[norm](features)


def check_input_shape(net: nn.Module, x: Tensor, expected: tuple[int, ...]) -> None:
    """Raise a one-line ``ValueError`` unless ``x`` is ``(B, *expected)``.

    Without this, a mismatched batch fails deep inside a conv or linear layer with a message
    about weight shapes that does not say which net or which data were wrong.
    """
    if tuple(x.shape[1:]) != expected or x.dim() != len(expected) + 1:
        want = ", ".join(["B", *map(str, expected)])
        got = ", ".join(map(str, x.shape))
        raise ValueError(f"{type(net).__name__} expects inputs of shape ({want}), got ({got})")
