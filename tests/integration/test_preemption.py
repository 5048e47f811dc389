"""SIGTERM, as a cluster sends it on preemption: a checkpoint is saved, every process exits
cleanly, and the run resumes from it (bitwise the same as never stopping, under DDP too)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from gan_zoo.checkpointing import read_checkpoint
from tests.integration.exactness import Process, assert_same_state, run_cli

# Every rank keeps its own replay pool; the checkpoint holds all of them (exactness.TINY has one).
DDP = [
    "trainer=cpu",
    "trainer.devices=2",
    "data.batch_size=8",
    "model=wgan_gp",
    "trainer.max_steps=40",
    "callbacks.model_checkpoint.every_n_train_steps=5",
]


def _wait_for(path: Path, process: Process, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _all_exit(process: Process, timeout: float = 120) -> str:
    """Wait for the main process and then for every process of its group; its stderr."""
    _, err = process.communicate(timeout=timeout)
    deadline = time.monotonic() + 30
    while _group_alive(process.pid):  # DDP rank 1 is a child of rank 0
        assert time.monotonic() < deadline, "a rank did not exit after SIGTERM"
        time.sleep(0.2)
    return err


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path: Path) -> None:
    process = run_cli(tmp_path, ["model=wgan_gp", "trainer.max_steps=500"])
    _wait_for(tmp_path / "checkpoints" / "step000002.ckpt", process)
    os.kill(process.pid, signal.SIGTERM)
    err = _all_exit(process)
    assert process.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("preempted:")]
    saved = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    step = saved["global_step"]
    assert f"at generator step {step}; resume with the same hydra.run.dir and ckpt_path=" in line
    more = f"trainer.max_steps={step + 2}"
    resumed = run_cli(tmp_path, ["model=wgan_gp", "ckpt_path=last", more])
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == step + 2


def test_exit_code_after_preemption_is_configurable(tmp_path: Path) -> None:
    fault = ["+callbacks.fault._target_=tests.integration.fault_injection.SignalAt"]
    fault += ["+callbacks.fault.at_batch=5", "preemption.exit_code=143"]
    process = run_cli(tmp_path, fault)
    err = _all_exit(process)
    assert process.returncode == 143, err[-2000:]
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 5


@pytest.fixture(scope="module")
def ddp_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("ddp_reference")
    process = run_cli(run, DDP)
    err = _all_exit(process, timeout=400)
    assert process.returncode == 0, err[-2000:]
    return run / "checkpoints" / "step000040.ckpt"


def _stop(run: Path, process: Process, after: int, group: bool) -> int:
    """SIGTERM once ``step<after>.ckpt`` exists (to the process group or rank 0 only); the
    preemption checkpoint's step."""
    _wait_for(run / "checkpoints" / f"step{after:06d}.ckpt", process)
    if group:
        os.killpg(process.pid, signal.SIGTERM)
    else:
        os.kill(process.pid, signal.SIGTERM)
    err = _all_exit(process)
    assert process.returncode == 0, err[-2000:]
    assert sum(line.startswith("preempted:") for line in err.splitlines()) == 1, err[-2000:]
    return int(read_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"])


@pytest.mark.slow
def test_sigterm_under_ddp_twice_every_rank_exits_and_the_run_resumes_exactly(
    ddp_reference: Path, tmp_path: Path
) -> None:
    """Kubernetes signals only the container's first process (rank 0), SLURM every task. The
    run is stopped both ways, the second time after it was resumed (so the checkpoint comes from
    a resumed run; with batch 8 on 48 samples a rank's epoch is one step, so both stops fall on
    an epoch's last batch), and still ends bitwise where the uninterrupted run does."""
    first = _stop(tmp_path, run_cli(tmp_path, DDP), after=5, group=False)
    resumed = run_cli(tmp_path, [*DDP, "ckpt_path=last"])
    second = _stop(tmp_path, resumed, after=5 * (first // 5 + 1), group=True)
    assert first < second < 40
    finished = run_cli(tmp_path, [*DDP, "ckpt_path=last"])
    err = _all_exit(finished, timeout=400)
    assert finished.returncode == 0, err[-2000:]
    assert_same_state(ddp_reference, tmp_path / "checkpoints" / "step000040.ckpt")
