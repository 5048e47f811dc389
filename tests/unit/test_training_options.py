"""Training options: EMA, lazy regularization, LR decay, mixed precision, compile."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from gan_zoo.callbacks import NaNGuard
from gan_zoo.checkpointing import build_model, read_checkpoint
from gan_zoo.models import SNGAN, WGANGP, MinimaxGAN, NonSaturatingGAN, WGANClip
from gan_zoo.nets import MLPDiscriminator, MLPGenerator
from gan_zoo.penalties import gradient_penalty
from gan_zoo.training import train
from tests.helpers import FAST, compose_train

VARIANTS = [MinimaxGAN, NonSaturatingGAN, WGANClip, WGANGP, SNGAN]


def _gan(variant: type = WGANGP, **kwargs: Any) -> Any:
    torch.manual_seed(0)
    gen = MLPGenerator(latent_dim=2, hidden=16, depth=2)
    return variant(gen, MLPDiscriminator(hidden=16, depth=2), latent_dim=2, **kwargs)


class _Outputs(pl.Callback):
    def __init__(self) -> None:
        self.outputs: list[dict[str, Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.outputs.append({k: v.detach().clone() for k, v in outputs.items()})


def _fit(
    model: pl.LightningModule,
    steps: int = 3,
    callbacks: tuple[pl.Callback, ...] = (),
    **kwargs: Any,
) -> _Outputs:
    recorder = _Outputs()
    torch.manual_seed(1)
    # One training batch: the n_critic critic batches of 16 of a generator step.
    data = DataLoader(TensorDataset(torch.randn(512, 2)), batch_size=16 * model.n_critic)
    pl.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder, *callbacks],
        **kwargs,
    ).fit(model, data)
    return recorder


def test_ema_tracks_generator_and_is_used_for_sampling() -> None:
    model = _gan(NonSaturatingGAN, ema_decay=0.5, n_critic=1)
    expected = [p.clone() for p in model.generator.parameters()]
    history: list[list[Tensor]] = []

    class Track(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args: Any) -> None:
            history.append([p.detach().clone() for p in pl_module.generator.parameters()])

    pl.Trainer(
        accelerator="cpu",
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Track()],
    ).fit(model, DataLoader(TensorDataset(torch.randn(64, 2)), batch_size=16))
    for params in history:  # ema <- 0.5 ema + 0.5 g after every generator step
        expected = [0.5 * e + 0.5 * p for e, p in zip(expected, params)]
    for got, want in zip(model.generator_ema.parameters(), expected):
        torch.testing.assert_close(got, want)
    z = torch.randn(7, 2)
    torch.testing.assert_close(model.sample(7, z=z), model.generator_ema.eval()(z))
    assert not torch.allclose(model.sample(7, z=z), model.generator.eval()(z))
    assert any(k.startswith("generator_ema.") for k in model.state_dict())


def test_ema_is_restored_from_the_state_dict(tmp_path: Path) -> None:
    model = _gan(NonSaturatingGAN, ema_decay=0.9)
    _fit(model, steps=2)
    config = {
        "net": {
            "generator": {
                "_target_": "gan_zoo.nets.MLPGenerator",
                "latent_dim": 2,
                "hidden": 16,
                "depth": 2,
            },
            "discriminator": {
                "_target_": "gan_zoo.nets.MLPDiscriminator",
                "hidden": 16,
                "depth": 2,
            },
        },
        "model": {"_target_": "gan_zoo.models.NonSaturatingGAN", "latent_dim": 2, "ema_decay": 0.9},
    }
    rebuilt = build_model(config)
    rebuilt.load_state_dict(model.state_dict())
    z = torch.randn(5, 2)
    torch.testing.assert_close(rebuilt.sample(5, z=z), model.sample(5, z=z))


def test_lazy_penalty_runs_every_kth_critic_step_scaled_by_k() -> None:
    calls: list[int] = []
    critic_steps: list[int] = []

    class Counting(WGANGP):
        def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
            critic_steps.append(len(critic_steps))
            return super().discriminator_loss(real_scores, fake_scores)

        def discriminator_penalty(self, real: Tensor, fake: Tensor) -> Tensor:
            calls.append(critic_steps[-1])
            return real.new_tensor(0.25)

    model = _gan(Counting, n_critic=2, penalty_every=3)
    outputs = _fit(model, steps=3).outputs  # 6 critic steps: 0..5
    assert calls == [0, 3] and len(critic_steps) == 6
    assert [o["penalty"].item() for o in outputs] == [0.75] * 3  # 3 * 0.25, last computed value


def test_linear_lr_decay_over_generator_steps() -> None:
    model = _gan(WGANGP, n_critic=2, lr_decay_steps=4)
    _fit(model, steps=3)
    d_opt, g_opt = model.optimizers()
    assert g_opt.param_groups[0]["lr"] == pytest.approx(1e-4 * (1 - 3 / 4))
    assert d_opt.param_groups[0]["lr"] == pytest.approx(1e-4 * (1 - 3 / 4))


@pytest.mark.parametrize("variant", VARIANTS)
def test_bf16_mixed_stays_finite(variant: type) -> None:
    model = _gan(variant, n_critic=2)
    outputs = _fit(model, steps=3, precision="bf16-mixed").outputs
    assert all(torch.isfinite(v).all() for o in outputs for v in o.values())
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_fp16_gradient_penalty_follows_the_amp_recipe() -> None:
    critic = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    real, fake, eps = torch.randn(16, 2), torch.randn(16, 2), torch.rand(16)
    exact = gradient_penalty(critic, real, fake, epsilon=eps)
    scale = torch.tensor(2.0**10)  # GradScaler's scale once it has backed off from overflow
    torch.testing.assert_close(gradient_penalty(critic, real, fake, eps, grad_scale=scale), exact)
    with torch.autocast("cpu", dtype=torch.float16):
        scaled = gradient_penalty(critic, real, fake, eps, grad_scale=scale)
    assert scaled.dtype == torch.float32  # the norm is taken in fp32
    torch.testing.assert_close(scaled, exact, rtol=2e-2, atol=1e-3)


def _fit_fp16(
    model: pl.LightningModule, steps: int
) -> tuple[list[dict[str, Tensor]], torch.amp.GradScaler]:
    """CPU fp16 AMP with a GradScaler (Lightning's own "16-mixed" falls back to bf16 on CPU),
    under the default NaNGuard."""
    scaler = torch.amp.GradScaler("cpu")
    plugin = MixedPrecision("16-mixed", "cpu", scaler=scaler)
    return _fit(model, steps=steps, plugins=[plugin], callbacks=[NaNGuard()]).outputs, scaler


def _moved(model: pl.LightningModule, start: dict[str, Tensor], net: str) -> bool:
    state = model.state_dict()
    return any(not torch.equal(state[k], v) for k, v in start.items() if k.startswith(net))


@pytest.mark.parametrize("variant", VARIANTS)
def test_fp16_mixed_with_grad_scaler_and_nan_guard_trains_every_variant(variant: type) -> None:
    # n_critic=1: a critic step the scaler skips is then the one whose penalty is reported.
    model = _gan(variant, n_critic=1)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    outputs, scaler = _fit_fp16(model, steps=6)
    assert model.grad_scale(torch.device("cpu")) is not None
    assert model.trainer.global_step == 6 and len(outputs) == 6
    if variant is WGANGP:
        # the case the guard must tolerate: GradScaler's first scale (2**16) overflows the
        # penalty's autograd.grad; the scaler skips those critic steps and backs off
        assert any(not o["penalty"].isfinite() for o in outputs)
        assert scaler.get_scale() < 2.0**16
    assert all(torch.isfinite(v).all() for v in outputs[-1].values())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert _moved(model, start, "generator.") and _moved(model, start, "discriminator.")


def test_fp16_with_several_critic_steps_tolerates_the_overflows_the_scaler_skips() -> None:
    """With n_critic=5 the reported penalty can come from a critic step the scaler skipped
    earlier in the same generator step."""
    model = _gan(WGANGP, n_critic=5)
    _, scaler = _fit_fp16(model, steps=6)
    assert model.trainer.global_step == 6 and scaler.get_scale() < 2.0**16
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_fp16_lazy_penalty_with_nan_guard_judges_each_penalty_once() -> None:
    # On critic steps without a penalty the model reports the last computed one: an overflow
    # the scaler skipped must not be judged again on a step the scaler did not skip.
    model = _gan(WGANGP, n_critic=1, penalty_every=3)
    outputs, _ = _fit_fp16(model, steps=6)
    assert model.trainer.global_step == 6
    assert sum(not o["penalty"].isfinite() for o in outputs) >= 2  # reported again, not judged
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("variant", [WGANGP, SNGAN])
def test_compile_gives_the_eager_losses(variant: type) -> None:
    eager = _fit(_gan(variant, n_critic=2), steps=2).outputs
    compiled = _fit(_gan(variant, n_critic=2, compile=True), steps=2).outputs
    assert len(eager) == len(compiled) == 2
    for a, b in zip(eager, compiled):
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("augment", ["diffaugment", "ada"])
def test_bf16_mixed_with_a_conditional_model_augmentation_and_ema(
    augment: str, tmp_path: Path
) -> None:
    """The conditional default job's nets (conditional BatchNorm, projection critic) on digits,
    with an augmentation and EMA, under bf16 autocast: finite losses and weights."""
    overrides = [*FAST, "experiment=mnist_conditional", f"augment={augment}"]
    overrides += ["trainer.precision=bf16-mixed", "trainer.max_steps=3", "model.ema_decay=0.9"]
    result = train(compose_train(overrides, run_dir=tmp_path))
    state = read_checkpoint(result["last_ckpt"])["state_dict"]
    assert any(k.startswith("generator_ema.") for k in state)
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert all(math.isfinite(v) for k, v in result["metrics"].items() if k.startswith("train/"))
