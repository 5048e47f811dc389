"""Helpers shared by the augmentations: precision, randomness and input checks.

Randomness: every draw goes through :func:`rand` / :func:`randn` / :func:`randint`, which use
``generator`` when given and torch's global RNG of ``x``'s device otherwise, so Lightning's seeding
and gan_zoo's exact resume (which restores the global CPU and CUDA RNG states) reproduce the
augmentations. Draws are always float32, whatever the image dtype, so one seed gives the same
parameters in float64 (gradcheck), float32 and under autocast.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

# Device types whose autocast can be switched off; elsewhere autocast does not exist.
_AUTOCAST_DEVICES = ("cpu", "cuda", "xpu", "mps")


def compute_dtype(x: Tensor) -> torch.dtype:
    """float64 for float64 images (gradcheck), float32 for everything else (fp16/bf16 included).

    Colour arithmetic in half precision would round per-sample factors to 3 significant digits,
    and bilinear weights in bf16 to 2; float32 keeps the augmentation itself exact enough.
    """
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def full_precision(x: Tensor) -> contextlib.AbstractContextManager[object]:
    """Disable autocast for ``x``'s device, so ops on float32 tensors stay float32 inside."""
    if x.device.type in _AUTOCAST_DEVICES:
        return torch.autocast(device_type=x.device.type, enabled=False)
    return contextlib.nullcontext()


def check_images(x: Tensor, channels: tuple[int, ...] | None = None) -> None:
    """Raise a one-line ``ValueError`` unless ``x`` is a floating ``(B, C, H, W)`` batch."""
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(
            f"expected float images of shape (B, C, H, W), got {tuple(x.shape)} {x.dtype}"
        )
    if channels is not None and x.shape[1] not in channels:
        raise ValueError(f"expected {' or '.join(map(str, channels))} channels, got {x.shape[1]}")


def rand(shape: tuple[int, ...], x: Tensor, generator: torch.Generator | None) -> Tensor:
    """``U[0, 1)`` float32 draws of ``shape`` on ``x``'s device."""
    return torch.rand(shape, device=x.device, generator=generator)


def randn(shape: tuple[int, ...], x: Tensor, generator: torch.Generator | None) -> Tensor:
    """``N(0, 1)`` float32 draws of ``shape`` on ``x``'s device."""
    return torch.randn(shape, device=x.device, generator=generator)


def randint(
    low: int, high: int, shape: tuple[int, ...], x: Tensor, generator: torch.Generator | None
) -> Tensor:
    """Integers uniform in ``[low, high)`` (int64) of ``shape`` on ``x``'s device."""
    return torch.randint(low, high, shape, device=x.device, generator=generator)


def bmm_exact(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` for small ``(B, n, n)`` matrices by broadcasting, never through a GEMM kernel.

    A GEMM may run in TF32 on Ampere+ GPUs when the user allows it, which keeps 10 mantissa bits:
    enough to turn an exact pixel blit into a blur. Broadcast-multiply-and-sum stays float32.
    """
    return (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-2)
