"""A raw-PyTorch reference for gan_zoo's n_critic loop: no Lightning, nothing but the step.

Same nets (``gan_zoo.nets`` DCGAN, as ``configs/net/mnist_subset.yaml``), same losses and
penalty (the pure functions of ``gan_zoo.losses`` and ``gan_zoo.penalties``), same paper
optimizers (``configs/model/*.yaml``) and the same order of random draws as
:class:`gan_zoo.models.GAN`: per critic step the noise, then (WGAN-GP) the interpolation
weights; per generator step the noise. A cycle is ``n_critic`` critic steps, each on a fresh
real batch (Arjovsky et al. 2017, Algorithm 1), then one generator step.

    >>> import torch
    >>> g, d = build_nets(VARIANTS["wgan_gp"], width=8)
    >>> loop = ReferenceLoop(VARIANTS["wgan_gp"], g, d)
    >>> d_losses, g_loss = loop.train_cycle(iter(torch.randn(5, 4, 1, 28, 28)))
    >>> len(d_losses), g_loss.shape
    (5, torch.Size([]))
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from gan_zoo import losses
from gan_zoo.nets import DCGANDiscriminator, DCGANGenerator
from gan_zoo.penalties import gradient_penalty

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]

LATENT_DIM = 64  # configs/net/mnist_subset.yaml
IMAGE_SHAPE = (1, 28, 28)  # (C, H, W)

_DCGAN_ADAM = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


@dataclass(frozen=True)
class Variant:
    """One variant's paper settings, restated from ``configs/model/<name>.yaml``."""

    discriminator_loss: Callable[[Tensor, Tensor], Tensor]
    generator_loss: Callable[[Tensor], Tensor]
    optimizer: OptimizerFactory  # the same factory for G and D, as every config does
    n_critic: int = 1
    critic_norm: Literal["batch", "layer", "none"] = "none"  # as configs/net/mnist_subset.yaml
    clip_value: float | None = None  # WGAN weight clipping (Arjovsky et al. 2017)
    gp_weight: float | None = None  # WGAN-GP lambda (Gulrajani et al. 2017)
    spectral_norm: bool = False  # SN-GAN (Miyato et al. 2018)


VARIANTS: dict[str, Variant] = {
    "minimax_gan": Variant(
        losses.minimax_discriminator_loss, losses.minimax_generator_loss, _DCGAN_ADAM
    ),
    "ns_gan": Variant(
        losses.minimax_discriminator_loss, losses.nonsaturating_generator_loss, _DCGAN_ADAM
    ),
    "wgan_clip": Variant(
        losses.wasserstein_critic_loss,
        losses.wasserstein_generator_loss,
        functools.partial(torch.optim.RMSprop, lr=5e-5),
        n_critic=5,
        clip_value=0.01,
    ),
    "wgan_gp": Variant(
        losses.wasserstein_critic_loss,
        losses.wasserstein_generator_loss,
        functools.partial(torch.optim.Adam, lr=1e-4, betas=(0.0, 0.9)),
        n_critic=5,
        gp_weight=10.0,
    ),
    "sngan": Variant(
        losses.hinge_discriminator_loss,
        losses.wasserstein_generator_loss,
        functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.0, 0.9)),
        n_critic=5,
        spectral_norm=True,
    ),
}


def build_nets(variant: Variant, width: int = 64, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """The MNIST 28 px DCGAN pair of ``configs/net/mnist_subset.yaml``, seeded; no spectral norm."""
    torch.manual_seed(seed)
    generator = DCGANGenerator(latent_dim=LATENT_DIM, channels=1, image_size=28, width=width)
    discriminator = DCGANDiscriminator(
        channels=1, image_size=28, width=width, norm=variant.critic_norm
    )
    return generator, discriminator


class ReferenceLoop:
    """The n_critic loop in plain PyTorch; ``train_cycle`` is one generator step's worth.

    Args:
        variant: losses, optimizer and constraint of the variant.
        generator: ``(B, LATENT_DIM) -> (B, *IMAGE_SHAPE)``.
        discriminator: ``(B, *IMAGE_SHAPE) -> (B,)``; spectrally normalised here for SN-GAN
            (every Linear/Conv weight, one power iteration per forward, as gan_zoo's SNGAN).
    """

    def __init__(self, variant: Variant, generator: nn.Module, discriminator: nn.Module) -> None:
        if variant.spectral_norm:
            for layer in list(discriminator.modules()):
                if isinstance(layer, nn.Linear | nn.Conv2d):
                    spectral_norm(layer)
        self.variant, self.generator, self.discriminator = variant, generator, discriminator
        self.d_opt = variant.optimizer(discriminator.parameters())
        self.g_opt = variant.optimizer(generator.parameters())
        self.last_penalty: Tensor | None = None

    def critic_step(self, real: Tensor) -> Tensor:
        """One discriminator update on the real batch ``(B, *IMAGE_SHAPE)``; returns its loss."""
        with torch.no_grad():
            fake = self.generator(torch.randn(real.shape[0], LATENT_DIM, device=real.device))
        loss = self.variant.discriminator_loss(self.discriminator(real), self.discriminator(fake))
        total = loss
        if self.variant.gp_weight is not None:
            penalty = self.variant.gp_weight * gradient_penalty(self.discriminator, real, fake)
            self.last_penalty = penalty.detach()
            total = loss + penalty
        self.d_opt.zero_grad(set_to_none=True)
        total.backward()
        self.d_opt.step()
        if self.variant.clip_value is not None:
            with torch.no_grad():
                for param in self.discriminator.parameters():
                    param.clamp_(-self.variant.clip_value, self.variant.clip_value)
        return loss.detach()

    def generator_step(self, batch_size: int, device: torch.device) -> Tensor:
        """One generator update on ``batch_size`` fresh fakes; returns its loss."""
        # Frozen D: the backward computes input gradients only, no weight gradients for D.
        self.discriminator.requires_grad_(False)
        fake = self.generator(torch.randn(batch_size, LATENT_DIM, device=device))
        loss = self.variant.generator_loss(self.discriminator(fake))
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.g_opt.step()
        self.discriminator.requires_grad_(True)
        return loss.detach()

    def train_cycle(self, batches: Iterator[Tensor]) -> tuple[list[Tensor], Tensor]:
        """``n_critic`` critic steps, each on the next batch, then one generator step."""
        d_losses = []
        for _ in range(self.variant.n_critic):
            real = next(batches)  # (B, *IMAGE_SHAPE)
            d_losses.append(self.critic_step(real))
        return d_losses, self.generator_step(real.shape[0], real.device)
