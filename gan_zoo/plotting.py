"""Writing samples to disk: image grids and scatter/histogram plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import Tensor


def save_image_grid(images: Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save ``(N, C, H, W)`` images in [-1, 1] as one PNG grid (``nrow`` defaults to sqrt(N))."""
    from torchvision.utils import save_image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nrow = nrow or max(1, int(math.sqrt(images.shape[0])))
    save_image((images.float().clamp(-1, 1) + 1) / 2, path, nrow=nrow, padding=2)
    return path


def save_images(images: Tensor, directory: str | Path) -> list[Path]:
    """Save each of ``(N, C, H, W)`` images in [-1, 1] as ``000000.png``, ``000001.png``, ..."""
    from torchvision.utils import save_image

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        paths.append(directory / f"{i:06d}.png")
        save_image((image.float().clamp(-1, 1) + 1) / 2, paths[-1])
    return paths


def to_uint8(images: Tensor) -> Tensor:
    """``(N, C, H, W)`` in [-1, 1] to uint8 ``(N, H, W, C)``, rounding and clamping."""
    scaled = ((images.float() + 1) * 127.5).round().clamp(0, 255)
    return scaled.to(torch.uint8).permute(0, 2, 3, 1)


def save_scatter(real: Tensor | None, fake: Tensor, path: str | Path, title: str = "") -> Path:
    """Plot ``(N, 2)`` points (scatter) or ``(N, 1)`` values (histogram): data against samples."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = new_figure(figsize=(5, 5))
    ax = fig.subplots()
    if fake.shape[1] == 1:
        bins = 100
        if real is not None:
            ax.hist(real[:, 0].numpy(), bins=bins, density=True, alpha=0.5, label="data")
        ax.hist(fake[:, 0].numpy(), bins=bins, density=True, alpha=0.5, label="samples")
    else:
        if real is not None:
            ax.scatter(real[:, 0], real[:, 1], s=2, alpha=0.4, label="data")
        ax.scatter(fake[:, 0], fake[:, 1], s=2, alpha=0.4, label="samples")
        ax.set_aspect("equal")
    ax.legend(loc="upper right")
    ax.set_title(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def new_figure(**kwargs: Any) -> Figure:
    """A matplotlib ``Figure`` of the object API: no pyplot, so no global backend is switched
    (a notebook's inline backend stays), nothing to close, and ``savefig`` renders with Agg."""
    return Figure(**kwargs)
