"""Wasserstein GANs: weight clipping (Arjovsky 2017) and gradient penalty (Gulrajani 2017)."""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

from gan_zoo import losses, penalties
from gan_zoo.errors import ConfigValueError, check
from gan_zoo.models.base import GAN, OptimizerFactory


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

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        latent_dim: int,
        n_critic: int = 5,
        generator_optimizer: OptimizerFactory | None = None,
        discriminator_optimizer: OptimizerFactory | None = None,
        clip_value: float = 0.01,
    ) -> None:
        check(clip_value > 0, "clip_value", clip_value, "a number > 0")
        super().__init__(
            generator,
            discriminator,
            latent_dim,
            n_critic,
            generator_optimizer,
            discriminator_optimizer,
        )
        self.clip_value = float(clip_value)

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return losses.wasserstein_critic_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return losses.wasserstein_generator_loss(fake_scores)

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

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        latent_dim: int,
        n_critic: int = 5,
        generator_optimizer: OptimizerFactory | None = None,
        discriminator_optimizer: OptimizerFactory | None = None,
        gp_weight: float = 10.0,
    ) -> None:
        check(gp_weight >= 0, "gp_weight", gp_weight, "a number >= 0")
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules()):
            raise ConfigValueError(
                "discriminator",
                type(discriminator).__name__,
                "a critic without BatchNorm (the gradient penalty is per sample; use norm=layer "
                "or norm=none)",
            )
        super().__init__(
            generator,
            discriminator,
            latent_dim,
            n_critic,
            generator_optimizer,
            discriminator_optimizer,
        )
        self.gp_weight = float(gp_weight)

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return losses.wasserstein_critic_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return losses.wasserstein_generator_loss(fake_scores)

    def discriminator_penalty(self, real: Tensor, fake: Tensor) -> Tensor:
        return self.gp_weight * penalties.gradient_penalty(self.discriminator, real, fake)
