"""f-GAN of Nowozin et al. 2016: any f-divergence through its variational lower bound."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gan_zoo import losses
from gan_zoo.errors import check
from gan_zoo.models.base import GAN


class FGAN(GAN):
    """f-GAN (Nowozin et al. 2016, "f-GAN: Training Generative Neural Samplers using Variational
    Divergence Minimization"), Sec. 3.

    The critic's raw output ``V(x)`` goes through the output activation ``g_f`` of their Table 2,
    and the critic maximizes ``F = E_P[g_f(V(x))] - E_Q[f*(g_f(V(x)))]`` (Eq. 7), a lower bound
    on ``D_f(P_data || P_G)`` that is tight at ``T*(x) = f'(p(x) / q(x))``. The generator uses
    the non-saturating objective the paper recommends in Sec. 3.2 (and uses in its
    experiments), maximizing ``E_Q[g_f(V(G(z)))]``, rather than minimizing ``F``.

    Logs ``divergence/<divergence>`` = ``F`` on the batch. The scale is the one of the paper's
    Table 1 generator ``f``: for ``"js"`` that is ``2 * JSD`` (at most ``log 4``; half of it is
    comparable to :class:`~gan_zoo.models.MinimaxGAN`'s ``divergence/js``), for ``"gan"`` it is
    ``2 * JSD - log 4``.

    Args:
        divergence: one of ``kl``, ``reverse_kl``, ``pearson``, ``squared_hellinger``, ``js``,
            ``gan`` (the keys of :data:`gan_zoo.losses.F_DIVERGENCES`).
        Other arguments as in :class:`~gan_zoo.models.GAN`. Defaults: one critic step per
        generator step (the single-step gradient method, Nowozin et al. 2016, Algorithm 1) with
        the DCGAN optimizer (Radford et al. 2016) their experiments build on: Adam lr 2e-4,
        betas (0.5, 0.999).

    >>> from gan_zoo.nets import MLPGenerator, MLPDiscriminator
    >>> FGAN(MLPGenerator(), MLPDiscriminator(), latent_dim=2, divergence="pearson").divergence
    'pearson'
    """

    def __init__(self, *args: Any, divergence: str = "kl", **kwargs: Any) -> None:
        valid = ", ".join(losses.F_DIVERGENCES)
        check(divergence in losses.F_DIVERGENCES, "divergence", divergence, f"one of {valid}")
        super().__init__(*args, **kwargs)
        self.divergence = divergence

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return losses.fgan_discriminator_loss(real_scores, fake_scores, self.divergence)

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return losses.fgan_generator_loss(fake_scores, self.divergence)

    def divergence_estimates(
        self,
        real_scores: Tensor,
        fake_scores: Tensor,
        real: Tensor | None = None,
        fake: Tensor | None = None,
    ) -> dict[str, Tensor]:
        return {self.divergence: losses.fgan_bound(real_scores, fake_scores, self.divergence)}
