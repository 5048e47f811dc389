"""SN-GAN of Miyato et al. 2018: spectral normalization on every critic layer."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from gan_zoo import losses
from gan_zoo.compat import ConvNd
from gan_zoo.models.base import GAN
from gan_zoo.models.wgan import refuse_batchnorm, wasserstein_estimates
from gan_zoo.optim import OptimizerFactory
from gan_zoo.validation import validated

_LOSSES: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    # Miyato et al. 2018, Eq. 16-17 (hinge, their best CIFAR-10 results).
    "hinge": (losses.hinge_discriminator_loss, losses.wasserstein_generator_loss),
    # Miyato et al. 2018, Eq. 2 with the non-saturating generator loss (their "standard" loss).
    "ns": (losses.minimax_discriminator_loss, losses.nonsaturating_generator_loss),
}


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Wrap the weight of every Linear/Conv/ConvTranspose layer in ``module`` with spectral norm.

    Uses ``torch.nn.utils.parametrizations.spectral_norm`` (one power iteration per forward, as
    in the paper). A class embedding (the projection discriminator's ``V``) is normalized too,
    as in Miyato & Koyama 2018's code (``SNEmbedID``). Layers that already carry a
    parametrization are left alone, so applying it twice is harmless.
    """
    for layer in list(module.modules()):
        layer_types = (nn.Linear, ConvNd, nn.Embedding)
        if isinstance(layer, layer_types) and not parametrize.is_parametrized(layer, "weight"):
            spectral_norm(layer)
    return module


class SNGAN(GAN):
    """SN-GAN (Miyato et al. 2018): every critic layer is spectrally normalized.

    The paper's critic has no other normalization, and a critic containing BatchNorm is refused:
    BatchNorm divides by a batch statistic, which voids the per-layer Lipschitz bound spectral
    norm is there to give, and makes each score depend on the rest of the batch.

    Args:
        loss: ``"hinge"`` (default, Eq. 16-17) or ``"ns"`` (the standard non-saturating loss).
        Other arguments as in :class:`~gan_zoo.models.GAN`; defaults follow the paper's CIFAR
        setting (Adam lr 2e-4, betas (0, 0.9), n_critic 5).
    """

    default_optimizer: OptimizerFactory = functools.partial(
        torch.optim.Adam, lr=2e-4, betas=(0.0, 0.9)
    )

    default_n_critic = 5

    @validated
    def __init__(self, *args: Any, loss: Literal["hinge", "ns"] = "hinge", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        refuse_batchnorm(
            self.discriminator,
            "a critic without BatchNorm (SN-GAN's critic has no normalization but spectral norm; "
            "use norm=none)",
        )
        apply_spectral_norm(self.discriminator)
        self.loss = loss
        self._d_loss, self._g_loss = _LOSSES[loss]

    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return self._d_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return self._g_loss(fake_scores)

    def divergence_estimates(
        self,
        real_scores: Tensor,
        fake_scores: Tensor,
        real: Tensor | None = None,
        fake: Tensor | None = None,
    ) -> dict[str, Tensor]:
        # SN holds each layer's reshaped weight at norm 1: a Linear layer is then 1-Lipschitz, a
        # conv up to sqrt(kh * kw) (LipschitzMonitor's sigma_max shows it). Whichever loss trains
        # it, the dual gap of a K-Lipschitz critic is a lower bound on K * W1, and the measured K
        # normalizes it.
        return wasserstein_estimates(self, real_scores, fake_scores, real, fake)
