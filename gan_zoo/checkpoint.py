"""Loading trained models back from checkpoints without unpickling code."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate

from gan_zoo.callbacks.config_in_checkpoint import CONFIG_KEY
from gan_zoo.models.base import GAN


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, unsafe or not a gan_zoo checkpoint."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with one-line errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"checkpoint {path} refused by the safe loader: {first}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: {reason}") from None


def build_model(config: dict[str, Any]) -> GAN:
    """Instantiate nets and model from a resolved run config (the ``net`` and ``model`` nodes)."""
    generator = instantiate(config["net"]["generator"])
    discriminator = instantiate(config["net"]["discriminator"])
    return instantiate(config["model"], generator=generator, discriminator=discriminator)


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> GAN:
    """Rebuild the trained LightningModule, of the right class, from a gan_zoo checkpoint.

    Only tensors and plain containers are read (``weights_only=True``): a checkpoint carrying
    pickled code is refused, never executed. The model is returned in eval mode.

    >>> model = load_model("outputs/.../checkpoints/last.ckpt")  # doctest: +SKIP
    >>> images = model.sample(64)  # (64, C, H, W) in [-1, 1]  # doctest: +SKIP
    """
    checkpoint = read_checkpoint(path)
    config = checkpoint.get(CONFIG_KEY)
    if not isinstance(config, dict) or "model" not in config:
        raise CheckpointError(
            f"checkpoint {path} has no '{CONFIG_KEY}': it was not written by gan_zoo's train.py"
        )
    model = build_model(config)
    model.load_state_dict(checkpoint["state_dict"])
    model.on_load_checkpoint(checkpoint)
    return model.to(map_location).eval()
