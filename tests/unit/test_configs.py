"""Every config group option composes with the real train.yaml and instantiates."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gan_zoo.models import GAN
from gan_zoo.training import build, instantiate_node
from tests.helpers import CONFIG_DIR, MODELS, compose_train, leaves, tuned_settings


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


DATA_OVERRIDES = {
    "image_folder": ["data.root={root}"],
    "mnist": [],  # instantiating downloads nothing; only prepare_data/setup touch the disk
    "cifar10": [],
}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("data", ["mnist_subset", "toy2d", "toy1d", "cifar10", "image_folder"])
def test_every_model_builds_for_every_data_family(model: str, data: str, tmp_path: Path) -> None:
    overrides = [f"model={model}", f"data={data}"]
    overrides += [o.format(root=tmp_path) for o in DATA_OVERRIDES.get(data, [])]
    cfg = compose_train(overrides, run_dir=tmp_path)
    datamodule, gan = build(cfg)
    assert isinstance(gan, GAN) and type(gan).__name__ == cfg.model._target_.rsplit(".", 1)[1]
    z = torch.randn(2, gan.latent_dim)
    labels = [torch.tensor([0, 1])] if gan.num_classes else []  # a class-conditional model
    fake = gan.generator.eval()(z, *labels)
    assert tuple(fake.shape[1:]) == tuple(datamodule.sample_shape)
    assert gan.discriminator.eval()(fake, *labels).shape == (2,)


@pytest.mark.parametrize("option", _options("data"))
def test_data_group(option: str, tmp_path: Path) -> None:
    overrides = [f"data={option}"] + [
        o.format(root=tmp_path) for o in DATA_OVERRIDES.get(option, [])
    ]
    dm = instantiate_node(compose_train(overrides, run_dir=tmp_path).data, "data")
    assert isinstance(dm, pl.LightningDataModule) and len(dm.sample_shape) in (1, 3)


@pytest.mark.parametrize("option", _options("net"))
def test_net_group(option: str, tmp_path: Path) -> None:
    overrides = [f"data={option}"] + [
        o.format(root=tmp_path) for o in DATA_OVERRIDES.get(option, [])
    ]
    cfg = compose_train(overrides, run_dir=tmp_path)
    assert cfg.net == compose_train(overrides + [f"net={option}"], run_dir=tmp_path).net
    gen, disc = instantiate(cfg.net.generator), instantiate(cfg.net.discriminator)
    assert gen.output_shape == disc.input_shape


@pytest.mark.parametrize("option", _options("trainer"))
def test_trainer_group(option: str, tmp_path: Path) -> None:
    cfg = compose_train([f"trainer={option}", "trainer.accelerator=cpu"], run_dir=tmp_path)
    trainer = instantiate(cfg.trainer, logger=False)
    assert isinstance(trainer, pl.Trainer) and trainer.max_steps == cfg.trainer.max_steps


@pytest.mark.parametrize("option", _options("logger"))
def test_logger_group(option: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    cfg = compose_train([f"logger={option}"], run_dir=tmp_path)
    loggers = [instantiate(node) for node in cfg.logger.values()]
    assert all(isinstance(lg, pl.loggers.Logger) for lg in loggers)
    assert len(loggers) == (0 if option == "none" else 1)


@pytest.mark.parametrize("option", _options("callbacks"))
def test_callbacks_group(option: str, tmp_path: Path) -> None:
    cfg = compose_train([f"callbacks={option}"], run_dir=tmp_path)
    callbacks = [instantiate(node) for node in cfg.callbacks.values()]
    assert all(isinstance(cb, pl.Callback) for cb in callbacks)


@pytest.mark.parametrize("option", _options("debug") + _options("experiment"))
def test_global_option_groups_compose(option: str, tmp_path: Path) -> None:
    group = "debug" if option in _options("debug") else "experiment"
    cfg = compose_train([f"{group}={option}"], run_dir=tmp_path)
    _, gan = build(cfg)  # nothing downloads before prepare_data, so CIFAR-10 builds too
    assert isinstance(gan, GAN)
    # Every callback it configures is a whole node: a stale key (callbacks.fid after the merge
    # into callbacks.fidelity) would be a node without a _target_.
    nodes = {key: node for key, node in (cfg.callbacks or {}).items() if node is not None}
    callbacks = [instantiate_node(node, f"callbacks.{key}") for key, node in nodes.items()]
    assert all(isinstance(cb, pl.Callback) for cb in callbacks)


def test_paths_default_data_dir_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("GAN_ZOO_DATA_DIR", str(tmp_path))
    cfg = compose_train(["data=cifar10"], run_dir=tmp_path)
    assert cfg.data.data_dir == str(tmp_path)


@pytest.mark.parametrize("option", _options("tuned"))
def test_tuned_group_applies_to_its_data_and_model_only(option: str, tmp_path: Path) -> None:
    """configs/tuned/<data>_<model>.yaml is picked by `model=M data=D` alone and builds; the same
    model on other data keeps its paper defaults; the command line still overrides it."""
    data, model = option.split("_", 1)
    tuned = compose_train([f"model={model}", f"data={data}"], run_dir=tmp_path)
    _, gan = build(tuned)
    assert isinstance(gan, GAN)
    file = tuned_settings(option)
    numbers = {
        key: value
        for key, value in leaves(file).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    assert numbers, "a tuned config sets at least one number"
    elsewhere = compose_train([f"model={model}", "data=mnist_subset"], run_dir=tmp_path)
    assert any(OmegaConf.select(elsewhere, k) != v for k, v in numbers.items())
    for key, value in numbers.items():
        assert OmegaConf.select(tuned, key) == value, key
        other = value + 1 if isinstance(value, int) else value * 2
        cli = compose_train([f"model={model}", f"data={data}", f"{key}={other}"], tmp_path)
        assert OmegaConf.select(cli, key) == other, key
    if "lr_decay_steps" in file.get("model", {}):  # the decay follows the run's own length
        cli = compose_train([f"model={model}", f"data={data}", "trainer.max_steps=7"], tmp_path)
        assert cli.trainer.max_steps == 7 and cli.model.lr_decay_steps == 7
        assert elsewhere.model.lr_decay_steps is None
