"""Which strategy a run gets: gan_zoo's DDP for every multi-device spec Lightning accepts, and a
one-line refusal of Lightning's other parallel strategies. No process is started here; the
2-process behaviour is in tests/integration/test_ddp.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.strategies import (
    DDPStrategy,
    ParallelStrategy,
    SingleDeviceStrategy,
    StrategyRegistry,
)
from omegaconf import OmegaConf

import gan_zoo.distributed
from gan_zoo.distributed import GANDDPStrategy, choose_strategy, local_device_count
from gan_zoo.errors import ConfigValueError
from gan_zoo.training import _strategy, train
from tests.helpers import FAST, compose_train

# (accelerator, devices, num_nodes, devices per node Lightning uses) with 4 visible GPUs
GPU_SPECS = [
    ("gpu", 1, 1, 1),
    ("gpu", "1", 1, 1),
    ("gpu", [2], 1, 1),
    ("gpu", "3,", 1, 1),  # Lightning: a trailing comma means the GPU with that index
    ("gpu", 2, 1, 2),
    ("gpu", "2", 1, 2),
    ("gpu", "0,1", 1, 2),
    ("gpu", [0, 3], 1, 2),
    ("gpu", -1, 1, 4),
    ("gpu", "-1", 1, 4),
    ("gpu", "auto", 1, 4),
    ("cuda", "auto", 1, 4),
    ("auto", "auto", 1, 4),
    ("auto", 1, 1, 1),
    ("auto", 1, 2, 1),  # one device per node, two nodes
]
CPU_SPECS = [
    ("cpu", 1, 1, 1),
    ("cpu", "1", 1, 1),
    ("cpu", "auto", 1, 1),  # Lightning runs one CPU process for "auto"
    ("cpu", 2, 1, 2),
    ("cpu", "2", 1, 2),
    ("cpu", 3, 1, 3),
    ("cpu", 1, 3, 1),
]
PARALLEL = [
    name
    for name in StrategyRegistry.available_strategies()
    if issubclass(StrategyRegistry[name]["strategy"], ParallelStrategy) and name != "ddp"
]


@pytest.fixture
def four_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lightning's device parsers see 4 CUDA devices (they only ask torch.cuda.device_count)."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)


def _expected(strategy: str, count: int, nodes: int) -> str:
    return "GANDDPStrategy" if strategy == "ddp" or count * nodes > 1 else strategy


def _chosen(strategy: str, accelerator: str, devices: Any, nodes: int) -> str:
    chosen = choose_strategy(strategy, accelerator, devices, nodes)
    return chosen if isinstance(chosen, str) else type(chosen).__name__


@pytest.mark.parametrize("strategy", ["auto", "ddp"])
@pytest.mark.parametrize(("accelerator", "devices", "nodes", "count"), GPU_SPECS)
def test_every_multi_gpu_spec_gets_gan_ddp(
    four_gpus: None, strategy: str, accelerator: str, devices: Any, nodes: int, count: int
) -> None:
    assert local_device_count(accelerator, devices) == count
    assert _chosen(strategy, accelerator, devices, nodes) == _expected(strategy, count, nodes)


@pytest.mark.parametrize("strategy", ["auto", "ddp"])
@pytest.mark.parametrize(("accelerator", "devices", "nodes", "count"), CPU_SPECS)
def test_every_multi_process_cpu_spec_gets_gan_ddp(
    strategy: str, accelerator: str, devices: Any, nodes: int, count: int
) -> None:
    assert local_device_count(accelerator, devices) == count
    assert _chosen(strategy, accelerator, devices, nodes) == _expected(strategy, count, nodes)


def test_auto_in_a_notebook_uses_one_gpu_as_lightning_does(
    four_gpus: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gan_zoo.distributed, "_IS_INTERACTIVE", True)
    assert choose_strategy("auto", "gpu", "auto") == "auto"
    assert isinstance(choose_strategy("auto", "gpu", 2), GANDDPStrategy)


@pytest.mark.parametrize(
    ("accelerator", "devices"), [("gpu", 2), ("cpu", -1), ("cpu", [0, 1]), ("cpu", 0)]
)
def test_specs_lightning_refuses_are_left_to_its_own_error(accelerator: str, devices: Any) -> None:
    assert not torch.cuda.is_available()  # this machine: no GPU
    assert local_device_count(accelerator, devices) == 0
    assert choose_strategy("auto", accelerator, devices) == "auto"


@pytest.mark.parametrize("name", PARALLEL)
def test_lightnings_other_parallel_strategies_are_refused_in_one_line(name: str) -> None:
    with pytest.raises(ConfigValueError) as info:
        choose_strategy(name, "cpu", 2)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"strategy={name!r} is invalid: expected auto or ddp"), message
    assert "single_device" in message


def test_strategy_objects_other_than_gan_ddp_are_refused() -> None:
    with pytest.raises(ConfigValueError, match=r"^strategy='DDPStrategy' is invalid"):
        choose_strategy(DDPStrategy(), "cpu", 2)
    ours, single = GANDDPStrategy(), SingleDeviceStrategy(device=torch.device("cpu"))
    assert choose_strategy(ours, "cpu", 2) is ours
    assert choose_strategy(single, "cpu", 1) is single
    assert choose_strategy("single_device", "cpu", 1) == "single_device"
    with pytest.raises(ConfigValueError, match=r"^strategy='nonsense' is invalid"):
        choose_strategy("nonsense", "cpu", 1)


def test_trainer_config_keys_are_read_as_lightning_would() -> None:
    """Hydra hands lists as ListConfig and strings as given; the key in errors is trainer.*."""
    node = OmegaConf.create({"accelerator": "cpu", "devices": "2", "strategy": "auto"})
    assert isinstance(_strategy(node), GANDDPStrategy)
    node = OmegaConf.create({"accelerator": "cpu", "devices": 1, "num_nodes": 2})
    assert isinstance(_strategy(node), GANDDPStrategy)
    assert _strategy(OmegaConf.create({"accelerator": "cpu", "devices": 1})) == "auto"
    node = OmegaConf.create({"devices": 2, "strategy": "ddp_find_unused_parameters_true"})
    with pytest.raises(ConfigValueError, match=r"^trainer.strategy='ddp_find_unused_param"):
        _strategy(node)


def test_train_refuses_ddp_spawn_before_anything_runs(tmp_path: Path) -> None:
    overrides = [*FAST, "data=toy2d", "trainer=cpu", "trainer.devices=2"]
    cfg = compose_train([*overrides, "trainer.strategy=ddp_spawn"], run_dir=tmp_path)
    with pytest.raises(ConfigValueError, match=r"^trainer.strategy='ddp_spawn' is invalid"):
        train(cfg)
    assert not any(tmp_path.iterdir())  # no checkpoint, log or data index was written
