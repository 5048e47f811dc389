"""Checkpoints: reading and loading them safely, writing them atomically, resuming exactly.

- :mod:`~gan_zoo.checkpointing.load`: ``read_checkpoint`` (weights only, one-line errors) and
  ``load_model`` (the trained LightningModule back from a file).
- :mod:`~gan_zoo.checkpointing.atomic_io`: ``AtomicCheckpointIO``, crash-safe writes.
- :mod:`~gan_zoo.checkpointing.model_checkpoint`: ``GANCheckpoint``, Lightning's
  ``ModelCheckpoint`` whose ``last.ckpt`` an extended run resumes exactly.
- :mod:`~gan_zoo.checkpointing.run_config`: ``ConfigInCheckpoint``, the run config in the file.
- :mod:`~gan_zoo.checkpointing.resume`: ``ResumeState`` (RNG states), ``ckpt_path=last``.
"""

from gan_zoo.checkpointing.atomic_io import AtomicCheckpointIO
from gan_zoo.checkpointing.load import CheckpointError, build_model, load_model, read_checkpoint
from gan_zoo.checkpointing.model_checkpoint import GANCheckpoint
from gan_zoo.checkpointing.resume import (
    ResumeState,
    check_resumable,
    find_last_checkpoint,
    resolve_ckpt_path,
)
from gan_zoo.checkpointing.run_config import CONFIG_KEY, ConfigInCheckpoint

__all__ = [
    "CONFIG_KEY",
    "AtomicCheckpointIO",
    "CheckpointError",
    "ConfigInCheckpoint",
    "GANCheckpoint",
    "ResumeState",
    "build_model",
    "check_resumable",
    "find_last_checkpoint",
    "load_model",
    "read_checkpoint",
    "resolve_ckpt_path",
]
