"""Every loss and penalty against values computed by hand (shown in the comments)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_zoo import losses
from gan_zoo.penalties import gradient_penalty

t = torch.tensor


def test_minimax_discriminator_loss_hand_values() -> None:
    # D = sigmoid(0) = 1/2 on both: -log(1/2) - log(1 - 1/2) = 2 log 2
    assert losses.minimax_discriminator_loss(t([0.0]), t([0.0])).item() == pytest.approx(
        2 * math.log(2)
    )
    # -log sigmoid(2) - log(1 - sigmoid(-1)) = log(1 + e^-2) + log(1 + e^-1)
    expected = math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))  # 0.440190
    assert losses.minimax_discriminator_loss(t([2.0]), t([-1.0])).item() == pytest.approx(expected)


def test_minimax_generator_loss_is_the_saturating_objective() -> None:
    # log(1 - sigmoid(0)) = -log 2
    assert losses.minimax_generator_loss(t([0.0])).item() == pytest.approx(-math.log(2))
    # log(1 - sigmoid(-3)) = -log(1 + e^-3) = -0.048587
    value = losses.minimax_generator_loss(t([-3.0])).item()
    assert value == pytest.approx(-math.log(1 + math.exp(-3)))


def test_saturating_gradient_vanishes_where_non_saturating_does_not() -> None:
    # A confident discriminator: D(G(z)) = sigmoid(-10) ~ 4.5e-5.
    s = t([-10.0], requires_grad=True)
    (g_sat,) = torch.autograd.grad(losses.minimax_generator_loss(s), s)
    s2 = t([-10.0], requires_grad=True)
    (g_ns,) = torch.autograd.grad(losses.nonsaturating_generator_loss(s2), s2)
    # d/ds log(1 - sigmoid(s)) = -sigmoid(s); d/ds -log sigmoid(s) = -(1 - sigmoid(s))
    assert g_sat.item() == pytest.approx(-1 / (1 + math.exp(10)), rel=1e-4)
    assert g_ns.item() == pytest.approx(-1 / (1 + math.exp(-10)), rel=1e-4)
    assert abs(g_ns.item()) > 1e4 * abs(g_sat.item())


def test_nonsaturating_generator_loss_hand_values() -> None:
    assert losses.nonsaturating_generator_loss(t([0.0])).item() == pytest.approx(math.log(2))
    value = losses.nonsaturating_generator_loss(t([2.0])).item()
    assert value == pytest.approx(math.log(1 + math.exp(-2)))  # 0.126928


def test_wasserstein_losses_hand_values() -> None:
    real, fake = t([1.0, 3.0]), t([0.5, -0.5])
    assert losses.wasserstein_critic_loss(real, fake).item() == pytest.approx(0.0 - 2.0)
    assert losses.wasserstein_generator_loss(fake).item() == pytest.approx(0.0)
    assert losses.wasserstein_generator_loss(t([2.0, 4.0])).item() == pytest.approx(-3.0)


def test_hinge_discriminator_loss_hand_values() -> None:
    # real: mean(relu(1-0.5), relu(1-2)) = 0.25; fake: mean(relu(1-2), relu(1+0.5)) = 0.75
    value = losses.hinge_discriminator_loss(t([0.5, 2.0]), t([-2.0, 0.5])).item()
    assert value == pytest.approx(1.0)


class _Linear(nn.Module):
    """D(x) = <w, x> over all non-batch dims: grad_x D = w everywhere."""

    def __init__(self, shape: tuple[int, ...], value: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.full(shape, value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


def test_gradient_penalty_norm_spans_all_non_batch_dims() -> None:
    critic = _Linear((3, 2, 2), 0.5)  # ||w|| = 0.5 * sqrt(12) = sqrt(3)
    real, fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    value = gradient_penalty(critic, real, fake).item()
    assert value == pytest.approx((math.sqrt(3) - 1) ** 2)  # 0.535898


def test_gradient_penalty_uses_per_sample_interpolation() -> None:
    class Quadratic(nn.Module):  # D(x) = ||x||^2 / 2, so grad_x D = x
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 0.5 * x.flatten(1).pow(2).sum(1)

    real, fake = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    # x_hat = eps * 1; ||x_hat|| = eps * sqrt(4): norms 1 and 2 -> mean((0)^2, (1)^2) = 0.5
    value = gradient_penalty(Quadratic(), real, fake, epsilon=t([0.5, 1.0])).item()
    assert value == pytest.approx(0.5)


def test_gradient_penalty_is_differentiable_in_the_critic_weights() -> None:
    critic = _Linear((4,), 1.0)  # ||w|| = 2, GP = (2 - 1)^2 = 1
    penalty = gradient_penalty(critic, torch.randn(3, 4), torch.randn(3, 4))
    (grad,) = torch.autograd.grad(penalty, critic.w)
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 2 * 1 * 1 / 2 = 1 per entry
    torch.testing.assert_close(grad, torch.ones(4))


def test_gradient_penalty_epsilon_is_uniform_per_sample() -> None:
    torch.manual_seed(0)
    seen = []

    class Record(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.detach().clone())
            return x.flatten(1).sum(1)

    real, fake = torch.ones(4096, 3, 2, 2), torch.zeros(4096, 3, 2, 2)
    gradient_penalty(Record(), real, fake)
    eps = seen[0]  # x_hat = eps for real=1, fake=0
    # one eps per sample, constant over C, H, W, and spread like U[0, 1]
    assert torch.equal(eps, eps[:, :1, :1, :1].expand_as(eps))
    assert eps.min() >= 0 and eps.max() <= 1
    assert eps[:, 0, 0, 0].mean().item() == pytest.approx(0.5, abs=0.02)
    assert eps[:, 0, 0, 0].var().item() == pytest.approx(1 / 12, abs=0.005)


def test_one_sided_penalty_ignores_norms_below_one() -> None:
    class Quadratic(nn.Module):  # grad_x D = x
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 0.5 * x.pow(2).sum(1)

    real, fake = torch.ones(2, 4), torch.zeros(2, 4)
    # norms eps * 2 = 1.0 and 1.6 (eps 0.5, 0.8): two-sided mean(0, 0.36) = 0.18, one-sided too;
    # norms 0.4 and 1.6 (eps 0.2, 0.8): two-sided mean(0.36, 0.36) = 0.36, one-sided 0.18
    eps = t([0.2, 0.8])
    assert gradient_penalty(Quadratic(), real, fake, eps).item() == pytest.approx(0.36)
    assert gradient_penalty(Quadratic(), real, fake, eps, one_sided=True).item() == pytest.approx(
        0.18
    )
