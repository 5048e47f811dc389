"""Sampling a checkpoint to files; used by ``generate.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import seed_everything
from omegaconf import DictConfig, OmegaConf

from gan_zoo import plotting
from gan_zoo.checkpointing import load_model
from gan_zoo.errors import check
from gan_zoo.validation import PositiveInt, Seed, StrictBool, validated


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
    return write_samples(**OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]


@validated
def write_samples(
    ckpt_path: str,
    num_samples: PositiveInt = 64,
    out_dir: str = "generated",
    save_images: StrictBool = False,
    save_npz: StrictBool = False,
    seed: Seed = 0,
    batch_size: PositiveInt = 256,
    device: str = "auto",
) -> dict[str, Any]:
    """Draw ``num_samples`` samples of the checkpoint's generator and write them to ``out_dir``:
    a grid (``scatter.png`` for low-dimensional data), and optionally one PNG per sample and
    ``samples.npz``. Returns what was written (configs/generate.yaml documents each argument)."""
    model = load_model(ckpt_path, map_location=_device(device))
    seed_everything(seed, verbose=False)
    n = num_samples
    samples = model.sample(n, batch_size=batch_size)  # (n, *S)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {"num_samples": n}
    if samples.dim() == 4:
        written["grid"] = str(plotting.save_image_grid(samples[:256], out / "grid.png"))
        if save_images:
            written["images"] = str(plotting.save_images(samples, out / "images")[0].parent)
        array = plotting.to_uint8(samples).numpy()  # (n, H, W, C)
    else:
        written["scatter"] = str(plotting.save_scatter(None, samples, out / "scatter.png"))
        array = samples.numpy().astype(np.float32)
    if save_npz:
        np.savez_compressed(out / "samples.npz", samples=array)
        written["npz"] = str(out / "samples.npz")
    return written
