"""Wasserstein GANs: weight clipping (Arjovsky 2017) and gradient penalty (Gulrajani 2017)."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor, nn

from gan_zoo import losses, penalties
from gan_zoo.compat import BatchNormBase
from gan_zoo.errors import ConfigValueError
from gan_zoo.models.base import GAN
from gan_zoo.optim import OptimizerFactory
from gan_zoo.validation import NonNegativeFloat, PositiveFloat, validated


def wasserstein_estimate(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """``E[D(x)] - E[D(G(z))]``: the Kantorovich-Rubinstein dual (Arjovsky et al. 2017, Eq. 2).

    A lower bound on ``K * W1`` for a K-Lipschitz critic, tight at the optimal critic.
    """
    return real_scores.mean() - fake_scores.mean()


def wasserstein_estimates(
    model: GAN,
    real_scores: Tensor,
    fake_scores: Tensor,
    real: Tensor | None = None,
    fake: Tensor | None = None,
) -> dict[str, Tensor]:
    """``w1``, the raw dual, and ``w1_normalized``: the dual divided by the critic's measured
    Lipschitz constant (:func:`gan_zoo.penalties.lipschitz_estimate`, in eval mode so nothing of
    training moves). The raw value is ``K * W1`` for an unknown ``K``: clipping leaves ``K``
    arbitrary, and a gradient penalty lets a critic overshoot (docs/theory.md, "W1 estimates").
    Without the ``(B, *S)`` inputs only ``w1``.
    """
    w1 = wasserstein_estimate(real_scores, fake_scores)
    if real is None or fake is None:  # scores alone: the raw dual only
        return {"w1": w1}
    with penalties.eval_mode(model.discriminator):
        lipschitz = penalties.lipschitz_estimate(model.critic, real, fake)
    return {"w1": w1, "w1_normalized": w1 / lipschitz.clamp(min=1e-12)}


def refuse_batchnorm(discriminator: nn.Module, valid: str) -> None:
    """Raise a one-line :class:`ConfigValueError` naming ``valid`` if D contains BatchNorm."""
    if any(isinstance(m, BatchNormBase) for m in discriminator.modules()):
        raise ConfigValueError("discriminator", type(discriminator).__name__, valid)


class WGANClip(GAN):
    """WGAN of Arjovsky et al. 2017, Algorithm 1.

    The critic is kept (roughly) K-Lipschitz by clamping every parameter to ``[-c, c]``
    after each critic step.

    Args:
        clip_value: ``c > 0``; the paper uses 0.01.
        Other arguments as in :class:`~gan_zoo.models.GAN`; defaults are the paper's
        (RMSprop, lr 5e-5, n_critic 5).
    """

    default_optimizer: OptimizerFactory = functools.partial(torch.optim.RMSprop, lr=5e-5)

    default_n_critic = 5

    @validated
    def __init__(self, *args: Any, clip_value: PositiveFloat = 0.01, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clip_value = float(clip_value)

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return losses.wasserstein_critic_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return losses.wasserstein_generator_loss(fake_scores)

    def divergence_estimates(
        self,
        real_scores: Tensor,
        fake_scores: Tensor,
        real: Tensor | None = None,
        fake: Tensor | None = None,
    ) -> dict[str, Tensor]:
        return wasserstein_estimates(self, real_scores, fake_scores, real, fake)

    @torch.no_grad()
    def after_discriminator_step(self) -> None:
        for param in self.discriminator.parameters():
            param.clamp_(-self.clip_value, self.clip_value)


class WGANGP(GAN):
    """WGAN-GP of Gulrajani et al. 2017, Algorithm 1: WGAN losses plus ``lambda * GP``.

    The penalty is per-sample, so the critic must not use BatchNorm (Sec. 4, "No critic batch
    normalization"); a critic containing BatchNorm is refused.

    Args:
        gp_weight: ``lambda >= 0``; the paper uses 10.
        Other arguments as in :class:`~gan_zoo.models.GAN`; defaults are the paper's
        (Adam lr 1e-4, betas (0, 0.9), n_critic 5).
    """

    default_optimizer: OptimizerFactory = functools.partial(
        torch.optim.Adam, lr=1e-4, betas=(0.0, 0.9)
    )

    default_n_critic = 5

    @validated
    def __init__(self, *args: Any, gp_weight: NonNegativeFloat = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        refuse_batchnorm(
            self.discriminator,
            "a critic without BatchNorm (the gradient penalty is per sample; use norm=layer or "
            "norm=none)",
        )
        self.gp_weight = float(gp_weight)

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return losses.wasserstein_critic_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return losses.wasserstein_generator_loss(fake_scores)

    def divergence_estimates(
        self,
        real_scores: Tensor,
        fake_scores: Tensor,
        real: Tensor | None = None,
        fake: Tensor | None = None,
    ) -> dict[str, Tensor]:
        return wasserstein_estimates(self, real_scores, fake_scores, real, fake)

    def discriminator_penalty(self, real: Tensor, fake: Tensor) -> Tensor:
        scale = self.grad_scale(real.device)
        gp = penalties.gradient_penalty(self.critic, real, fake, grad_scale=scale)
        return self.gp_weight * gp
