"""Sampling a checkpoint to files; used by ``generate.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast

import annotated_types as at
import numpy as np
import torch
from lightning.pytorch import seed_everything
from omegaconf import DictConfig, OmegaConf
from pydantic import Strict

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
    settings = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True))
    settings["label"] = settings.pop("class", None)  # `class` is a Python keyword
    return write_samples(**settings)


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
    label: Annotated[int, Strict(), at.Ge(0)] | None = None,
) -> dict[str, Any]:
    """Draw ``num_samples`` samples of the checkpoint's generator and write them to ``out_dir``:
    a grid (``scatter.png`` for low-dimensional data), and optionally one PNG per sample and
    ``samples.npz``. A class-conditional model draws class ``label`` only, or else every class
    in turn, and its grid has one row per class. Returns what was written (configs/generate.yaml
    documents each argument; ``label`` is its ``class``)."""
    model = load_model(ckpt_path, map_location=_device(device))
    seed_everything(seed, verbose=False)
    n, classes = num_samples, model.num_classes
    labels = _labels(n, classes, label)
    samples = model.sample(n, batch_size=batch_size, labels=labels)  # (n, *S)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {"num_samples": n}
    if labels is not None:
        written["classes"] = sorted(set(labels.tolist()))
    if samples.dim() == 4:
        grid, nrow = samples[:256], None
        if classes and label is None:  # one row per class, in order
            nrow = max(1, min(16, n // classes))
            grid = torch.cat([samples[labels == c][:nrow] for c in range(classes)])
        written["grid"] = str(plotting.save_image_grid(grid, out / "grid.png", nrow=nrow))
        if save_images:
            written["images"] = str(plotting.save_images(samples, out / "images")[0].parent)
        array = plotting.to_uint8(samples).numpy()  # (n, H, W, C)
    else:
        written["scatter"] = str(plotting.save_scatter(None, samples, out / "scatter.png"))
        array = samples.numpy().astype(np.float32)
    if save_npz:
        if labels is None:
            np.savez_compressed(out / "samples.npz", samples=array)
        else:  # each sample's class, for a conditional model
            np.savez_compressed(out / "samples.npz", samples=array, labels=labels.cpu().numpy())
        written["npz"] = str(out / "samples.npz")
    return written


def _labels(n: int, classes: int, label: int | None) -> torch.Tensor | None:
    """``(n,)`` classes to draw: ``label`` for all, else each class in turn; None if the model
    is unconditional (then ``label`` must be unset)."""
    if not classes:
        check(label is None, "class", label, "null: the checkpoint's model is not conditional")
        return None
    check(label is None or label < classes, "class", label, f"an integer in [0, {classes - 1}]")
    return torch.full((n,), label) if label is not None else torch.arange(n) % classes
