"""The ops of the ADA pipeline as per-sample matrix samplers (Karras et al. 2020, App. B).

Each sampler draws one op's parameters for a batch and returns its matrices: ``(B, 3, 3)``
forward maps of centred pixel coordinates for the geometric ops, ``(B, 4, 4)`` maps of RGB
values for the colour ops. Each sample gets the op with probability ``p`` (a per-sample
``U < p`` gate) and the exact identity otherwise. The tables :data:`GEOMETRIC` and :data:`COLOUR`
list them in the paper's order of application; the defaults of :class:`Ranges` are App. B's
(and the released ``augment.py``'s).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from gan_zoo.augment import _matrices as mat
from gan_zoo.augment._common import rand, randn

Generator = torch.Generator | None


@dataclass(frozen=True)
class Ranges:
    """Parameter ranges of the ops (App. B). Shifts are fractions of the image size, scaling
    stds are of ``log2`` of the factor, ``*_max = 1`` means angles in ``[-pi, pi]``."""

    xint_max: float = 0.125
    scale_std: float = 0.2
    rotate_max: float = 1.0
    aniso_std: float = 0.2
    xfrac_std: float = 0.125
    brightness_std: float = 0.2
    contrast_std: float = 0.5
    hue_max: float = 1.0
    saturation_std: float = 1.0


Sampler = Callable[[Ranges, Tensor, Tensor, Generator], Tensor]


def gate(x: Tensor, p: Tensor, value: Tensor, neutral: float, g: Generator) -> Tensor:
    """``value`` (``(B,)`` or ``(B, k)``) where a per-sample ``U[0, 1) < p``, else ``neutral``."""
    hit = rand((x.shape[0],), x, g) < p  # (B,)
    return torch.where(hit.view(-1, *([1] * (value.ndim - 1))), value, neutral)


def _lognormal(r: float, x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """``2^N(0, r^2)`` per sample, 1 where not gated in: ``(B,)``."""
    return gate(x, p, torch.exp2(randn((x.shape[0],), x, g) * r), 1.0, g)


def _angle(r: float, x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """``U[-pi r, pi r)`` per sample, 0 where not gated in: ``(B,)``."""
    return gate(x, p, (2 * rand((x.shape[0],), x, g) - 1) * math.pi * r, 0.0, g)


def _coin(x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """1 or 0 with equal odds per sample, 0 where not gated in: ``(B,)``."""
    return gate(x, p, torch.floor(2 * rand((x.shape[0],), x, g)), 0.0, g)


# ----------------------------------------------------------------------------- geometric
def xflip(r: Ranges, x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """Mirror x with probability 1/2 once gated in: ``(B, 3, 3)``."""
    flip = _coin(x, p, g)
    return mat.scale2d(1 - 2 * flip, torch.ones_like(flip))


def rotate90(r: Ranges, x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """Rotate by ``k * 90`` degrees, ``k ~ U{0, 1, 2, 3}``, once gated in: ``(B, 3, 3)``."""
    k = gate(x, p, torch.floor(4 * rand((x.shape[0],), x, g)), 0.0, g)
    # Exact values, not cos(k pi / 2): cos(pi / 2) in float32 is -4e-8, which would blur the
    # blit. Built on the device (a lookup table from a Python list would be a host copy).
    cos = (k == 0).float() - (k == 2).float()
    sin = (k == 1).float() - (k == 3).float()
    return mat.rotate2d(cos, sin)


def xint(r: Ranges, x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """Shift by ``round(U[-m, m] * size)`` pixels on each axis, ``m = xint_max``: ``(B, 3, 3)``."""
    t = gate(x, p, (2 * rand((x.shape[0], 2), x, g) - 1) * r.xint_max, 0.0, g)  # (B, 2)
    return mat.translate2d(torch.round(t[:, 0] * x.shape[3]), torch.round(t[:, 1] * x.shape[2]))


def scale(r: Ranges, x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """Isotropic scaling by ``2^N(0, scale_std^2)``: ``(B, 3, 3)``."""
    s = _lognormal(r.scale_std, x, p, g)
    return mat.scale2d(s, s)


def rotate(r: Ranges, x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """Rotation by ``U[-pi, pi)``, gated with ``1 - sqrt(1 - p)``: ``(B, 3, 3)``.

    :data:`GEOMETRIC` runs it twice, before and after ``aniso``, so that P(any rotation) = p
    (App. B); the two rotations around the anisotropic scaling reach every linear map's shape.
    """
    theta = _angle(r.rotate_max, x, 1 - torch.sqrt((1 - p).clamp(0, 1)), g)
    return mat.rotate2d(theta.cos(), theta.sin())


def aniso(r: Ranges, x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """Anisotropic scaling by ``(s, 1 / s)``, ``s = 2^N(0, aniso_std^2)``: ``(B, 3, 3)``."""
    s = _lognormal(r.aniso_std, x, p, g)
    return mat.scale2d(s, 1 / s)


def xfrac(r: Ranges, x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """Shift by ``N(0, xfrac_std^2) * size`` pixels on each axis: ``(B, 3, 3)``."""
    t = gate(x, p, randn((x.shape[0], 2), x, g) * r.xfrac_std, 0.0, g)  # (B, 2)
    return mat.translate2d(t[:, 0] * x.shape[3], t[:, 1] * x.shape[2])


# -------------------------------------------------------------------------------- colour
def brightness(r: Ranges, x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """Add ``N(0, brightness_std^2)`` to every channel: ``(B, 4, 4)``."""
    return mat.brightness(gate(x, p, randn((x.shape[0],), x, g) * r.brightness_std, 0.0, g))


def contrast(r: Ranges, x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """Scale values about 0 by ``2^N(0, contrast_std^2)``: ``(B, 4, 4)``."""
    return mat.contrast(_lognormal(r.contrast_std, x, p, g))


def lumaflip(r: Ranges, x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """Reflect luma with probability 1/2 once gated in: ``(B, 4, 4)``."""
    return mat.luma_flip(_coin(x, p, g))


def hue(r: Ranges, x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """Rotate about the luma axis by ``U[-pi, pi)``: ``(B, 4, 4)``."""
    return mat.hue_rotation(_angle(r.hue_max, x, p, g))


def saturation(r: Ranges, x: Tensor, p: Tensor, g: Generator) -> Tensor:
    """Scale chroma by ``2^N(0, saturation_std^2)``: ``(B, 4, 4)``."""
    return mat.saturation(_lognormal(r.saturation_std, x, p, g))


# App. B's order; "rotate" appears twice, around "aniso".
GEOMETRIC: tuple[tuple[str, Sampler], ...] = (
    ("xflip", xflip),
    ("rotate90", rotate90),
    ("xint", xint),
    ("scale", scale),
    ("rotate", rotate),
    ("aniso", aniso),
    ("rotate", rotate),
    ("xfrac", xfrac),
)
COLOUR: tuple[tuple[str, Sampler], ...] = (
    ("brightness", brightness),
    ("contrast", contrast),
    ("lumaflip", lumaflip),
    ("hue", hue),
    ("saturation", saturation),
)
# The identity on grey pixels (g, g, g): skipped for 1-channel images, as in the released code.
RGB_ONLY = frozenset({"hue", "saturation"})
