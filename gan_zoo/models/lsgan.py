"""Least-squares GAN of Mao et al. 2017."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gan_zoo import losses
from gan_zoo.errors import check
from gan_zoo.models.base import GAN
from gan_zoo.validation import validated


class LSGAN(GAN):
    """LSGAN (Mao et al. 2017, "Least Squares Generative Adversarial Networks"), Eq. 2.

    D regresses its linear output onto ``b`` for data and ``a`` for fakes; G pulls its samples'
    scores to ``c``. The defaults are the 0-1 coding of their Eq. 9 (``a = 0, b = c = 1``), the one
    used in their experiments; ``a = -1, b = 1, c = 0`` (Eq. 8) is the setting for which G's
    objective is a Pearson chi^2 divergence at the optimal D (their Theorem 1).

    Logs ``divergence/pearson_to_mixture``: at the optimal ``D* = (b p + a q) / (p + q)`` the
    discriminator loss is ``(b - a)^2 / 4 * (1 - chi2(P_data || M))``, with the mixture
    ``M = (P_data + P_G) / 2``, and any other D has a larger loss, so ``1 - 4 L_D / (b - a)^2``
    is a lower bound on that chi^2, in [0, 1]. Like JS, it saturates (at 1) once the supports
    separate.

    Args:
        fake_label: ``a``. real_label: ``b`` (must differ from ``a``). generator_target: ``c``.
        Other arguments as in :class:`~gan_zoo.models.GAN`. Defaults are the DCGAN settings
        (Radford et al. 2016) LSGAN builds on: Adam lr 2e-4, betas (0.5, 0.999), n_critic 1.
    """

    @validated
    def __init__(
        self,
        *args: Any,
        fake_label: float = 0.0,
        real_label: float = 1.0,
        generator_target: float = 1.0,
        **kwargs: Any,
    ) -> None:
        check(real_label != fake_label, "real_label", real_label, f"a number != {fake_label}")
        super().__init__(*args, **kwargs)
        self.fake_label, self.real_label = float(fake_label), float(real_label)
        self.generator_target = float(generator_target)

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return losses.least_squares_discriminator_loss(
            real_scores, fake_scores, self.real_label, self.fake_label
        )

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return losses.least_squares_generator_loss(fake_scores, self.generator_target)

    def divergence_estimates(
        self,
        real_scores: Tensor,
        fake_scores: Tensor,
        real: Tensor | None = None,
        fake: Tensor | None = None,
    ) -> dict[str, Tensor]:
        loss = self.discriminator_loss(real_scores, fake_scores)
        return {"pearson_to_mixture": 1.0 - 4.0 * loss / (self.real_label - self.fake_label) ** 2}
