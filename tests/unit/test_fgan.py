"""f-GAN losses against hand-computed values, and the FGAN/LSGAN/HingeGAN variants and configs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from gan_zoo import losses
from gan_zoo.errors import ConfigValueError
from gan_zoo.models import FGAN, LSGAN, HingeGAN, MinimaxGAN
from gan_zoo.nets import MLPDiscriminator, MLPGenerator
from gan_zoo.training import build
from tests.helpers import compose_train

LOG2, LOG3 = math.log(2.0), math.log(3.0)

# (divergence, v, g_f(v), f*(g_f(v))), each worked out by hand from Nowozin et al. 2016, Table 2.
HAND_VALUES = [
    ("kl", 0.0, 0.0, math.exp(-1.0)),  # g = v; f*(t) = e^(t - 1)
    ("kl", 1.0, 1.0, 1.0),
    ("reverse_kl", 0.0, -1.0, -1.0),  # g = -e^-v = -1; f*(-1) = -1 - log 1
    ("reverse_kl", LOG2, -0.5, LOG2 - 1.0),  # f*(-1/2) = -1 - log(1/2)
    ("pearson", 2.0, 2.0, 3.0),  # f*(2) = 4/4 + 2
    ("pearson", -1.0, -1.0, -0.75),  # f*(-1) = 1/4 - 1
    ("squared_hellinger", LOG2, 0.5, 1.0),  # g = 1 - 1/2; f*(1/2) = (1/2) / (1/2)
    ("squared_hellinger", 0.0, 0.0, 0.0),
    ("js", 0.0, 0.0, 0.0),  # g = log 2 - log 2; f*(0) = -log(2 - 1)
    ("js", LOG3, math.log(1.5), LOG2),  # g = log 2 - log(4/3); f*(log 3/2) = -log(1/2)
    ("gan", 0.0, -LOG2, LOG2),  # g = -log 2; f*(-log 2) = -log(1 - 1/2)
    ("gan", LOG3, -math.log(4 / 3), math.log(4.0)),  # f*(-log 4/3) = -log(1/4)
]

# Table 2's conjugates f*(t) written naively, to pin down that `conjugate(v)` is f*(g_f(v)).
NAIVE_CONJUGATES = {
    "kl": lambda t: torch.exp(t - 1),
    "reverse_kl": lambda t: -1 - torch.log(-t),
    "pearson": lambda t: t**2 / 4 + t,
    "squared_hellinger": lambda t: t / (1 - t),
    "js": lambda t: -torch.log(2 - torch.exp(t)),
    "gan": lambda t: -torch.log(1 - torch.exp(t)),
}


@pytest.mark.parametrize("name,v,activation,conjugate", HAND_VALUES)
def test_activation_and_conjugate_hand_values(name, v, activation, conjugate) -> None:
    pair = losses.F_DIVERGENCES[name]
    x = torch.tensor([v], dtype=torch.float64)
    assert pair.activation(x).item() == pytest.approx(activation, abs=1e-12)
    assert pair.conjugate(x).item() == pytest.approx(conjugate, abs=1e-12)


@pytest.mark.parametrize("name", list(NAIVE_CONJUGATES))
def test_conjugate_is_table2_conjugate_at_the_activation(name: str) -> None:
    pair = losses.F_DIVERGENCES[name]
    v = torch.linspace(-3, 3, 13, dtype=torch.float64)
    naive = NAIVE_CONJUGATES[name](pair.activation(v))
    torch.testing.assert_close(pair.conjugate(v), naive)


@pytest.mark.parametrize("name", ["js", "gan", "squared_hellinger"])
def test_bounded_activations_stay_finite_where_the_naive_composition_overflows(name) -> None:
    # float32: log 2 - softplus(-30) rounds to log 2, where -log(2 - e^t) is +inf.
    v = torch.tensor([30.0, -30.0], requires_grad=True)
    loss = losses.fgan_discriminator_loss(v[:1], v[1:], name) + losses.fgan_generator_loss(v, name)
    (grad,) = torch.autograd.grad(loss, v)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_fgan_losses_hand_values() -> None:
    real, fake = torch.tensor([0.0, 1.0]), torch.tensor([0.0])
    # KL: F = mean(0, 1) - e^-1 = 0.5 - 0.367879
    assert losses.fgan_bound(real, fake, "kl").item() == pytest.approx(0.5 - math.exp(-1))
    assert losses.fgan_discriminator_loss(real, fake, "kl").item() == pytest.approx(
        math.exp(-1) - 0.5
    )
    # Pearson: F = mean(0, 1) - mean(f*(0)) = 0.5 - 0
    assert losses.fgan_bound(real, fake, "pearson").item() == pytest.approx(0.5)
    # Non-saturating G loss -E[g_f(v)]: reverse KL at v = 0 is -(-1); GAN at 0 is log 2.
    assert losses.fgan_generator_loss(torch.zeros(3), "reverse_kl").item() == pytest.approx(1.0)
    assert losses.fgan_generator_loss(torch.zeros(3), "gan").item() == pytest.approx(LOG2)


def test_gan_row_is_goodfellows_value_function_and_js_row_adds_log4() -> None:
    real, fake = torch.randn(64), torch.randn(64)
    value = -losses.minimax_discriminator_loss(real, fake)  # V(D, G), Goodfellow Eq. 1
    torch.testing.assert_close(losses.fgan_bound(real, fake, "gan"), value)
    torch.testing.assert_close(losses.fgan_bound(real, fake, "js"), value + math.log(4.0))
    # so FGAN(js) logs twice MinimaxGAN's divergence/js, as its docstring says
    minimax = MinimaxGAN(MLPGenerator(), MLPDiscriminator(), latent_dim=2)
    half = 0.5 * losses.fgan_bound(real, fake, "js")
    torch.testing.assert_close(half, minimax.divergence_estimates(real, fake)["js"])


def test_gan_generator_loss_is_the_non_saturating_loss() -> None:
    fake = torch.randn(32)
    torch.testing.assert_close(
        losses.fgan_generator_loss(fake, "gan"), losses.nonsaturating_generator_loss(fake)
    )


def test_fgan_refuses_unknown_divergence_and_lists_valid_names() -> None:
    with pytest.raises(ConfigValueError, match="divergence='tv'.*kl, reverse_kl, pearson"):
        FGAN(MLPGenerator(), MLPDiscriminator(), latent_dim=2, divergence="tv")


def test_lsgan_refuses_equal_labels() -> None:
    with pytest.raises(ConfigValueError, match="real_label"):
        LSGAN(MLPGenerator(), MLPDiscriminator(), latent_dim=2, fake_label=1.0, real_label=1.0)


def test_new_variants_paper_defaults() -> None:
    for variant in (FGAN, LSGAN, HingeGAN):
        model = variant(MLPGenerator(), MLPDiscriminator(), latent_dim=2)
        d_opt, g_opt = model.configure_optimizers()
        assert isinstance(d_opt, torch.optim.Adam) and model.n_critic == 1
        assert d_opt.defaults["lr"] == 2e-4 and tuple(g_opt.defaults["betas"]) == (0.5, 0.999)


def _fit(model: pl.LightningModule, tmp_path: Path, steps: int = 3) -> list[dict[str, str]]:
    loader = DataLoader(TensorDataset(torch.randn(64, 2) + 3), batch_size=16, drop_last=True)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_steps=steps,
        logger=CSVLogger(tmp_path, name="csv"),
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(model, loader)
    with open(Path(trainer.logger.log_dir) / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("divergence", list(losses.F_DIVERGENCES))
def test_every_divergence_trains_and_logs_its_bound(divergence: str, tmp_path: Path) -> None:
    gen, disc = MLPGenerator(hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2)
    model = FGAN(gen, disc, latent_dim=2, divergence=divergence)
    rows = _fit(model, tmp_path)
    values = [float(r[f"divergence/{divergence}"]) for r in rows]
    assert len(values) == 3 and all(math.isfinite(v) for v in values)
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (["model=fgan", "model.divergence=pearson"], ("FGAN", "divergence", "pearson")),
        (["model=lsgan", "model.fake_label=-1", "model.generator_target=0"],
         ("LSGAN", "fake_label", -1.0)),
        (["model=hinge_gan"], ("HingeGAN", "n_critic", 1)),
    ],
)  # fmt: skip
def test_model_configs_build_with_replay(overrides, expected, tmp_path: Path) -> None:
    cfg = compose_train([*overrides, "data=toy2d", "model.replay_size=32"], run_dir=tmp_path)
    _, model = build(cfg)
    cls, key, value = expected
    assert type(model).__name__ == cls and getattr(model, key) == value
    assert model.replay is not None and model.replay.size == 32
