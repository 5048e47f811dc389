"""Hinge-loss GAN (Lim & Ye 2017, "Geometric GAN") without spectral normalization."""

from __future__ import annotations

from torch import Tensor

from gan_zoo import losses
from gan_zoo.models.base import GAN


class HingeGAN(GAN):
    """Geometric GAN of Lim & Ye 2017: a hinge (SVM) loss for D, ``-E[D(G(z))]`` for G.

    The same losses as :class:`~gan_zoo.models.SNGAN` (Miyato et al. 2018, Eq. 16-17) but with an
    unconstrained critic, so the two can be compared to isolate what spectral norm contributes.

    Logs ``divergence/tv``: clipping any D to [-1, 1] never raises the hinge loss, and for
    ``|D| <= 1`` the loss is ``2 - (E_P[D] - E_Q[D]) >= 2 - 2 TV(P_data, P_G)``, with equality at
    ``D* = sign(p - q)``. So ``1 - L_D / 2`` is a lower bound on the total
    variation distance, which saturates at 1 once the supports separate.

    Args:
        As :class:`~gan_zoo.models.GAN`. Defaults are the DCGAN settings (Radford et al. 2016)
        that Lim & Ye build on: Adam lr 2e-4, betas (0.5, 0.999), n_critic 1.
    """

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return losses.hinge_discriminator_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return losses.wasserstein_generator_loss(fake_scores)

    def divergence_estimates(
        self,
        real_scores: Tensor,
        fake_scores: Tensor,
        real: Tensor | None = None,
        fake: Tensor | None = None,
    ) -> dict[str, Tensor]:
        return {"tv": 1.0 - 0.5 * losses.hinge_discriminator_loss(real_scores, fake_scores)}
