"""Loading a checkpoint for a bench: one home for turning a bad file into a one-line exit."""

from __future__ import annotations

from pathlib import Path

import gan_zoo
from gan_zoo.checkpointing import CheckpointError
from gan_zoo.models.base import GAN


def load(path: str | Path) -> GAN:
    """``gan_zoo.load_model(path)``; a missing, corrupt or config-less checkpoint ends the
    bench with ``error: <why>`` (exit status 1) instead of a traceback."""
    try:
        return gan_zoo.load_model(str(path))
    except CheckpointError as err:
        raise SystemExit(f"error: {err}") from None
