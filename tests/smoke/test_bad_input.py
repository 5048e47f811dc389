"""Bad values are refused before training: one line naming the key, the value, what is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from gan_zoo.cli import check_group_overrides, guarded
from gan_zoo.training import train
from tests.helpers import FAST, compose_train

CASES = [
    (["model.n_critic=0"], "model.n_critic=0 is invalid: expected an integer >= 1"),
    (["model=wgan_clip", "model.clip_value=0"], "model.clip_value=0 is invalid"),
    (["model=wgan_clip", "model.clip_value=-0.01"], "model.clip_value=-0.01 is invalid"),
    (["model=wgan_gp", "model.gp_weight=-1"], "model.gp_weight=-1 is invalid"),
    (["net.latent_dim=0"], "latent_dim=0 is invalid: expected an integer >= 1"),
    (["net.generator.image_size=48"], "net.generator.image_size=48 is invalid: expected one of"),
    (["trainer.max_steps=-5"], "trainer: `max_steps` must be a non-negative integer or -1"),
    (["data=image_folder", "data.root=/no/such/dir"], "data.root='/no/such/dir' is invalid"),
    (["model=wgan_gp", "net.discriminator.norm=batch"], "model.discriminator='DCGAN"),
    (["data=toy2d", "data.name=ring9"], "data.name='ring9' is invalid: expected one of"),
    (
        ["model=nonexistent"],
        "model='nonexistent' is not a known model config; valid: fgan, hinge_gan, lsgan",
    ),
    (["data=imagenet"], "data='imagenet' is not a known data config; valid: cifar10"),
    (
        ["model.augment=diffaugment"],
        "model.augment='diffaugment' is invalid: expected an "
        "augmentation module or null; choose one with augment=diffaugment|ada|instance_noise",
    ),
    (["data.subset=5001"], "data.subset=5001 is invalid: expected at most 5000"),
]


@pytest.mark.parametrize(("overrides", "message"), CASES)
def test_refused_before_training(
    overrides: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same code path as train.py, in-process: group names first, then the composed config."""
    with pytest.raises(SystemExit) as exit_info:
        check_group_overrides(overrides)
        cfg = compose_train([*overrides, *FAST], run_dir=tmp_path)
        guarded(lambda: train(cfg))
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(("overrides", "message"), [CASES[0], CASES[7], CASES[10]])
def test_cli_exits_2_with_one_line(
    overrides: list[str], message: str, run_cli, tmp_path: Path
) -> None:
    result = run_cli("train.py", *overrides, *FAST, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "checkpoints").exists()  # refused before any training


def test_image_size_mismatch_between_data_and_nets_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    for i in range(4):
        Image.new("RGB", (40, 40), (i * 60, 0, 0)).save(tmp_path / f"{i}.png")
    overrides = ["data=image_folder", f"data.root={tmp_path}", "data.image_size=32"]
    overrides += ["data.batch_size=2", "net.generator.image_size=64", *FAST]
    cfg = compose_train(overrides, run_dir=tmp_path / "run")
    with pytest.raises(SystemExit):
        guarded(lambda: train(cfg))
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: net.generator=") and "(3, 32, 32)" in line, line


def test_generate_refuses_missing_and_corrupt_checkpoints(run_cli, tmp_path: Path) -> None:
    result = run_cli("generate.py", f"ckpt_path={tmp_path}/none.ckpt", f"out_dir={tmp_path}")
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"error: checkpoint {tmp_path}/none.ckpt does not exist"
    )
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    result = run_cli("generate.py", f"ckpt_path={bad}", f"out_dir={tmp_path}")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: checkpoint {bad} is truncated or corrupt"), last
