"""Each variant's divergence estimate, given the optimal critic, against closed-form values.

P = data = N(mu, 1), Q = generator = N(0, 1) in 1-D, so the density ratio r = p/q is known in
closed form and every optimal discriminator or critic can be written down: the Monte-Carlo
estimate of each variant's ``divergence_estimates`` must then equal the divergence itself.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import ot
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from scipy import integrate, stats
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from gan_zoo import losses
from gan_zoo.models import (
    FGAN,
    LSGAN,
    SNGAN,
    WGANGP,
    HingeGAN,
    MinimaxGAN,
    NonSaturatingGAN,
    WGANClip,
)
from gan_zoo.nets import MLPDiscriminator, MLPGenerator

N = 400_000
MU = 0.5  # separation in units of the (unit) standard deviation


def _samples(mu: float = MU, n: int = N, seed: int = 0) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    real = mu + torch.randn(n, generator=gen, dtype=torch.float64)  # (n,) ~ P
    fake = torch.randn(n, generator=gen, dtype=torch.float64)  # (n,) ~ Q
    return real, fake


def _log_ratio(x: Tensor, mu: float = MU) -> Tensor:
    """log p(x)/q(x) for p = N(mu, 1), q = N(0, 1)."""
    return mu * x - 0.5 * mu**2


def _numeric(integrand, mu: float = MU) -> float:
    """Integral over the real line of ``integrand(p(x), q(x))``."""
    value, _ = integrate.quad(
        lambda x: integrand(stats.norm.pdf(x, mu), stats.norm.pdf(x)), -15, 15 + mu, limit=400
    )
    return value


def _model(variant: type, **kwargs):
    return variant(MLPGenerator(), MLPDiscriminator(), latent_dim=2, **kwargs)


JSD = _numeric(lambda p, q: 0.5 * p * np.log(2 * p / (p + q)) + 0.5 * q * np.log(2 * q / (p + q)))


@pytest.mark.parametrize("variant", [MinimaxGAN, NonSaturatingGAN])
def test_js_estimate_at_the_optimal_discriminator(variant: type) -> None:
    # D*(x) = p / (p + q) = sigmoid(log p/q) (Goodfellow et al. 2014, Prop. 1)
    real, fake = _samples()
    estimate = _model(variant).divergence_estimates(_log_ratio(real), _log_ratio(fake))["js"]
    assert JSD == pytest.approx(MU**2 / 8, rel=0.05)  # small-separation expansion mu^2 / 8
    assert estimate.item() == pytest.approx(JSD, abs=1.5e-3)
    # any other discriminator gives less: the estimate is a lower bound
    worse = _model(variant).divergence_estimates(0.5 * _log_ratio(real), 0.5 * _log_ratio(fake))
    assert worse["js"].item() < estimate.item() - 1e-3


def test_js_estimate_saturates_at_log2_for_separated_supports() -> None:
    real, fake = _samples(mu=40.0, n=10_000)
    logits_real, logits_fake = _log_ratio(real, 40.0), _log_ratio(fake, 40.0)
    estimate = _model(MinimaxGAN).divergence_estimates(logits_real, logits_fake)["js"]
    assert estimate.item() == pytest.approx(math.log(2.0), abs=1e-6)


@pytest.mark.parametrize("variant", [WGANClip, WGANGP, SNGAN])
@pytest.mark.parametrize("theta", [0.5, 3.0, 10.0])
def test_w1_estimate_at_the_optimal_critic(variant: type, theta: float) -> None:
    # Two Gaussians of equal variance shifted by theta: W1 = theta, attained by f(x) = x.
    real, fake = _samples(mu=theta, n=100_000)
    estimate = _model(variant).divergence_estimates(real, fake)["w1"].item()
    assert estimate == pytest.approx(theta, abs=0.02)
    # exact optimal transport between the samples agrees (1-D: the sorted matching)
    w1 = ot.emd2_1d(real.numpy(), fake.numpy(), metric="euclidean")
    assert w1 == pytest.approx(theta, abs=0.02)
    # a 1/2-Lipschitz critic only reaches half of it
    half = _model(variant).divergence_estimates(0.5 * real, 0.5 * fake)["w1"].item()
    assert half == pytest.approx(theta / 2, abs=0.02)


# f-divergence D_f(P || Q) = E_Q[f(r)] of Nowozin et al. Table 1, and the raw critic output V*
# with g_f(V*) = T* = f'(r) at the optimum.
F_CASES = {
    "kl": (lambda lr: 1 + lr, MU**2 / 2),  # T* = 1 + log r; KL = mu^2 / 2
    "reverse_kl": (lambda lr: lr, MU**2 / 2),  # T* = -1/r = -exp(-V); KL(Q || P) = mu^2 / 2
    "pearson": (lambda lr: 2 * (lr.exp() - 1), math.exp(MU**2) - 1),  # T* = 2(r - 1)
    # T* = 1 - r^(-1/2) = 1 - exp(-V); H^2 = 2 (1 - exp(-mu^2 / 8))
    "squared_hellinger": (lambda lr: lr / 2, 2 * (1 - math.exp(-(MU**2) / 8))),
    "js": (lambda lr: lr, 2 * JSD),  # T* = log(2r / (1 + r)); Table 1's f gives 2 JSD
    "gan": (lambda lr: lr, 2 * JSD - math.log(4.0)),  # T* = log(r / (1 + r))
}


@pytest.mark.parametrize("name", list(F_CASES))
def test_fgan_estimate_at_the_optimal_critic(name: str) -> None:
    optimal_v, exact = F_CASES[name]
    real, fake = _samples()
    model = _model(FGAN, divergence=name)
    estimate = model.divergence_estimates(optimal_v(_log_ratio(real)), optimal_v(_log_ratio(fake)))
    assert list(estimate) == [name]
    assert estimate[name].item() == pytest.approx(exact, rel=0.03, abs=2e-3)
    # a perturbed critic gives a smaller value: F is a lower bound on D_f
    v_real, v_fake = optimal_v(_log_ratio(real)) + 0.3, optimal_v(_log_ratio(fake)) + 0.3
    assert model.divergence_estimates(v_real, v_fake)[name].item() < estimate[name].item()


def test_fgan_closed_forms_match_numeric_integration() -> None:
    # The closed forms used above, against E_Q[f(p/q)] integrated numerically.
    f = {
        "kl": lambda u: u * np.log(u),
        "reverse_kl": lambda u: -np.log(u),
        "pearson": lambda u: (u - 1) ** 2,
        "squared_hellinger": lambda u: (np.sqrt(u) - 1) ** 2,
    }
    for name, fn in f.items():
        assert _numeric(lambda p, q, fn=fn: q * fn(p / q)) == pytest.approx(F_CASES[name][1])


CHI2_MIX = _numeric(lambda p, q: (p - (p + q) / 2) ** 2 / ((p + q) / 2))  # chi2(P || M)


@pytest.mark.parametrize("a,b", [(0.0, 1.0), (-1.0, 1.0)])
def test_lsgan_estimate_at_the_optimal_discriminator(a: float, b: float) -> None:
    # D*(x) = (b p + a q) / (p + q) (Mao et al. 2017, Prop. 1) = a + (b - a) sigmoid(log r)
    real, fake = _samples()
    model = _model(LSGAN, fake_label=a, real_label=b)

    def d_star(x: Tensor) -> Tensor:
        return a + (b - a) * torch.sigmoid(_log_ratio(x))

    estimate = model.divergence_estimates(d_star(real), d_star(fake))["pearson_to_mixture"]
    assert estimate.item() == pytest.approx(CHI2_MIX, abs=2e-3)
    worse = model.divergence_estimates(d_star(real) * 0.8, d_star(fake) * 0.8)
    assert worse["pearson_to_mixture"].item() < estimate.item()


def test_hinge_tv_estimate_at_the_optimal_discriminator() -> None:
    # D* = sign(p - q) = sign(x - mu/2); TV = 2 Phi(mu / 2) - 1 for unit Gaussians shifted by mu.
    real, fake = _samples()
    model = _model(HingeGAN)
    tv = 2 * stats.norm.cdf(MU / 2) - 1
    d_real, d_fake = torch.sign(real - MU / 2), torch.sign(fake - MU / 2)
    assert model.divergence_estimates(d_real, d_fake)["tv"].item() == pytest.approx(tv, abs=3e-3)
    # past the margin the hinge charges the wrong side more: still a lower bound, a looser one
    assert model.divergence_estimates(3 * d_real, 3 * d_fake)["tv"].item() < tv - 0.1


def test_bounded_estimates_saturate_for_separated_supports() -> None:
    real, fake = _samples(mu=40.0, n=1000)
    tv = _model(HingeGAN).divergence_estimates(torch.ones(1000), -torch.ones(1000))["tv"]
    chi2 = _model(LSGAN).divergence_estimates(torch.ones(1000), torch.zeros(1000))
    assert tv.item() == 1.0 and chi2["pearson_to_mixture"].item() == 1.0
    assert real.min() > fake.max()  # the supports really are separated


def test_least_squares_and_hinge_losses_hand_values() -> None:
    t = torch.tensor
    # 1/2 (3 - 1)^2 + 1/2 (0.5 - 0)^2 = 2 + 0.125
    assert losses.least_squares_discriminator_loss(t([3.0]), t([0.5])).item() == 2.125
    # with labels a = -1, b = 1: 1/2 (0 - 1)^2 + 1/2 (0 + 1)^2 = 1
    value = losses.least_squares_discriminator_loss(t([0.0]), t([0.0]), 1.0, -1.0)
    assert value.item() == 1.0
    assert losses.least_squares_generator_loss(t([0.0, 2.0]), 1.0).item() == 0.5  # 1/2 mean(1, 1)
    assert losses.least_squares_generator_loss(t([2.0]), 0.0).item() == 2.0
    # hinge: max(0, 1 - 0.5) + max(0, 1 + (-3)) = 0.5 + 0
    assert losses.hinge_discriminator_loss(t([0.5]), t([-3.0])).item() == 0.5


EXPECTED_KEYS = {
    MinimaxGAN: "js",
    NonSaturatingGAN: "js",
    WGANClip: "w1",
    WGANGP: "w1",
    SNGAN: "w1",
    FGAN: "kl",
    LSGAN: "pearson_to_mixture",
    HingeGAN: "tv",
}


@pytest.mark.parametrize("variant", list(EXPECTED_KEYS))
def test_every_variant_logs_its_divergence_each_generator_step(variant, tmp_path: Path) -> None:
    model = variant(MLPGenerator(hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2),
                    latent_dim=2, n_critic=2)  # fmt: skip
    loader = DataLoader(TensorDataset(torch.randn(96, 2)), batch_size=16, drop_last=True)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=3,
        logger=CSVLogger(tmp_path, name="csv"),
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(model, loader)
    with open(Path(trainer.logger.log_dir) / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    values = [float(r[f"divergence/{EXPECTED_KEYS[variant]}"]) for r in rows]
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert all(math.isfinite(v) for v in values)
