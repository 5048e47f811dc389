"""Which strategy a run gets: gan_zoo's ``gan_ddp`` wherever Lightning would run its own DDP, a
registered name for Python users, and one-line refusals naming the fix. No process is started
here; the 2-process behaviour is in tests/integration/test_ddp.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.strategies import (
    DDPStrategy,
    ParallelStrategy,
    SingleDeviceStrategy,
    StrategyRegistry,
)

from gan_zoo.distributed import GANDDPStrategy, check_strategy
from gan_zoo.errors import ConfigValueError
from gan_zoo.models import NonSaturatingGAN
from gan_zoo.nets import MLPDiscriminator, MLPGenerator
from gan_zoo.training import choose_strategy, prepare
from tests.helpers import FAST, compose_train

# (accelerator, devices, num_nodes, whether Lightning runs several processes) with 4 GPUs
GPU_SPECS = [
    ("gpu", 1, 1, False),
    ("gpu", "1", 1, False),
    ("gpu", [2], 1, False),
    ("gpu", "3,", 1, False),  # Lightning: a trailing comma means the GPU with that index
    ("gpu", 2, 1, True),
    ("gpu", "2", 1, True),
    ("gpu", "0,1", 1, True),
    ("gpu", [0, 3], 1, True),
    ("gpu", -1, 1, True),
    ("gpu", "-1", 1, True),
    ("gpu", "auto", 1, True),
    ("cuda", "auto", 1, True),
    ("auto", "auto", 1, True),
    ("auto", 1, 1, False),
    ("auto", 1, 2, True),  # one device per node, two nodes
]
CPU_SPECS = [
    ("cpu", 1, 1, False),
    ("cpu", "1", 1, False),
    ("cpu", "auto", 1, False),  # Lightning runs one CPU process for "auto"
    ("cpu", 2, 1, True),
    ("cpu", "2", 1, True),
    ("cpu", 3, 1, True),
    ("cpu", 1, 3, True),
]
PARALLEL = [
    name
    for name in StrategyRegistry.available_strategies()
    if issubclass(StrategyRegistry[name]["strategy"], ParallelStrategy)
    and not issubclass(StrategyRegistry[name]["strategy"], GANDDPStrategy)
]


@pytest.fixture
def four_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lightning's device parsers see 4 CUDA devices."""
    import lightning.fabric.accelerators.cuda as fabric_cuda
    import lightning.pytorch.accelerators.cuda as pytorch_cuda

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(fabric_cuda, "num_cuda_devices", lambda: 4)
    monkeypatch.setattr(pytorch_cuda, "num_cuda_devices", lambda: 4)


def _chosen(accelerator: str, devices: Any, nodes: int, strategy: str = "auto") -> Any:
    node = {"accelerator": accelerator, "devices": devices, "num_nodes": nodes}
    return choose_strategy({**node, "strategy": strategy})


@pytest.mark.parametrize(("accelerator", "devices", "nodes", "several"), GPU_SPECS)
def test_every_multi_gpu_spec_gets_gan_ddp(
    four_gpus: None, accelerator: str, devices: Any, nodes: int, several: bool
) -> None:
    assert _chosen(accelerator, devices, nodes) == ("gan_ddp" if several else "auto")
    assert _chosen(accelerator, devices, nodes, "ddp") == "gan_ddp"


@pytest.mark.parametrize(("accelerator", "devices", "nodes", "several"), CPU_SPECS)
def test_every_multi_process_cpu_spec_gets_gan_ddp(
    accelerator: str, devices: Any, nodes: int, several: bool
) -> None:
    assert _chosen(accelerator, devices, nodes) == ("gan_ddp" if several else "auto")


def test_specs_lightning_refuses_are_left_to_its_own_error() -> None:
    assert not torch.cuda.is_available()  # this machine: no GPU
    assert _chosen("gpu", 2, 1) == "auto"  # the real Trainer raises Lightning's own error


def test_gan_ddp_is_a_registered_strategy_name() -> None:
    """Python users write Trainer(strategy="gan_ddp", devices=N) after `import gan_zoo`."""
    assert StrategyRegistry["gan_ddp"]["strategy"] is GANDDPStrategy
    trainer = pl.Trainer(strategy="gan_ddp", accelerator="cpu", devices=2, logger=False)
    assert isinstance(trainer.strategy, GANDDPStrategy) and trainer.num_devices == 2
    fork = pl.Trainer(strategy="gan_ddp_fork", accelerator="cpu", devices=2, logger=False)
    assert isinstance(fork.strategy, GANDDPStrategy)


@pytest.mark.parametrize("name", PARALLEL)
def test_lightnings_other_parallel_strategies_are_refused_naming_the_fix(name: str) -> None:
    cls = StrategyRegistry[name]["strategy"]
    strategy = cls.__new__(cls)  # uninitialised: DeepSpeed, XLA, ... need not be installed
    with pytest.raises(ConfigValueError) as info:
        check_strategy(strategy)
    message = str(info.value)
    assert "\n" not in message and f"strategy='{type(strategy).__name__}' is invalid" in message
    assert "Trainer(strategy='gan_ddp', devices=2)" in message


def test_single_device_strategies_and_gan_ddp_pass() -> None:
    check_strategy(GANDDPStrategy())
    check_strategy(SingleDeviceStrategy(device=torch.device("cpu")))


def test_a_plain_multi_device_trainer_is_refused_before_any_step(tmp_path: Path) -> None:
    """What a Python user who writes Trainer(devices=2) gets: one line naming gan_ddp."""
    trainer = pl.Trainer(accelerator="cpu", devices=2, logger=False, default_root_dir=tmp_path)
    assert type(trainer.strategy) is DDPStrategy
    model = NonSaturatingGAN(MLPGenerator(hidden=4), MLPDiscriminator(hidden=4), latent_dim=2)
    model.trainer = trainer  # what fit does once it has launched the processes
    with pytest.raises(ConfigValueError, match=r"strategy='DDPStrategy' is invalid: .*gan_ddp"):
        model.on_fit_start()


def test_train_refuses_ddp_spawn_before_anything_runs(tmp_path: Path) -> None:
    overrides = [*FAST, "data=toy2d", "trainer=cpu", "trainer.devices=2"]
    cfg = compose_train([*overrides, "trainer.strategy=ddp_spawn"], run_dir=tmp_path)
    with pytest.raises(ConfigValueError, match=r"^trainer.strategy='DDPStrategy' is invalid"):
        prepare(cfg)
    assert not any(tmp_path.iterdir())  # no checkpoint, log or data index was written


def test_gan_ddp_destroys_its_gloo_group_at_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gloo group left to interpreter shutdown can abort the process (SIGABRT), and Lightning
    destroys the group at exit only for NCCL: gan_ddp registers the destroy for every backend."""
    import torch.distributed as dist

    from gan_zoo import distributed

    registered: list[Any] = []
    monkeypatch.setattr(distributed.atexit, "register", registered.append)
    trainer = pl.Trainer(strategy="gan_ddp", accelerator="cpu", devices=1, logger=False)
    trainer.strategy.setup_distributed()  # a one-process gloo group
    try:
        assert dist.is_initialized() and dist.get_backend() == "gloo"
        assert registered == [distributed.close_process_group]
        distributed.close_process_group()
        assert not dist.is_initialized()
        distributed.close_process_group()  # a no-op once closed, as at exit after an explicit close
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
