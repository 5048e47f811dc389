"""Exact resume: RNG states in the checkpoint, ``ckpt_path=last``, and a fit check.

Lightning's checkpoint holds the weights, optimizers and loop counters, but no RNG state
(Lightning issue 17543), so a resumed GAN draws different noise, gradient-penalty epsilons and
replay indices than the uninterrupted run. :class:`ResumeState` stores the torch, CUDA, numpy and
Python RNG states of every rank and puts them back right before the first batch after a restart.
Together with the data position (:mod:`gan_zoo.data.sampler`) and the replay pool
(``GAN.on_save_checkpoint``), a resumed run repeats the uninterrupted one bit for bit on CPU.
Every checkpoint lands between two generator steps (one training batch is one generator step),
and ``ckpt_path=last`` picks the one furthest into training.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn

from gan_zoo.checkpointing.load import CheckpointError, read_checkpoint
from gan_zoo.checkpointing.run_config import CONFIG_KEY
from gan_zoo.compat import start_next_epoch_normally
from gan_zoo.distributed import gather_from_ranks, global_rank


def capture_rng_states() -> dict[str, Any]:
    """This process's torch, CUDA (current device), numpy and Python RNG states.

    Only tensors, ints, floats, strings and lists, so ``torch.load(weights_only=True)`` reads them.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    version, python_state, gauss_next = random.getstate()
    numpy_keys = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [str(kind), numpy_keys, int(pos), int(has_gauss), float(cached)],
        "python": [version, torch.tensor(python_state, dtype=torch.int64), gauss_next],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_states`."""
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, python_state, gauss_next = states["python"]
    random.setstate((version, tuple(python_state.tolist()), gauss_next))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])


class ResumeState(pl.Callback):
    """Save every rank's RNG states; restore them just in time.

    The states are captured while the checkpoint is written (after the batch and after every
    other callback's ``on_train_batch_end``: Lightning runs checkpoint callbacks last) and put
    back in ``on_train_start`` after a restart, once the model, optimizers and loader are built.
    training.py appends this callback after the others, so their ``on_train_start`` hooks
    (which the uninterrupted run did not call at this point) run before the restore. Between
    the restore and the next batch the resumed run does what the uninterrupted one did: an
    epoch's start, then fetching the batch (gan_zoo's datasets and samplers draw nothing from the
    global RNG; a data transform that did would have to use its own generator).

    Under DDP every rank's states are gathered (a collective; Lightning writes checkpoints from
    all ranks together) and each rank gets its own back.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": gather_from_ranks(capture_rng_states())}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        per_rank = state_dict.get("rng") or []
        rank = global_rank()
        if len(per_rank) > rank:
            self._pending = per_rank[rank]
        elif per_rank:
            rank_zero_warn(f"checkpoint has RNG states of {len(per_rank)} rank(s); using rank 0's")
            self._pending = per_rank[0]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Restarted on an epoch's last batch: the next epoch starts with its counts and hooks.
        start_next_epoch_normally(trainer)
        if self._pending is not None:
            restore_rng_states(self._pending)
            self._pending = None


def find_last_checkpoint(folder: str | Path) -> Path | None:
    """The ``*.ckpt`` in ``folder`` furthest into training, or None if there is none.

    Furthest means the highest generator step (``global_step``), then the newest modification
    time, then ``last.ckpt``. Modification times alone mislead once a run directory is copied or
    restored from a backup. A file that does not load is skipped with a one-line warning. Temp
    files of interrupted atomic writes are ignored and removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for stale in folder.glob(".*.tmp*"):
        stale.unlink(missing_ok=True)
    candidates = sorted(p for p in folder.glob("*.ckpt") if p.is_file())
    progress: dict[Path, tuple[int, int, bool]] = {}
    for path in candidates:
        try:
            # mmap: the tensors are mapped, not read; only the pickle's structure is.
            step = int(read_checkpoint(path, mmap=True).get("global_step", -1))
        except CheckpointError as err:
            rank_zero_warn(f"ckpt_path=last skips {path}: {err}")
            continue
        progress[path] = (step, path.stat().st_mtime_ns, path.name == "last.ckpt")
    if candidates and not progress:
        raise CheckpointError(
            f"ckpt_path=last: none of the {len(candidates)} checkpoint(s) under {folder} loads; "
            "pass ckpt_path=PATH to a good copy, or move them away to start afresh"
        )
    return max(progress, key=progress.__getitem__) if progress else None


def resolve_ckpt_path(ckpt_path: str | None, folder: str | Path) -> str | None:
    """``ckpt_path`` as given, or for ``"last"`` the checkpoint of ``folder`` furthest along.

    ``folder`` is where the run writes its checkpoints. ``last`` with no checkpoint yet starts a
    fresh run, so one job script serves the first start and every restart after a preemption.
    """
    if ckpt_path != "last":
        return ckpt_path
    found = find_last_checkpoint(folder)
    if found is None:
        rank_zero_warn(f"ckpt_path=last: no checkpoint under {folder}; new run")
        return None
    return str(found)


def check_resumable(checkpoint: dict[str, Any], model: torch.nn.Module, path: str | Path) -> None:
    """One-line error unless ``checkpoint`` holds training state for exactly this ``model``."""
    config = checkpoint.get(CONFIG_KEY) or {}
    saved_target = (config.get("model") or {}).get("_target_")
    target = f"{type(model).__module__}.{type(model).__qualname__}"
    if saved_target and saved_target.rsplit(".", 1)[-1] != type(model).__qualname__:
        raise CheckpointError(
            f"checkpoint {path} is a {saved_target} run; this config builds {target}"
        )
    saved = checkpoint.get("state_dict")
    if not isinstance(saved, dict) or "optimizer_states" not in checkpoint:
        raise CheckpointError(f"checkpoint {path} holds no training state (weights only?)")
    for key, tensor in model.state_dict().items():
        other = saved.get(key)
        if other is None or tuple(other.shape) != tuple(tensor.shape):
            found = "missing" if other is None else f"shape {tuple(other.shape)}"
            raise CheckpointError(
                f"checkpoint {path} does not fit this config: {key} is {found}, the model's "
                f"is {tuple(tensor.shape)} (resume with the run's own config)"
            )
