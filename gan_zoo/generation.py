"""Sampling a checkpoint to files; used by ``generate.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import seed_everything
from omegaconf import DictConfig

from gan_zoo.checkpoint import load_model
from gan_zoo.errors import check
from gan_zoo.plotting import save_image_grid, save_images, save_scatter, to_uint8


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        check(False, "device", name, "auto, cpu, cuda or cuda:N")
        raise  # unreachable; keeps type checkers happy


def generate(cfg: DictConfig) -> dict[str, Any]:
    """Load ``cfg.ckpt_path``, draw ``cfg.num_samples`` samples, write them to ``cfg.out_dir``."""
    n = cfg.num_samples
    check(isinstance(n, int) and n >= 1, "num_samples", n, "an integer >= 1")
    check(cfg.batch_size >= 1, "batch_size", cfg.batch_size, "an integer >= 1")
    model = load_model(cfg.ckpt_path, map_location=_device(cfg.device))
    seed_everything(cfg.seed, verbose=False)
    samples = model.sample(n, batch_size=cfg.batch_size)  # (n, *S)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {"num_samples": n}
    if samples.dim() == 4:
        written["grid"] = str(save_image_grid(samples[:256], out / "grid.png"))
        if cfg.save_images:
            written["images"] = str(save_images(samples, out / "images")[0].parent)
        array = to_uint8(samples).numpy()  # (n, H, W, C)
    else:
        written["scatter"] = str(save_scatter(None, samples, out / "scatter.png"))
        array = samples.numpy().astype(np.float32)
    if cfg.save_npz:
        np.savez_compressed(out / "samples.npz", samples=array)
        written["npz"] = str(out / "samples.npz")
    return written
