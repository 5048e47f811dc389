"""Exact resume: RNG states in the checkpoint, ``ckpt_path=last``, and what W&B already logged.

Lightning's checkpoint holds the weights, optimizers and loop counters, but no RNG state
(Lightning issue 17543), so a resumed GAN draws different noise, gradient-penalty epsilons and
replay indices than the uninterrupted run. :class:`ResumeState` stores the torch, CUDA, numpy and
Python RNG states of every rank and puts them back right before the first batch after a restart.
Together with the n_critic position (``GAN.on_save_checkpoint``) and the data position
(:mod:`gan_zoo.data.sampler`), a resumed run repeats the uninterrupted one bit for bit on CPU.
``ckpt_path=last`` picks the checkpoint furthest into training, and :func:`last_logged_step`
reads how far a W&B run got, so a resumed run never logs a step twice (:mod:`gan_zoo.loggers`).
"""

from __future__ import annotations

import contextlib
import json
import random
import struct
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_warn

from gan_zoo.callbacks.config_in_checkpoint import CONFIG_KEY
from gan_zoo.checkpoint import CheckpointError, read_checkpoint
from gan_zoo.distributed import gather_from_ranks, global_rank

CHECKPOINT_DIR = "checkpoints"
WANDB_ID_KEY = "gan_zoo_wandb_run_id"  # checkpoint entry: the run's W&B id, to continue it
# <save_dir>/wandb/<this>: the W&B run id and the last step sent to it (gan_zoo.loggers)
WANDB_STATE_FILE = "gan_zoo_run.json"


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
    """Save every rank's RNG states and the W&B run id; restore the RNG just in time.

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

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        run_id = wandb_run_id(trainer)
        if run_id is not None:
            checkpoint[WANDB_ID_KEY] = run_id

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending is None:
            return
        restore_rng_states(self._pending)
        self._pending = None
        # ModelCheckpoint does not save when it last saved (the counter is not in its state):
        # without this, the first batches after a restart rewrite the checkpoint of this step.
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint):
                callback._last_global_step_saved = trainer.global_step


def wandb_run_id(trainer: pl.Trainer) -> str | None:
    """The id of the run's W&B logger, if it has one."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and logger.version:
            return str(logger.version)
    return None


def training_progress(path: Path) -> tuple[int, int]:
    """``(generator step, critic steps into the next cycle)`` of a checkpoint, read cheaply.

    ``mmap=True`` maps the tensors without reading them, so only the pickle's structure is read;
    a truncated or corrupt file raises :class:`CheckpointError` naming it.
    """
    checkpoint = read_checkpoint(path, mmap=True)
    return int(checkpoint.get("global_step", -1)), int(checkpoint.get("critic_steps_in_cycle", 0))


def find_last_checkpoint(run_dir: str | Path) -> Path | None:
    """The ``*.ckpt`` under ``<run_dir>/checkpoints`` furthest into training, or None if none.

    Furthest means the highest generator step (``global_step``), then the most critic steps
    into the next cycle (a preemption checkpoint can land mid-cycle), then the newest
    modification time, then ``last.ckpt``. Modification times alone mislead once a run
    directory is copied or restored from a backup. A file that does not load is skipped with a
    one-line warning. Temp files of interrupted atomic writes are ignored and removed.
    """
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return None
    for stale in folder.glob(".*.tmp*"):
        stale.unlink(missing_ok=True)
    candidates = sorted(p for p in folder.glob("*.ckpt") if p.is_file())
    progress: dict[Path, tuple[int, int, int, bool]] = {}
    for path in candidates:
        try:
            step, cycle = training_progress(path)
        except CheckpointError as err:
            rank_zero_warn(f"ckpt_path=last skips {path}: {err}")
            continue
        progress[path] = (step, cycle, path.stat().st_mtime_ns, path.name == "last.ckpt")
    if candidates and not progress:
        raise CheckpointError(
            f"ckpt_path=last: none of the {len(candidates)} checkpoint(s) under {folder} loads; "
            "pass ckpt_path=PATH to a good copy, or move them away to start afresh"
        )
    return max(progress, key=progress.__getitem__) if progress else None


def resolve_ckpt_path(ckpt_path: str | None, run_dir: str | Path) -> str | None:
    """``ckpt_path`` as given, or for ``"last"`` the checkpoint of ``run_dir`` furthest along.

    ``last`` with no checkpoint yet starts a fresh run, so one job script serves the first
    start and every restart after a preemption.
    """
    if ckpt_path != "last":
        return ckpt_path
    found = find_last_checkpoint(run_dir)
    if found is None:
        rank_zero_warn(f"ckpt_path=last: no checkpoint under {run_dir}/{CHECKPOINT_DIR}; new run")
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


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or ``{}`` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


STEP_KEY = "trainer/global_step"  # the step axis Lightning's WandbLogger logs


def last_logged_step(run_id: str, folders: list[Path]) -> int | None:
    """The highest generator step W&B run ``run_id`` logged, from its records in ``folders``.

    Two records: gan_zoo's ``gan_zoo_run.json`` (what was sent to W&B) and W&B's own run files
    ``*-<id>/run-<id>.wandb`` (what W&B wrote; online runs keep them too). The highest step
    of either is taken, so no step goes backwards. None when no folder has a record of the id;
    -1 when the run logged no step.
    """
    steps: list[int] = []
    for folder in dict.fromkeys(f.resolve() for f in folders):
        state = read_json(folder / WANDB_STATE_FILE)
        if state.get("id") == run_id:
            steps.append(int(state.get("last_step", -1)))
        for run_file in folder.glob(f"*-{run_id}/run-{run_id}.wandb"):
            logged = wandb_file_steps(run_file)
            if logged is not None:
                steps.append(max(logged, default=-1))
    return max(steps) if steps else None


def wandb_file_steps(path: Path) -> list[int] | None:
    """The ``trainer/global_step`` of every history row in a W&B run file, or None if unreadable.

    The file is W&B's transaction log: a 7-byte header (``:W&B``, magic, version), then
    LevelDB-style 32 KiB blocks of chunks (crc32, length, type; FULL/FIRST/MIDDLE/LAST) that
    hold protobuf ``Record`` messages. A record cut short by a crash is ignored.
    """
    try:
        from google.protobuf.message import DecodeError
        from wandb.proto import wandb_internal_pb2 as pb

        data = path.read_bytes()
    except (ImportError, OSError):
        return None
    if data[:4] != b":W&B":
        return None
    block, pos, record, steps = 32768, 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # too little room left for a chunk header: padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        record = chunk if kind in (1, 2) else record + chunk
        if kind not in (1, 4) or pos > len(data):
            continue
        message = pb.Record()  # type: ignore[attr-defined]
        try:
            message.ParseFromString(record)
        except DecodeError:
            continue
        for item in message.history.item:
            if (item.key or "/".join(item.nested_key)) == STEP_KEY:
                with contextlib.suppress(ValueError, TypeError):
                    steps.append(int(json.loads(item.value_json)))
    return steps
