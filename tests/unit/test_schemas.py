"""Validated input: every config value checked by typed schemas before any work; image folders
with bad files; data that does not fit the nets; W&B that never blocks and never leaks keys."""

from __future__ import annotations

import os
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_zoo.errors import ConfigValueError
from gan_zoo.loggers import REDACTED, redact_secrets, wandb_logger
from gan_zoo.schemas import validate_config
from gan_zoo.training import train
from tests.helpers import CONFIG_DIR, FAST, compose_train
from tests.integration.exactness import cli_args, cli_env

GROUPS = {g: sorted(p.stem for p in (CONFIG_DIR / g).glob("*.yaml")) for g in ("model", "data")}


@pytest.mark.parametrize("data", [d for d in GROUPS["data"] if d != "image_folder"])
@pytest.mark.parametrize("model", GROUPS["model"])
def test_every_shipped_config_is_valid(model: str, data: str) -> None:
    for extra in (["callbacks=none", "logger=none"], ["logger=wandb"], ["logger=tensorboard"]):
        validate_config(compose_train([f"model={model}", f"data={data}", *extra]))


BAD = [
    (["trainer.max_steps=abc"], "trainer.max_steps='abc' is invalid: expected an integer >= 1"),
    (["model.replay_ratio=1.5"], "model.replay_ratio=1.5 is invalid: expected a number >= 0 and"),
    (["model.generator_optimizer.lr=-0.1"], "model.generator_optimizer.lr=-0.1 is invalid"),
    (["model.discriminator_optimizer.betas=[0.5,1.0]"], "expected two numbers in [0, 1)"),
    (
        ["model.generator_optimizer.betas=[0.5]"],
        "model.generator_optimizer.betas=[0.5] is invalid: expected two numbers in [0, 1)",
    ),
    (
        ["model.generator_optimizer.betas=[0.5,0.9,0.99]"],
        "model.generator_optimizer.betas=[0.5, 0.9, 0.99] is invalid: expected two numbers in",
    ),
    (
        ["callbacks.fid.num_samples=1"],
        "callbacks.fid.num_samples=1 is invalid: expected an integer >= 2, or 'auto'",
    ),
    (["callbacks.fid.num_real=1"], "callbacks.fid.num_real=1 is invalid: expected an integer >= 2"),
    (["callbacks.is.num_samples=1"], "callbacks.is.num_samples=1 is invalid: expected an integer"),
    (["+metrics.inception_weight=w.pth"], "(did you mean 'inception_weights'?)"),
    (["seed=-3"], "seed=-3 is invalid: expected an integer >= 0 and <= 4294967295"),
    (["trainer.devices=0"], "trainer.devices=0 is invalid: expected an integer >= 1, -1 or"),
    (["trainer.precision=8"], "trainer.precision=8 is invalid: expected one of 64, 32, 16"),
    (["trainer.accelerator=quantum"], "trainer.accelerator='quantum' is invalid: expected one"),
    (["data.batch_size=0"], "data.batch_size=0 is invalid: expected an integer >= 1"),
    (["data.num_workers=-1"], "data.num_workers=-1 is invalid: expected an integer >= 0"),
    (["net.discriminator.norm=group"], "net.discriminator.norm='group' is invalid: expected one"),
    (["callbacks.model_checkpoint.save_top_k=-2"], "save_top_k=-2 is invalid: expected an int"),
    (["callbacks.fid.every_n_steps=often"], "every_n_steps='often' is invalid: expected an int"),
    (["logger=wandb", "logger.wandb.mode=cloud"], "logger.wandb.mode='cloud' is invalid"),
    (["nan_guard.skip_nonfinite_steps=maybe"], "skip_nonfinite_steps='maybe' is invalid"),
    (["preemption.exit_code=300"], "preemption.exit_code=300 is invalid: expected an integer"),
    (["+model.n_critc=3"], "model.n_critc=3 is invalid: expected an argument of the _target_"),
    (["+model.n_critc=3"], "(did you mean 'n_critic'?)"),
    (["+trainer.max_step=9"], "trainer.max_step=9 is invalid: expected an argument of the"),
    (["+net.latentdim=8"], "net.latentdim=8 is invalid: expected a known key (did you mean"),
    (["model._target_=gan_zoo.models.Nope"], "model._target_='gan_zoo.models.Nope' is invalid"),
    (["data=image_folder"], "data.root='???' is invalid: expected a value: the key is mandatory"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD)
def test_a_bad_value_is_one_error_naming_key_value_and_range(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigValueError) as info:
        validate_config(compose_train(overrides))
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_train_py_refuses_before_building_anything(tmp_path: Path) -> None:
    started = time.monotonic()
    args = cli_args(tmp_path, ["+model.n_critc=3"])
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, env=cli_env())
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: model.n_critc=3 is invalid") and "Traceback" not in lines
    assert "Seed set" not in result.stderr  # refused before seeding, building or training
    assert not (tmp_path / "checkpoints").exists()
    assert time.monotonic() - started < 120


