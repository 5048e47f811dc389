"""The benches end in one line, not a traceback, on a checkpoint they cannot load."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from bench import discriminator_gap, sample_quality, small_data


def bench_on(name: str, checkpoint: Path, tmp_path: Path) -> tuple[Callable[[], None], list[str]]:
    """The bench ``name``'s main and its command line, pointed at ``checkpoint``."""
    if name == "small_data":  # reads a run directory's checkpoints/step<k>.ckpt
        return lambda: small_data.main(
            [str(checkpoint.parent.parent), "--out", str(tmp_path / "out"), "--steps", "2"]
        ), [name]
    module = {"sample_quality": sample_quality, "discriminator_gap": discriminator_gap}[name]
    return module.main, [name, str(checkpoint)]


@pytest.mark.parametrize("bench", ["sample_quality", "discriminator_gap", "small_data"])
def test_a_checkpoint_without_its_run_config_ends_the_bench_in_one_line(
    bench: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain ``lightning.Trainer`` checkpoint (no stored config): load_model's error, which
    says how to load it instead, as the bench's exit message (status 1), and nothing written."""
    checkpoint = tmp_path / "run/checkpoints/step000002.ckpt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "global_step": 2}, checkpoint)
    main, argv = bench_on(bench, checkpoint, tmp_path)
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    message = str(exit_info.value.code)
    assert message.startswith(f"error: checkpoint {checkpoint} has no ")
    assert "\n" not in message and "load_model(path, model_class=" in message
    assert not (tmp_path / "out").exists()


def test_a_corrupt_checkpoint_ends_the_bench_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = tmp_path / "half.ckpt"
    checkpoint.write_bytes(b"PK\x03\x04 not the rest of a zip")
    monkeypatch.setattr(sys, "argv", ["sample_quality", str(checkpoint)])
    with pytest.raises(
        SystemExit, match=rf"^error: checkpoint {checkpoint} is truncated or corrupt"
    ):
        sample_quality.main()
