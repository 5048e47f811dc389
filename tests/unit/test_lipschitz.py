"""The Lipschitz monitor: its measurements on critics with known answers, and its logging."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gan_zoo.callbacks import LipschitzMonitor
from gan_zoo.callbacks.lipschitz import (
    _log,
    critic_report,
    eval_mode,
    reshaped_spectral_norms,
    weight_summary,
)
from gan_zoo.models import NonSaturatingGAN, WGANClip, apply_spectral_norm
from gan_zoo.nets import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from gan_zoo.penalties import input_gradient_norms, interpolate


class _Linear(nn.Module):
    """D(x) = w . x + b with a known gradient w everywhere."""

    def __init__(self, weight: list[float]) -> None:
        super().__init__()
        self.layer = nn.Linear(len(weight), 1)
        with torch.no_grad():
            self.layer.weight.copy_(torch.tensor([weight]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x).squeeze(1)


def test_gradient_norm_of_a_linear_critic_is_the_weight_norm() -> None:
    norms = input_gradient_norms(_Linear([3.0, 4.0]), torch.randn(7, 2))
    torch.testing.assert_close(norms, torch.full((7,), 5.0))


def test_gradient_norm_leaves_parameter_grads_alone() -> None:
    critic = MLPDiscriminator(hidden=8, depth=2)
    with torch.no_grad():
        input_gradient_norms(critic, torch.randn(4, 2))  # even under no_grad
    assert all(p.grad is None for p in critic.parameters())


def test_interpolate_with_given_weights() -> None:
    real, fake = torch.ones(2, 3), torch.zeros(2, 3)
    mixed = interpolate(real, fake, epsilon=torch.tensor([0.25, 1.0]))
    torch.testing.assert_close(mixed, torch.tensor([[0.25] * 3, [1.0] * 3]))


def test_spectral_norms_of_linear_and_reshaped_conv_weights() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.Conv2d(1, 2, kernel_size=2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[3.0, 0.0], [0.0, -1.0]]))  # singular values 3, 1
        net[1].weight.zero_()
        net[1].weight[0, 0, 0, 0] = 2.0  # reshaped (2, 4) matrix with one entry 2
    assert reshaped_spectral_norms(net) == pytest.approx({"0": 3.0, "1": 2.0})


def test_conv_critic_report_keeps_both_norms_and_bounds_the_gradient() -> None:
    torch.manual_seed(0)
    critic = apply_spectral_norm(DCGANDiscriminator(width=8, norm="none"))
    x = torch.rand(16, 1, 28, 28) * 2 - 1
    for _ in range(50):  # spectral norm's power iterations, until its sigma has converged
        critic(x)
    report, raw = critic_report(critic, x, torch.rand(16, 1, 28, 28) * 2 - 1)
    layers = ["features.0", "features.2", "head"]
    # SN holds the reshaped weights at 1, not the convs' operator norms
    for layer in layers:
        assert report[f"sigma_reshaped_weight/{layer}"] == pytest.approx(1.0, abs=0.02)
    assert report["sigma_max/head"] == pytest.approx(report["sigma_reshaped_weight/head"])
    for conv in layers[:2]:  # (a receptive field inside the input: at least the reshaped norm)
        assert report[f"sigma_max/{conv}"] > report[f"sigma_reshaped_weight/{conv}"] + 0.05
        # each pixel lies in at most (4 / 2)^2 = 4 patches of a 4x4 stride-2 conv: at most 2x
        assert report[f"sigma_max/{conv}"] <= 2.0 * report[f"sigma_reshaped_weight/{conv}"]
    product = math.prod(report[f"sigma_max/{layer}"] for layer in layers)
    assert report["sigma_product"] == pytest.approx(product, rel=1e-6)
    # conv, LeakyReLU, conv, LeakyReLU, linear: the product bounds every gradient
    for kind in ("real", "fake", "interpolated"):
        assert raw[f"grad_norm/{kind}"].max() <= report["sigma_product"]


def test_spectral_norm_layers_report_one_and_product_bounds_the_gradient() -> None:
    critic = apply_spectral_norm(MLPDiscriminator(hidden=16, depth=2))
    x = torch.randn(64, 2)
    for _ in range(100):  # power iterations
        critic(x)
    report, raw = critic_report(critic, x, torch.randn(64, 2))
    sigmas = [v for k, v in report.items() if k.startswith("sigma_max/")]
    assert len(sigmas) == 3 and sigmas == pytest.approx([1.0] * 3, abs=0.02)
    # a ReLU stack of 1-Lipschitz layers has every gradient norm below the product of sigmas
    assert raw["grad_norm/interpolated"].max() <= report["sigma_product"] + 1e-5


def test_weight_summary_counts_weights_at_the_clip_value() -> None:
    weights = torch.tensor([0.01, -0.01, 0.005, -0.00999999, 0.0])
    stats = weight_summary(weights, clip_value=0.01)
    assert stats["frac_at_clip"] == pytest.approx(3 / 5)
    assert stats["abs_max"] == pytest.approx(0.01)
    assert "frac_at_clip" not in weight_summary(weights)


def test_eval_mode_restores_modes_and_keeps_batchnorm_statistics() -> None:
    critic = MLPDiscriminator(hidden=8, depth=2, norm="batch").train()
    critic.net[1].eval()  # one submodule in its own mode
    before = critic.net[1].running_mean.clone(), critic.net[4].running_mean.clone()
    with eval_mode(critic):
        critic_report(critic, torch.randn(16, 2) + 5, torch.randn(16, 2))
    assert critic.training and not critic.net[1].training and critic.net[4].training
    assert torch.equal(critic.net[1].running_mean, before[0])
    assert torch.equal(critic.net[4].running_mean, before[1])


def _fit(model: pl.LightningModule, tmp_path: Path, logger: Any, monitor: Any, steps: int = 4):
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(torch.randn(256, 2)), batch_size=16, drop_last=True)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_steps=steps,
        logger=logger,
        log_every_n_steps=1,
        callbacks=[monitor] if monitor else [],
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(model, loader)
    return trainer


def _nets(norm: str = "none") -> tuple[nn.Module, nn.Module]:
    return MLPGenerator(hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2, norm=norm)


def test_monitor_logs_to_csv_on_its_interval_with_the_clip_fraction(tmp_path: Path) -> None:
    model = WGANClip(*_nets(), latent_dim=2, n_critic=2, clip_value=0.01)
    trainer = _fit(model, tmp_path, CSVLogger(tmp_path, name="csv"), LipschitzMonitor(2, 8))
    with open(Path(trainer.logger.log_dir) / "metrics.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("lipschitz/sigma_product")]
    assert [int(r["step"]) for r in rows] == [2, 4]  # once per interval, not once per batch
    for row in rows:
        for kind in ("real", "fake", "interpolated"):
            for stat in ("mean", "std", "max", "frac_above_1"):
                assert math.isfinite(float(row[f"lipschitz/grad_norm/{kind}/{stat}"]))
        assert float(row["lipschitz/weights/abs_max"]) <= 0.01 + 1e-7
        assert 0.0 < float(row["lipschitz/weights/frac_at_clip"]) <= 1.0
        assert {"lipschitz/sigma_max/net.0", "lipschitz/sigma_max/net.6"} <= set(row)
        # a Linear layer's operator norm is its weight matrix's norm
        for layer in ("net.0", "net.3", "net.6"):
            reshaped = float(row[f"lipschitz/sigma_reshaped_weight/{layer}"])
            assert float(row[f"lipschitz/sigma_max/{layer}"]) == pytest.approx(reshaped)


def _image_fit(model: pl.LightningModule, tmp_path: Path, monitor: Any) -> None:
    torch.manual_seed(0)
    images = torch.rand(64, 1, 28, 28) * 2 - 1
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_steps=3,
        logger=False,
        callbacks=[monitor] if monitor else [],
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(model, DataLoader(TensorDataset(images), batch_size=8, drop_last=True))


@pytest.mark.parametrize("critic", ["mlp", "conv"])
def test_monitor_does_not_change_training(critic: str, tmp_path: Path) -> None:
    # SN (power iteration) and BatchNorm (running stats) would both notice a train-mode forward,
    # and the monitor's sampling would shift the RNG stream without its forked generator. (SNGAN
    # refuses BatchNorm critics, so SN is applied by hand here.) The conv critic also runs the
    # conv operator norms.
    states = []
    for monitor in (None, LipschitzMonitor(every_n_steps=1)):
        torch.manual_seed(0)
        if critic == "mlp":
            generator, discriminator = _nets(norm="batch")
        else:
            generator = DCGANGenerator(latent_dim=2, width=8)
            discriminator = DCGANDiscriminator(width=8, norm="batch")
        model = NonSaturatingGAN(generator, apply_spectral_norm(discriminator), latent_dim=2)
        if critic == "mlp":
            _fit(model, tmp_path / str(bool(monitor)), False, monitor, steps=3)
        else:
            _image_fit(model, tmp_path / str(bool(monitor)), monitor)
        if monitor is not None:
            assert any(k.startswith("sigma_max/") for k in monitor.last_scalars)
        states.append(model.state_dict())  # parameters, BatchNorm statistics, SN's u and v
    assert any("running_mean" in k for k in states[0]) and any("_u" in k for k in states[0])
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), key


def test_monitor_writes_tensorboard_histograms(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = WGANClip(*_nets(), latent_dim=2, n_critic=1)
    logger = TensorBoardLogger(tmp_path, name="tb")
    _fit(model, tmp_path, logger, LipschitzMonitor(every_n_steps=2), steps=2)
    events = EventAccumulator(logger.log_dir, size_guidance={"histograms": 0}).Reload()
    assert {"lipschitz/weights", "lipschitz/grad_norm/interpolated"} <= set(
        events.Tags()["histograms"]
    )
    assert "lipschitz/grad_norm/real/mean" in events.Tags()["scalars"]


def test_monitor_logs_wandb_histograms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    logged: list[dict[str, Any]] = []
    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    logger._experiment = SimpleNamespace(log=lambda data, **_: logged.append(data))
    raw = {"weights": torch.randn(10), "grad_norm/real": torch.rand(5)}
    _log(SimpleNamespace(loggers=[logger]), {"lipschitz/sigma_product": 1.0}, raw, step=7)
    histograms = [d for d in logged if "lipschitz/weights" in d]
    assert len(histograms) == 1 and histograms[0]["trainer/global_step"] == 7
    assert isinstance(histograms[0]["lipschitz/grad_norm/real"], wandb.Histogram)
    assert any(d.get("lipschitz/sigma_product") == 1.0 for d in logged)


def test_monitor_config_adds_to_the_default_callbacks(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    from tests.helpers import compose_train

    cfg = compose_train(["callbacks=with_lipschitz"], run_dir=tmp_path)
    default = compose_train([], run_dir=tmp_path)
    assert set(cfg.callbacks) == set(default.callbacks) | {"lipschitz_monitor"}
    monitor = instantiate(cfg.callbacks.lipschitz_monitor)
    assert isinstance(monitor, LipschitzMonitor) and monitor.every_n_steps == 100


@pytest.mark.slow
def test_monitor_under_two_process_ddp(run_cli, tmp_path: Path) -> None:
    result = run_cli(
        "train.py",
        "debug=fast",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        "model=wgan_clip",
        "data=toy2d",
        "trainer=cpu",
        "trainer.devices=2",
        "callbacks=with_lipschitz",
        "callbacks.lipschitz_monitor.every_n_steps=2",
        f"hydra.run.dir={tmp_path}",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (metrics,) = tmp_path.glob("**/metrics.csv")
    with open(metrics) as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("lipschitz/sigma_product")]
    assert [int(r["step"]) for r in rows] == [2, 4]  # rank 0 only: no duplicated rows