def test_optimizer_betas_of_the_wrong_length_exit_2_in_one_line(run_cli, tmp_path: Path) -> None:
    # Adam indexes betas[1]: a single beta used to pass validation and die in an IndexError.
    result = run_cli(
        "train.py", *FAST, "model.generator_optimizer.betas=[0.5]", f"hydra.run.dir={tmp_path}"
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: model.generator_optimizer.betas=[0.5] is invalid: expected two numbers in [0, 1)"
    )
    assert "Traceback" not in result.stderr and not (tmp_path / "checkpoints").exists()


def test_fidelity_bounds_do_not_reach_other_callbacks() -> None:
    # Only FID/IS need 2 samples: a sample grid of one image stays valid.
    resolved = validate_config(compose_train(["callbacks.sample_grid.num_samples=1"]))
    assert resolved["callbacks"]["sample_grid"]["num_samples"] == 1


# --- image folders ---------------------------------------------------------------------------


def _images(root: Path, count: int = 4, corrupt: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (30 + i, 30), (40 * i, 0, 0)).save(root / f"{i}.png")
    for i in range(corrupt):
        (root / f"broken{i}.jpg").write_bytes(np.random.default_rng(i).bytes(300))
    return root


def _image_run(root: Path, *extra: str) -> list[str]:
    overrides = ["data=image_folder", f"data.root={root}", "data.image_size=28"]
    overrides += ["data.batch_size=2", "net.generator.width=8", "net.discriminator.width=8"]
    overrides += ["~callbacks.sample_grid", "trainer.max_steps=2", *FAST, *extra]
    return overrides


def test_corrupt_images_are_skipped_and_counted_once_in_a_real_run(tmp_path: Path) -> None:
    root = _images(tmp_path / "images", count=4, corrupt=2)
    cfg = compose_train(_image_run(root), run_dir=tmp_path / "run")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(cfg)
    skipped = [w for w in caught if "skipped 2 unreadable image file(s) of 6" in str(w.message)]
    assert len(skipped) == 1


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ("corrupt+strict", "data.root="),
        ("none", "no image files were found"),
        ("all corrupt", "all 2 failed to open"),
    ],
)
def test_bad_image_folders_are_one_line_errors(files: str, message: str, tmp_path: Path) -> None:
    root = tmp_path / "images"
    if files == "corrupt+strict":
        _images(root, count=3, corrupt=1)
    elif files == "none":
        root.mkdir()
        (root / "readme.txt").write_text("no images")
    else:
        _images(root, count=0, corrupt=2)
    extra = ["data.strict=true"] if files == "corrupt+strict" else []
    args = cli_args(tmp_path / "run", _image_run(root, *extra), base=[])
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, env=cli_env())
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in result.stderr
    if files == "corrupt+strict":
        assert "broken0.jpg" in last


def test_images_whose_channels_do_not_fit_the_nets_are_refused(tmp_path: Path) -> None:
    root = _images(tmp_path / "images")
    overrides = _image_run(root, "data.channels=1", "net.generator.channels=3")
    with pytest.raises(ConfigValueError, match=r"net.generator=.*\(1, 28, 28\)"):
        train(compose_train(overrides, run_dir=tmp_path))
    assert not (tmp_path / "checkpoints").exists()


# --- W&B ---------------------------------------------------------------------------------------


def test_wandb_with_a_key_but_no_network_goes_offline_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    started = time.monotonic()
    logger = wandb_logger(save_dir=str(tmp_path))
    assert logger._wandb_init["mode"] == "offline"
    assert time.monotonic() - started < 5


def test_secrets_are_redacted_from_configs() -> None:
    env = {"WANDB_API_KEY": "sk-secret-value-123", "HOME": "/root"}
    config = {"logger": {"notes": "sk-secret-value-123", "api_key": "abc"}, "home": "/root"}
    assert redact_secrets(config, env) == {
        "logger": {"notes": REDACTED, "api_key": REDACTED},
        "home": "/root",
    }


def test_a_wandb_key_never_reaches_the_run_directory(tmp_path: Path) -> None:
    secret = "fake0wandb0key0" + "7" * 25
    env = {**cli_env(), "WANDB_API_KEY": secret, "WANDB_BASE_URL": "http://127.0.0.1:9"}
    env.pop("WANDB_MODE")  # no key check short-cut: the factory sees the key and no network
    args = cli_args(tmp_path, ["logger=wandb", "trainer.max_steps=2"])
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert list((tmp_path / "wandb").glob("offline-run-*/*.wandb"))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 10
    leaked = [p for p in files if secret.encode() in p.read_bytes()]
    assert not leaked and secret not in result.stderr + result.stdout
    assert os.environ.get("WANDB_API_KEY") != secret
