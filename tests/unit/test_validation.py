"""Validated input: every config value checked, once, by what consumes it, before any work; image
folders with bad files; data that does not fit the nets; W&B that never blocks and never leaks
keys."""

from __future__ import annotations

import os
import socket
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_zoo.errors import ConfigError, ConfigValueError
from gan_zoo.loggers import REDACTED, choose_mode, redact_secrets
from gan_zoo.training import prepare, train
from gan_zoo.validation import PositiveInt, check_arguments, describe, validated
from tests.helpers import CONFIG_DIR, FAST, compose_train
from tests.integration.exactness import cli_args, cli_env
from tests.warm_cli import run_python

GROUPS = {g: sorted(p.stem for p in (CONFIG_DIR / g).glob("*.yaml")) for g in ("model", "data")}


@pytest.mark.parametrize("data", ["mnist_subset", "toy2d", "toy1d"])
@pytest.mark.parametrize("model", GROUPS["model"])
def test_every_shipped_config_is_valid(model: str, data: str, tmp_path: Path) -> None:
    for extra in (["callbacks=none", "logger=none"], ["logger=tensorboard"]):
        run = prepare(compose_train([f"model={model}", f"data={data}", *extra], tmp_path))
        assert run.model.n_critic >= 1


BAD = [
    (["trainer.max_steps=abc"], "trainer.max_steps='abc' is invalid: expected an integer"),
    (["trainer.max_steps=-5"], "trainer: `max_steps` must be a non-negative integer or -1"),
    (["model.replay_ratio=1.5"], "model.replay_ratio=1.5 is invalid: expected a number >= 0 and"),
    (["model.generator_optimizer.lr=-0.1"], "(Invalid learning rate: -0.1)"),
    (["model.discriminator_optimizer.betas=[0.5,1.0]"], "Invalid beta parameter at index 1"),
    (["model.generator_optimizer.betas=[0.5]"], "model.generator_optimizer='Adam(lr=0.0002, b"),
    (["callbacks.fidelity.num_samples=1"], "callbacks.fidelity.num_samples=1 is invalid: exp"),
    (["callbacks.fidelity.num_real=1"], "callbacks.fidelity.num_real=1 is invalid: expected"),
    (["+metrics.inception_weight=w.pth"], "(did you mean 'inception_weights'?)"),
    (["seed=-3"], "seed=-3 is invalid: expected an integer >= 0 and <= 4294967295"),
    (["trainer.devices=0"], "trainer: `Trainer(devices=0)` value is not a valid input"),
    (["trainer.precision=8"], "trainer.precision=8 is invalid: expected one of"),
    (["trainer.accelerator=quantum"], "trainer: You selected an invalid accelerator name"),
    (["data.batch_size=0"], "data.batch_size=0 is invalid: expected an integer >= 1"),
    (["model=wgan_gp", "data.batch_size=2000"], "expected at most 1000 (the dataset's 5000 sam"),
    (["data.num_workers=-1"], "data.num_workers=-1 is invalid: expected an integer >= 0"),
    (["net.discriminator.norm=group"], "net.discriminator.norm='group' is invalid: expected one"),
    (["callbacks.model_checkpoint.save_top_k=-2"], "Invalid value for save_top_k=-2"),
    (["callbacks.fidelity.every_n_steps=often"], "every_n_steps='often' is invalid: expected an"),
    (["logger=wandb", "logger.wandb.mode=cloud"], "logger.wandb.mode='cloud' is invalid"),
    (["nan_guard.skip_nonfinite_steps=maybe"], "skip_nonfinite_steps='maybe' is invalid: expec"),
    (["preemption.exit_code=300"], "preemption.exit_code=300 is invalid: expected an integer"),
    (["+model.n_critc=3"], "model.n_critc=3 is invalid: expected an argument of NonSaturating"),
    (["+model.n_critc=3"], "(did you mean 'n_critic'?)"),
    (["+trainer.max_step=9"], "trainer.max_step=9 is invalid: expected an argument of Trainer"),
    (["+trainer.max_step=9"], "(did you mean 'max_steps'?)"),
    (["+net.latentdim=8"], "net.latentdim=8 is invalid: expected a known key (did you mean"),
    (["model._target_=gan_zoo.models.Nope"], "model._target_='gan_zoo.models.Nope' is invalid"),
    (["data=image_folder"], "data.root='???' is invalid: expected a value: the key is mandatory"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD)
def test_a_bad_value_is_one_error_naming_key_value_and_range(
    overrides: list[str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as info:
        prepare(compose_train(overrides, tmp_path))
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_rule_lives_in_the_signature_and_serves_python_users_too() -> None:
    """One declaration gives the type check, the bound and the wording of the error."""

    @validated
    def f(steps: PositiveInt, rate: float = 0.5) -> int:
        return steps

    assert f(3) == 3
    with pytest.raises(ConfigValueError, match=r"^steps=0 is invalid: expected an integer >= 1$"):
        f(0)
    with pytest.raises(ConfigValueError, match=r"^steps=True is invalid"):  # YAML true is no 1
        f(True)
    with pytest.raises(ConfigValueError, match=r"rate='x' is invalid: expected a number"):
        f(1, rate="x")
    with pytest.raises(ConfigValueError, match=r"stesp=1 is invalid: .*did you mean 'steps'"):
        f(stesp=1)  # type: ignore[call-arg]
    assert describe(PositiveInt | None) == "an integer >= 1, or null"


def test_third_party_targets_are_checked_by_their_signature() -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    check_arguments(ModelCheckpoint, {"every_n_train_steps": 5, "save_last": True}, "cb")
    with pytest.raises(ConfigValueError, match=r"cb.every_n_train_step=5 .* 'every_n_train_steps'"):
        check_arguments(ModelCheckpoint, {"every_n_train_step": 5}, "cb")
    with pytest.raises(ConfigValueError, match=r"cb.every_n_train_steps='x' is invalid"):
        check_arguments(ModelCheckpoint, {"every_n_train_steps": "x"}, "cb")


def test_train_py_refuses_before_building_anything(tmp_path: Path) -> None:
    args = cli_args(tmp_path, ["+model.n_critc=3"])
    result = run_python(args, timeout=300, env=cli_env())
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: model.n_critc=3 is invalid") and "Traceback" not in lines
    assert "GPU available" not in result.stderr  # refused while building, before any Trainer
    assert not (tmp_path / "checkpoints").exists()


def test_optimizer_betas_of_the_wrong_length_exit_2_in_one_line(run_cli, tmp_path: Path) -> None:
    # Adam reads betas[1] unchecked: a single beta must not die in an IndexError traceback.
    result = run_cli(
        "train.py", *FAST, "model.generator_optimizer.betas=[0.5]", f"hydra.run.dir={tmp_path}"
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: model.generator_optimizer='Adam(lr=0.0002, betas=[0.5])'"), last
    assert "Traceback" not in result.stderr and not (tmp_path / "checkpoints").exists()


def test_fidelity_bounds_do_not_reach_other_callbacks(tmp_path: Path) -> None:
    # Only FID/IS need 2 samples: a sample grid of one image stays valid.
    run = prepare(compose_train(["callbacks.sample_grid.num_samples=1"], tmp_path))
    assert run.config["callbacks"]["sample_grid"]["num_samples"] == 1


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
    result = run_python(args, timeout=300, env=cli_env())
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


@pytest.mark.timeout(120)  # a hang fails the test; no wall-clock bound is asserted
def test_wandb_with_a_key_but_a_hanging_network_goes_offline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    # A name lookup that never returns (socket timeouts do not cover DNS).
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: time.sleep(3600))
    with pytest.warns(UserWarning, match="unreachable: logging offline"):
        assert choose_mode() == "offline"


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
    result = run_python(args, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert list((tmp_path / "wandb").glob("offline-run-*/*.wandb"))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 10
    leaked = [p for p in files if secret.encode() in p.read_bytes()]
    assert not leaked and secret not in result.stderr + result.stdout
    assert os.environ.get("WANDB_API_KEY") != secret
