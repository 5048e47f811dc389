"""Per-sample transformation matrices of the ADA pipeline (Karras et al. 2020, App. B).

Geometric matrices are ``(B, 3, 3)`` homogeneous maps of pixel coordinates with the origin at
the image centre, forward (source pixel -> output pixel). Colour matrices are ``(B, 4, 4)``
homogeneous maps of RGB values in ``[-1, 1]``. Every builder returns the identity *exactly*
when its parameter is at its neutral value (shift 0, scale 1, angle 0, flip 0), so the pipeline
can tell which samples it left unchanged and return them bit for bit.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def affine2d(a: Tensor, b: Tensor, tx: Tensor, c: Tensor, d: Tensor, ty: Tensor) -> Tensor:
    """``(B,)`` entries to ``(B, 3, 3)`` matrices ``[[a, b, tx], [c, d, ty], [0, 0, 1]]``."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, tx, c, d, ty, zero, zero, one], dim=-1).view(-1, 3, 3)


def translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    """``(B,)`` shifts in pixels to ``(B, 3, 3)`` translations."""
    zero, one = torch.zeros_like(tx), torch.ones_like(tx)
    return affine2d(one, zero, tx, zero, one, ty)


def scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    """``(B,)`` factors to ``(B, 3, 3)`` axis-aligned scalings (``sx = -1`` is an x-flip)."""
    zero = torch.zeros_like(sx)
    return affine2d(sx, zero, zero, zero, sy, zero)


def rotate2d(cos: Tensor, sin: Tensor) -> Tensor:
    """``(B,)`` cosines and sines to ``(B, 3, 3)`` rotations (counter-clockwise for y up)."""
    zero = torch.zeros_like(cos)
    return affine2d(cos, -sin, zero, sin, cos, zero)


def _luma_outer(device: torch.device) -> Tensor:
    """``v v^T`` for the luma axis ``v = (1, 1, 1) / sqrt(3)`` (App. B): ``(3, 3)``, all 1/3."""
    return torch.full((3, 3), 1.0 / 3.0, device=device)


def _embed(linear: Tensor, offset: Tensor | None = None) -> Tensor:
    """``(B, 3, 3)`` linear part and ``(B, 3)`` offset to ``(B, 4, 4)`` homogeneous matrices."""
    out = torch.zeros(linear.shape[0], 4, 4, device=linear.device, dtype=linear.dtype)
    out[:, :3, :3] = linear
    out[:, 3, 3] = 1.0
    if offset is not None:
        out[:, :3, 3] = offset
    return out


def brightness(b: Tensor) -> Tensor:
    """``(B,)`` offsets to ``(B, 4, 4)``: add ``b`` to every channel."""
    eye = torch.eye(3, device=b.device).expand(b.shape[0], 3, 3)
    return _embed(eye, b[:, None].expand(-1, 3))


def contrast(c: Tensor) -> Tensor:
    """``(B,)`` factors to ``(B, 4, 4)``: scale all channels about 0 (mid-grey in ``[-1, 1]``)."""
    return _embed(c[:, None, None] * torch.eye(3, device=c.device))


def luma_flip(i: Tensor) -> Tensor:
    """``(B,)`` flags in {0, 1} to ``(B, 4, 4)``: Householder reflection ``I - 2 i v v^T``.

    Inverts luma and keeps chroma (App. B); on a grey pixel ``(g, g, g)`` it gives ``-g``.
    """
    eye = torch.eye(3, device=i.device)
    return _embed(eye - 2.0 * i[:, None, None] * _luma_outer(i.device))


def hue_rotation(theta: Tensor) -> Tensor:
    """``(B,)`` angles to ``(B, 4, 4)``: rotation about the luma axis ``v`` (Rodrigues).

    Written as ``I + sin K + (1 - cos)(v v^T - I)``, equal to the usual
    ``cos I + sin K + (1 - cos) v v^T`` but exactly ``I`` at ``theta = 0``.
    """
    eye = torch.eye(3, device=theta.device)
    cycle = eye.roll(1, dims=0)  # [[0, 0, 1], [1, 0, 0], [0, 1, 0]], built on the device
    cross = (cycle - cycle.T) / math.sqrt(3.0)  # [v]x, the cross product with v
    sin, one_minus_cos = theta.sin()[:, None, None], (1.0 - theta.cos())[:, None, None]
    return _embed(eye + sin * cross + one_minus_cos * (_luma_outer(theta.device) - eye))


def saturation(s: Tensor) -> Tensor:
    """``(B,)`` factors to ``(B, 4, 4)``: scale chroma (the part orthogonal to ``v``) by ``s``.

    ``v v^T + s (I - v v^T)``, written as ``I + (s - 1)(I - v v^T)`` so ``s = 1`` is exactly ``I``.
    """
    eye = torch.eye(3, device=s.device)
    return _embed(eye + (s - 1.0)[:, None, None] * (eye - _luma_outer(s.device)))
