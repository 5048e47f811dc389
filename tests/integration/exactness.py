"""Tiny toy2d runs and a bitwise comparison of two checkpoints, for the resume tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from gan_zoo.callbacks import Preempted
from gan_zoo.checkpointing import read_checkpoint
from gan_zoo.training import train
from tests.helpers import FAST, ROOT, compose_train
from tests.warm_cli import WarmProcess, start_python

VARIANTS = ["minimax_gan", "ns_gan", "wgan_clip", "wgan_gp", "sngan"]

# 96 points, critic batches of 8: with n_critic=5 an epoch is 2 generator steps (checkpoints at
# epoch ends and in the middle), with n_critic=1 it is 12. A replay buffer makes the critic draw
# replay indices from the global RNG too. Every stateful option is on, so the bitwise comparison
# covers it: the EMA generator, the LR schedule (still far from 0 at step 6, and at the 40 steps
# of the DDP preemption test), the lazy penalty's position (WGAN-GP; a zero penalty elsewhere),
# and the sample grid, rendered on checkpoint steps (its toy scatter once drew from the global
# RNG).
TINY = [
    *FAST,
    "data=toy2d",
    "data.num_samples=96",
    "data.batch_size=8",
    "net.generator.hidden=16",
    "net.discriminator.hidden=16",
    "net.generator.depth=1",
    "net.discriminator.depth=1",
    "model.replay_size=32",
    "model.ema_decay=0.9",
    "model.lr_decay_steps=50",
    "model.penalty_every=2",
    "callbacks.sample_grid.every_n_steps=2",
    "callbacks.model_checkpoint.every_n_train_steps=2",
    "trainer.max_steps=6",
]
SIGNAL_AT = "+callbacks.fault._target_=tests.integration.fault_injection.SignalAt"

# Checkpoint entries that legitimately differ between two run directories.
PATH_KEYS = ("dirpath", "best_model_path", "last_model_path", "kth_best_model_path", "output_dir")


def run_in_process(run_dir: Path, overrides: list[str]) -> str:
    """``train.py`` in this process; "preempted" when a SIGTERM stopped it, else "finished"."""
    try:
        train(compose_train([*TINY, *overrides], run_dir=run_dir))
    except Preempted:
        return "preempted"
    return "finished"


def cli_args(run_dir: Path, overrides: list[str], base: list[str] = TINY) -> list[str]:
    """The command line of ``train.py`` on ``base`` (the tiny config) in ``run_dir``."""
    return [sys.executable, str(ROOT / "train.py"), *base, *overrides, f"hydra.run.dir={run_dir}"]


# A started train.py: a fork of the warm interpreter, or a real process when it cannot be one.
Process = WarmProcess | subprocess.Popen[str]


def run_cli(run_dir: Path, overrides: list[str]) -> Process:
    """Start ``train.py`` on the tiny config in ``run_dir``, in its own process group (a fork
    of the worker's warm interpreter: tests/warm_cli.py)."""
    return start_python(cli_args(run_dir, overrides), env=cli_env(), cwd=ROOT)


def cli_env() -> dict[str, str]:
    """The environment of the CLI runs: W&B offline, a fixed hash seed."""
    return {**os.environ, "WANDB_MODE": "offline", "PYTHONHASHSEED": "0"}


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two checkpoint trees differ: tensors by ``torch.equal`` (dtype and shape too)."""
    if isinstance(a, torch.Tensor):
        same = isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
        return [] if same and torch.equal(a, b) else [path]
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{path}.{k} (only in one)" for k in set(a) ^ set(b)]
        for key in set(a) & set(b):
            if not str(key).endswith(PATH_KEYS) and key != "gan_zoo_config":
                found += differences(a[key], b[key], f"{path}.{key}")
        return found
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def assert_same_state(expected: Path, actual: Path) -> None:
    """Two checkpoints hold bitwise the same training state: weights (EMA too), optimizers,
    schedulers, replay buffer, loop counters (every one of Lightning's progress counts; see
    ``compat.start_next_epoch_normally``), data position, RNG states.
    """
    a, b = read_checkpoint(expected), read_checkpoint(actual)
    assert a["global_step"] == b["global_step"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    diff = differences(a, b)
    assert not diff, f"{actual} differs from {expected} at {diff[:5]}"
