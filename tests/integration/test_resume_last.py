"""``ckpt_path=last`` picks the checkpoint furthest into training (generator step, then
modification time) in the run's checkpoint folder, wherever it is configured, skipping files that
do not load."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from gan_zoo.checkpointing import CheckpointError, read_checkpoint
from gan_zoo.checkpointing.resume import find_last_checkpoint, resolve_ckpt_path
from gan_zoo.training import train
from tests.helpers import compose_train
from tests.integration.exactness import TINY, run_in_process


def write(folder: Path, name: str, step: int, mtime: int = 1_000_000) -> Path:
    """A small checkpoint-shaped file at ``step`` generator steps, with a set modification time."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    torch.save({"global_step": step, "w": torch.ones(3)}, path)
    os.utime(path, (mtime, mtime))
    return path


def test_nothing_to_resume_from_is_a_fresh_run(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    assert find_last_checkpoint(folder) is None
    assert resolve_ckpt_path("/some/file.ckpt", folder) == "/some/file.ckpt"
    folder.mkdir()
    stale = folder / ".last.ckpt.tmp-123-abcd"  # an interrupted write
    stale.write_bytes(b"half")
    with pytest.warns(UserWarning, match="no checkpoint under"):
        assert resolve_ckpt_path("last", folder) is None
    assert not stale.exists()


def test_the_generator_step_wins_over_modification_time(tmp_path: Path) -> None:
    """A copied or restored run directory has modification times in copy order."""
    folder = tmp_path / "checkpoints"
    write(folder, "last.ckpt", step=6, mtime=1_000_000)  # copied first: the oldest time
    write(folder, "step000006.ckpt", step=6, mtime=1_000_001)
    write(folder, "step000004.ckpt", step=4, mtime=1_000_002)
    write(folder, "step000002.ckpt", step=2, mtime=1_000_003)  # touched last
    assert find_last_checkpoint(folder) == folder / "step000006.ckpt"  # step 6, newer
    os.utime(folder / "last.ckpt", (1_000_001, 1_000_001))  # a full tie: last.ckpt
    assert resolve_ckpt_path("last", folder) == str(folder / "last.ckpt")


def test_a_corrupt_newest_checkpoint_falls_back_with_one_warning(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    write(folder, "step000002.ckpt", step=2)
    write(folder, "step000004.ckpt", step=4)
    newest = write(folder, "last.ckpt", step=6, mtime=1_000_009)
    newest.write_bytes(newest.read_bytes()[:300])  # truncated
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert find_last_checkpoint(folder) == folder / "step000004.ckpt"
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "\n" not in messages[0], messages
    assert messages[0].startswith(f"ckpt_path=last skips {newest}: checkpoint {newest} is trunc")


def test_no_loadable_checkpoint_is_a_one_line_error(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "last.ckpt").write_bytes(b"")
    (folder / "step000002.ckpt").write_bytes(b"\x00" * 99)
    with pytest.warns(UserWarning), pytest.raises(CheckpointError) as info:
        find_last_checkpoint(folder)
    assert str(info.value).startswith(f"ckpt_path=last: none of the 2 checkpoint(s) under {folder}")
    assert "\n" not in str(info.value)


def test_train_resumes_from_the_furthest_checkpoint_of_a_copied_run(tmp_path: Path) -> None:
    """A real run copied without its times, the furthest file damaged: step 6 is resumed."""
    original = tmp_path / "original"
    assert run_in_process(original, []) == "finished"  # 6 steps, checkpoints every 2
    copy = tmp_path / "copy" / "checkpoints"
    copy.mkdir(parents=True)
    for name in ("last.ckpt", "step000006.ckpt", "step000004.ckpt", "step000002.ckpt"):
        shutil.copy(original / "checkpoints" / name, copy / name)  # new times, in this order
    (copy / "last.ckpt").write_bytes((copy / "last.ckpt").read_bytes()[:1000])
    untouched = (copy / "step000004.ckpt").stat().st_mtime_ns
    with pytest.warns(UserWarning, match="ckpt_path=last skips .*last.ckpt"):
        outcome = run_in_process(copy.parent, ["ckpt_path=last", "trainer.max_steps=8"])
    assert outcome == "finished"
    assert read_checkpoint(copy / "step000008.ckpt")["global_step"] == 8
    # Resumed from step 6: step 4 was not trained (and checkpointed) again, as from step 2.
    assert (copy / "step000004.ckpt").stat().st_mtime_ns == untouched
    # Lightning kept the damaged last.ckpt (it is not the run's own) and wrote last-v1.ckpt: by
    # name or time the next ckpt_path=last could pick badly, by generator step it cannot.
    with pytest.warns(UserWarning, match="skips .*last.ckpt"):
        found = find_last_checkpoint(copy)
    assert found is not None and read_checkpoint(found)["global_step"] == 8


def test_last_follows_the_configured_checkpoint_folder(tmp_path: Path) -> None:
    """Checkpoints kept outside the run directory (a scratch disk, say): ``ckpt_path=last``
    and the returned ``last_ckpt`` look there, not in ``<run dir>/checkpoints``."""
    elsewhere = tmp_path / "scratch" / "ckpts"
    where = [f"callbacks.model_checkpoint.dirpath={elsewhere}", f"preemption.dirpath={elsewhere}"]
    first = train(compose_train([*TINY, *where, "trainer.max_steps=4"], run_dir=tmp_path / "run"))
    assert first["last_ckpt"] == str(elsewhere / "last.ckpt")
    assert not (tmp_path / "run" / "checkpoints").exists()
    again = [*TINY, *where, "ckpt_path=last", "trainer.max_steps=6"]
    second = train(compose_train(again, run_dir=tmp_path / "run"))
    assert read_checkpoint(second["last_ckpt"])["global_step"] == 6
    assert sorted(p.name for p in elsewhere.glob("step*.ckpt")) == [
        "step000002.ckpt",
        "step000004.ckpt",
        "step000006.ckpt",
    ]
