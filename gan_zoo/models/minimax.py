"""The original GAN of Goodfellow et al. 2014, with both generator objectives."""

from __future__ import annotations

import math

from torch import Tensor

from gan_zoo import losses
from gan_zoo.models.base import GAN


class MinimaxGAN(GAN):
    """The true minimax game of Goodfellow et al. 2014, Eq. 1.

    The generator minimizes ``E[log(1 - D(G(z)))]``, the *saturating* objective. Most libraries
    ship the non-saturating heuristic under this name; this class does not, so its vanishing
    generator gradient early in training can be observed (see :class:`NonSaturatingGAN`).

    Logs ``divergence/js``: at the optimal D, ``V(D, G) = -log 4 + 2 JSD(P_data || P_G)``
    (Theorem 1), so ``(V + log 4) / 2`` estimates the Jensen-Shannon divergence. It saturates at
    ``log 2`` once the two distributions stop overlapping.
    """

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return losses.minimax_discriminator_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return losses.minimax_generator_loss(fake_scores)

    def divergence_estimates(
        self,
        real_scores: Tensor,
        fake_scores: Tensor,
        real: Tensor | None = None,
        fake: Tensor | None = None,
    ) -> dict[str, Tensor]:
        value = -losses.minimax_discriminator_loss(real_scores, fake_scores)  # V(D, G)
        return {"js": 0.5 * (value + math.log(4.0))}


class NonSaturatingGAN(MinimaxGAN):
    """Goodfellow et al. 2014, Sec. 3: the generator maximizes ``log D(G(z))`` instead.

    The discriminator plays the same game, so ``divergence/js`` is logged as for
    :class:`MinimaxGAN`.
    """

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return losses.nonsaturating_generator_loss(fake_scores)
