"""``w1_normalized``, the dual divided by the critic's measured Lipschitz constant, in closed form.

A critic that is linear with slope ``s`` along the direction of a translation by ``theta`` has
dual ``s * theta`` and gradient norm ``s`` at every point, so ``w1_normalized = theta = W1``
whatever ``s`` is: clipping's tiny slope, the gradient penalty's overshoot, spectral norm's 1.
The gradient penalty's overshoot is derived in docs/theory.md ("W1 estimates"); here a linear
critic is trained with WGANGP's own hooks and must land on it, then normalize back to W1.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from gan_zoo.experiments import common
from gan_zoo.models import SNGAN, WGANGP, WGANClip
from gan_zoo.models.base import GAN


class RampCritic(nn.Module):
    """``(B, d) -> (B,)``: ``clamp(slope * (u . x - center), -margin, margin)``, unit ``u``.

    Linear (one ``nn.Linear``, so spectral norm has a layer to normalize) when ``margin`` is
    infinite; otherwise flat beyond ``center +- margin / slope``, as a hinge critic can be.
    """

    def __init__(self, direction: Tensor, slope: float, center: float = 0.0,
                 margin: float = math.inf) -> None:  # fmt: skip
        super().__init__()
        self.linear = nn.Linear(direction.numel(), 1)
        with torch.no_grad():
            self.linear.weight.copy_(slope * direction / direction.norm())
            self.linear.bias.fill_(-slope * center)
        self.margin = margin

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).squeeze(1).clamp(-self.margin, self.margin)


def _model(variant: type[GAN], critic: nn.Module) -> GAN:
    return variant(nn.Identity(), critic, latent_dim=critic.linear.in_features)


def _translated(theta: float, direction: Tensor, n: int = 4000) -> tuple[Tensor, Tensor]:
    """``(n, d)`` fakes ~ N(0, I/4) and the same points moved by ``theta`` along ``direction``:
    a translation, so the W1 between the two samples is exactly ``theta``."""
    gen = torch.Generator().manual_seed(0)
    fake = 0.5 * torch.randn(n, direction.numel(), generator=gen)
    return fake + theta * direction / direction.norm(), fake


@pytest.mark.parametrize(
    ("variant", "slope", "expected_slope"),
    [
        (WGANClip, 4e-3, 4e-3),  # a clipped critic: K * W1 with a tiny, unknown K
        (WGANGP, 1.5, 1.5),  # the GP optimum at theta = 10, lambda = 10: 1 + theta / (2 lambda)
        (SNGAN, 3.0, 1.0),  # spectral norm divides the single layer's weight by its norm, 3
    ],
)
@pytest.mark.parametrize("theta", [1.0, 10.0])
def test_a_linear_critic_normalizes_to_w1_exactly(
    variant: type[GAN], slope: float, expected_slope: float, theta: float
) -> None:
    direction = torch.tensor([3.0, -4.0])
    model = _model(variant, RampCritic(direction, slope, center=0.7))
    real, fake = _translated(theta, direction)
    estimates = common.divergence_estimates(model, real, fake)
    assert estimates["w1"] == pytest.approx(expected_slope * theta, rel=1e-4)
    assert estimates["w1_normalized"] == pytest.approx(theta, rel=1e-4)
    # scores alone (no inputs to take gradients at): only the raw dual
    with torch.no_grad():
        raw = model.divergence_estimates(model.critic(real), model.critic(fake))
    assert set(raw) == {"w1"}


def test_the_gradient_penalty_overshoot_normalizes_back_to_w1() -> None:
    # For a linear critic of slope s between N(0, 1/4) and N(theta, 1/4) the penalized objective
    # is s * theta - lambda * (s - 1)^2: the critic the GP trains has s = 1 + theta / (2 lambda)
    # and a dual gap theta * (1 + theta / (2 lambda)), 15 for W1 = 10 at lambda = 10.
    torch.manual_seed(0)
    theta, gp_weight = 10.0, 10.0
    direction = torch.ones(1)
    optimizer = common.with_lr(WGANGP.default_optimizer, 1e-2)
    model = WGANGP(nn.Identity(), RampCritic(direction, slope=0.0), latent_dim=1,
                   gp_weight=gp_weight, discriminator_optimizer=optimizer)  # fmt: skip
    common.train_critic(
        model, lambda n: theta + 0.5 * torch.randn(n, 1), lambda n: 0.5 * torch.randn(n, 1),
        steps=600, batch_size=1024,
    )  # fmt: skip
    overshoot = 1 + theta / (2 * gp_weight)
    assert model.discriminator.linear.weight.item() == pytest.approx(overshoot, abs=0.03)
    real, fake = _translated(theta, direction, n=20_000)
    estimates = common.divergence_estimates(model, real, fake)
    assert estimates["w1"] == pytest.approx(theta * overshoot, rel=0.02)  # 15, not 10
    assert estimates["w1_normalized"] == pytest.approx(theta, rel=1e-4)  # W1


@pytest.mark.parametrize("variant", [WGANClip, WGANGP, SNGAN])
def test_a_critic_flat_on_both_supports_measures_its_ramp_not_w1(variant: type[GAN]) -> None:
    # Point masses at 0 and theta = 10 and a critic that rises with slope 1 from -1 to 1 around
    # the midpoint, flat elsewhere (a hinge critic's shape once both margins are met): its dual
    # is 2 and its steepest slope, found only on the interpolates, is 1. The normalized value is
    # then the ramp's width 2, a lower bound on W1 = 10 and far from it.
    direction = torch.ones(1)
    model = _model(variant, RampCritic(direction, slope=1.0, center=5.0, margin=1.0))
    real, fake = torch.full((1000, 1), 10.0), torch.zeros(1000, 1)
    estimates = common.divergence_estimates(model, real, fake)
    assert estimates["w1"] == pytest.approx(2.0)
    assert estimates["w1_normalized"] == pytest.approx(2.0)
