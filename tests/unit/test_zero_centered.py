"""R1 and R2 (Mescheder et al. 2018, Eq. 9-10) against gradients worked out by hand.

A linear critic ``D(x) = w . x`` has ``grad_x D = w`` everywhere, a quadratic one
``D(x) = 1/2 sum_j a_j x_j^2`` has ``grad_x D = a * x``; both give the penalty in closed form. The
loop adds ``gamma / 2`` times R1 on the real batch and R2 on the fake batch, which a model's
``_penalty`` and one real Trainer step on the Dirac-GAN (``D(x) = psi x``, data at 0) show.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch import Tensor, nn

from gan_zoo.experiments.dirac_gan import DiracDataModule, DiracGenerator, LinearDiscriminator
from gan_zoo.models import GAN, R1GAN, NonSaturatingGAN
from gan_zoo.models.critic import Critic
from gan_zoo.nets.conditioning import pack_samples
from gan_zoo.penalties import zero_centered_penalty


class Quadratic(nn.Module):
    """``D(x) = 1/2 sum_j a_j x_j^2`` per sample: ``(B, d)`` to ``(B,)``; ``grad_x D = a * x``."""

    def __init__(self, a: list[float]) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * (self.a * x.square()).sum(dim=1)


def test_linear_critic_gives_the_squared_weight_norm_everywhere() -> None:
    w = torch.tensor([0.5, -2.0, 1.5])  # ||w||^2 = 0.25 + 4 + 2.25
    points = torch.randn(16, 3) * 10
    assert zero_centered_penalty(lambda x: x @ w, points).item() == pytest.approx(6.5)
    # images: the norm runs over every non-batch dimension
    kernel = torch.arange(18.0).reshape(2, 3, 3) / 10
    images = torch.randn(4, 2, 3, 3)
    value = zero_centered_penalty(lambda x: (x * kernel).sum(dim=(1, 2, 3)), images)
    assert value.item() == pytest.approx(kernel.square().sum().item())


def test_quadratic_critic_matches_hand_computed_gradients() -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    # grad = a * x = [[2, 2], [6, -1]]: squared norms 8 and 37, mean 22.5
    assert zero_centered_penalty(Quadratic([2.0, 1.0]), x).item() == pytest.approx(22.5)
    # the fp16 loss scale is undone: the same value
    scaled = zero_centered_penalty(Quadratic([2.0, 1.0]), x, grad_scale=torch.tensor(1024.0))
    assert scaled.item() == pytest.approx(22.5)


def test_penalty_is_differentiable_wrt_the_critic_parameters() -> None:
    linear = nn.Linear(3, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.5, -2.0, 1.5]]))
    penalty = zero_centered_penalty(lambda x: linear(x).squeeze(1), torch.randn(8, 3))
    grad_w, grad_b = torch.autograd.grad(penalty, [linear.weight, linear.bias], allow_unused=True)
    torch.testing.assert_close(grad_w, 2 * linear.weight.detach())  # d||w||^2 / dw
    assert grad_b is None or not grad_b.any()  # the bias does not move grad_x D
    # quadratic: d/da_j mean_i (a_j x_ij)^2 = mean_i 2 a_j x_ij^2 = [2*2*10/2, 2*1*5/2]
    critic = Quadratic([2.0, 1.0])
    penalty = zero_centered_penalty(critic, torch.tensor([[1.0, 2.0], [3.0, -1.0]]))
    (grad_a,) = torch.autograd.grad(penalty, critic.a)
    torch.testing.assert_close(grad_a, torch.tensor([20.0, 5.0]))


class PackedProduct(nn.Module):
    """A pack of two samples ``(x1, x2)`` scored ``(w . x1)(w . x2)``: ``(B, 2)`` to ``(B / 2,)``.

    ``grad_(x1, x2) D = ((w . x2) w, (w . x1) w)``, squared norm ``||w||^2 ((w.x1)^2 + (w.x2)^2)``.
    """

    def __init__(self, w: list[float]) -> None:
        super().__init__()
        self.w = torch.tensor(w)

    def forward(self, x: Tensor) -> Tensor:
        packs = pack_samples(x, 2).reshape(-1, 2, x.shape[1])  # (B / 2, 2, d)
        projected = packs @ self.w  # (B / 2, 2)
        return projected[:, 0] * projected[:, 1]


def test_packing_takes_one_gradient_per_pack() -> None:
    critic = Critic(PackedProduct([1.0, 2.0]), pack=2)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])  # w . x = 1, 2, 3, 0
    # packs (1, 2) and (3, 0): 5 * (1 + 4) = 25 and 5 * (9 + 0) = 45, mean over 2 packs 35
    assert zero_centered_penalty(critic, x).item() == pytest.approx(35.0)
    # a linear critic summed over a pack: the pack's gradient is (w, w), norm^2 = 2 ||w||^2
    w = torch.tensor([0.5, -2.0])
    linear = Critic(lambda x: pack_samples(x, 2) @ torch.cat([w, w]), pack=2)
    assert zero_centered_penalty(linear, torch.randn(6, 2)).item() == pytest.approx(8.5)


def _model(
    variant: type[GAN],
    discriminator: nn.Module,
    theta: float = 1.0,
    lr: float = 0.1,
    **kwargs: Any,
) -> GAN:
    sgd = functools.partial(torch.optim.SGD, lr=lr)
    return variant(DiracGenerator(theta), discriminator, latent_dim=1, generator_optimizer=sgd,
                   discriminator_optimizer=sgd, **kwargs)  # fmt: skip


@pytest.mark.parametrize(("r1_gamma", "r2_gamma"), [(4.0, 0.0), (0.0, 6.0), (4.0, 6.0), (0.0, 0.0)])
def test_loop_adds_half_gamma_r1_on_real_and_r2_on_fake(r1_gamma: float, r2_gamma: float) -> None:
    model = _model(NonSaturatingGAN, Quadratic([2.0, 1.0]), r1_gamma=r1_gamma, r2_gamma=r2_gamma)
    real = torch.tensor([[1.0, 2.0], [3.0, -1.0]])  # R1 = 22.5 (above)
    fake = torch.tensor([[0.5, 0.0], [0.0, 4.0]])  # grad [[1, 0], [0, 4]]: R2 = (1 + 16) / 2
    penalty = model._penalty(real, fake, None, 0)
    expected = r1_gamma / 2 * 22.5 + r2_gamma / 2 * 8.5
    assert penalty.item() == pytest.approx(expected)
    if expected:  # what the critic's backward sees: d/da of the weighted penalty
        (grad_a,) = torch.autograd.grad(penalty, model.get_parameter("discriminator.a"))
        # d R1 / da = [20, 5]; d R2 / da_j = mean_i 2 a_j fake_ij^2 = [0.5, 16]
        hand = r1_gamma / 2 * torch.tensor([20.0, 5.0]) + r2_gamma / 2 * torch.tensor([0.5, 16.0])
        torch.testing.assert_close(grad_a, hand)


class QuadraticLine(nn.Module):
    """``D(x) = psi x^2 / 2`` on the line: ``grad_x D = psi x`` vanishes on the data at 0."""

    def __init__(self, psi: float) -> None:
        super().__init__()
        self.pack = 1
        self.psi = nn.Parameter(torch.tensor([psi]))

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * self.psi * x[:, 0].square()


def _one_generator_step(model: GAN) -> tuple[float, float]:
    trainer = pl.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PossibleUserWarning)
        trainer.fit(model, datamodule=DiracDataModule(1, model.n_critic, batch_size=4))
    theta, psi = model.get_parameter("generator.theta"), model.get_parameter("discriminator.psi")
    return theta.item(), psi.item()


def _sigmoid(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


def test_trainer_step_on_the_dirac_gan_adds_gamma_psi_to_the_critic_gradient() -> None:
    """One generator step of ``R1GAN`` by hand (data at 0, fake at theta, SGD step h): the critic
    descends ``softplus(psi theta) + gamma / 2 psi^2``, then G ``softplus(-psi' theta)``."""
    theta, psi, h, gamma = 1.0, -1.0, 0.1, 3.0
    model = _model(R1GAN, LinearDiscriminator(psi), theta, lr=h, r1_gamma=gamma)
    psi_1 = psi - h * (theta * _sigmoid(psi * theta) + gamma * psi)
    theta_1 = theta + h * psi_1 * _sigmoid(-psi_1 * theta)
    assert _one_generator_step(model) == pytest.approx((theta_1, psi_1), rel=1e-6)


@pytest.mark.parametrize("penalty", ["r1_gamma", "r2_gamma"])
def test_trainer_step_puts_r1_on_real_and_r2_on_fake_samples(penalty: str) -> None:
    """With ``D(x) = psi x^2 / 2`` the penalty is 0 on the data (x = 0) and ``(psi theta)^2`` on
    the fakes: R1 must leave the critic's step unchanged, R2 add ``gamma psi theta^2``."""
    theta, psi, h, gamma = 1.5, 0.4, 0.1, 2.0
    model = _model(NonSaturatingGAN, QuadraticLine(psi), theta, lr=h, **{penalty: gamma})
    grad = 0.5 * theta**2 * _sigmoid(0.5 * psi * theta**2)  # d softplus(D(theta)) / d psi
    if penalty == "r2_gamma":
        grad += gamma * psi * theta**2
    assert _one_generator_step(model)[1] == pytest.approx(psi - h * grad, rel=1e-6)
