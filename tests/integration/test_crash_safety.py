"""SIGKILL at any moment, even inside a checkpoint write: the newest checkpoint always loads, and
training resumed from it ends bitwise where the uninterrupted run ends.

Every run is a real ``train.py`` process on the tiny toy2d config (WGAN-GP, n_critic 5, replay
buffer, checkpoints every 2 generator steps, 6 steps).
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch

from gan_zoo.checkpointing import read_checkpoint
from gan_zoo.checkpointing.atomic_io import AtomicCheckpointIO
from gan_zoo.checkpointing.resume import find_last_checkpoint
from tests.integration.exactness import (
    SIGNAL_AT,
    assert_same_state,
    cli_args,
    cli_env,
    run_cli,
)
from tests.warm_cli import run_python

MODEL = ["model=wgan_gp", "model.n_critic=5"]
IO = "checkpoint_io._target_=tests.integration.fault_injection"


def finish(run_dir: Path, overrides: list[str], timeout: float = 300) -> tuple[int, str]:
    """Run ``train.py`` to its end; its exit status and stderr."""
    process = run_cli(run_dir, overrides)
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run's step-6 checkpoint."""
    run = tmp_path_factory.mktemp("reference")
    code, err = finish(run, MODEL)
    assert code == 0, err[-2000:]
    return run / "checkpoints" / "step000006.ckpt"


def test_atomic_writes_leave_the_old_file_or_the_new_one(tmp_path: Path) -> None:
    io, path = AtomicCheckpointIO(), tmp_path / "ckpts" / "last.ckpt"
    io.save_checkpoint({"step": torch.tensor(1)}, path)
    io.save_checkpoint({"step": torch.tensor(2)}, path)
    assert io.load_checkpoint(path)["step"] == 2
    with pytest.raises(Exception):  # noqa: B017 - whatever torch.save raises for a lambda
        io.save_checkpoint({"step": torch.tensor(3), "bad": lambda: None}, path)
    assert io.load_checkpoint(path)["step"] == 2  # the failed write changed nothing
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temp file left


def test_sigkill_between_checkpoints_then_resume_is_exact(reference: Path, tmp_path: Path) -> None:
    # Killed after generator step 3; the last checkpoint is step 2's.
    kill = [SIGNAL_AT, "+callbacks.fault.at_batch=3", "+callbacks.fault.signal=SIGKILL"]
    code, _ = finish(tmp_path, [*MODEL, *kill])
    assert code == -signal.SIGKILL
    folder = tmp_path / "checkpoints"
    assert find_last_checkpoint(folder) == folder / "last.ckpt"
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 2
    code, err = finish(tmp_path, [*MODEL, "ckpt_path=last"])
    assert code == 0, err[-2000:]
    assert_same_state(reference, tmp_path / "checkpoints" / "step000006.ckpt")


@pytest.mark.parametrize(
    ("at_save", "resumes_from"),
    [
        (3, "last.ckpt"),  # dies writing step000004.ckpt: last.ckpt (step 2) is the newest
        pytest.param(4, "step000004.ckpt", marks=pytest.mark.slow),  # dies writing last.ckpt
    ],
)
def test_sigkill_inside_a_checkpoint_write(
    at_save: int, resumes_from: str, reference: Path, tmp_path: Path
) -> None:
    fault = [f"{IO}.KillDuringWrite", f"+checkpoint_io.at_save={at_save}"]
    code, _ = finish(tmp_path, [*MODEL, *fault])
    assert code == -signal.SIGKILL
    folder = tmp_path / "checkpoints"
    assert list(folder.glob(".*.tmp-*")), "the write was interrupted half-way"
    newest = find_last_checkpoint(folder)  # also removes the half-written temp file
    assert newest == folder / resumes_from and not list(folder.glob(".*.tmp-*"))
    assert read_checkpoint(newest)["global_step"] in (2, 4)  # complete and loadable
    code, err = finish(tmp_path, [*MODEL, "ckpt_path=last"])
    assert code == 0, err[-2000:]
    assert_same_state(reference, folder / "step000006.ckpt")


def _kill_at_random(run_dir: Path, rng: random.Random) -> bool:
    """Start a resuming run, SIGKILL it at a random moment once it writes; False if it ended."""
    folder = run_dir / "checkpoints"
    before = {p: p.stat().st_mtime_ns for p in folder.glob("*")} if folder.is_dir() else {}
    process = run_cli(run_dir, [*MODEL, f"{IO}.SlowCheckpointIO", "ckpt_path=last"])
    while process.poll() is None:  # wait for its first write (a new or rewritten file)
        now = {p: p.stat().st_mtime_ns for p in folder.glob("*")} if folder.is_dir() else {}
        if any(before.get(p) != t for p, t in now.items()):
            break
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 3.0))  # saves take most of this window, so kills land in them
    if process.poll() is not None:
        return False
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    print("killed", "inside a write" if list(folder.glob(".*.tmp-*")) else "between writes")
    return True


@pytest.mark.slow
def test_random_sigkills_always_leave_a_checkpoint_to_resume_from(
    reference: Path, tmp_path: Path
) -> None:
    rng, kills = random.Random(5), 0
    for _ in range(4):  # bounded: at most 4 launches with a kill
        if not _kill_at_random(tmp_path, rng):
            break
        kills += 1
        newest = find_last_checkpoint(tmp_path / "checkpoints")
        if newest is not None:  # killed before the first save is fine too
            assert "optimizer_states" in read_checkpoint(newest)
    assert kills >= 2
    process = run_cli(tmp_path, [*MODEL, "ckpt_path=last"])
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-2000:]
    assert_same_state(reference, tmp_path / "checkpoints" / "step000006.ckpt")


def test_train_refuses_a_truncated_checkpoint_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "checkpoints" / "last.ckpt"
    bad.parent.mkdir()
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(1000)}}, bad)
    bad.write_bytes(bad.read_bytes()[:1500])
    # An explicit path is read as given (ckpt_path=last skips unloadable files instead).
    args = cli_args(tmp_path, [*MODEL, f"ckpt_path={bad}"])
    result = run_python(args, timeout=300, env=cli_env())
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: checkpoint {bad} is truncated or corrupt"), last
