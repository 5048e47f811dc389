"""The non-saturating GAN with the R1 penalty of Mescheder et al. 2018."""

from __future__ import annotations

import functools
from typing import Any

import torch

from gan_zoo.models.minimax import NonSaturatingGAN
from gan_zoo.optim import OptimizerFactory
from gan_zoo.validation import NonNegativeFloat, validated


class R1GAN(NonSaturatingGAN):
    """Mescheder et al. 2018, "Which Training Methods for GANs Actually Converge?": the
    non-saturating GAN with the zero-centered penalty ``R1 = gamma / 2 E_data[||grad D||^2]``
    (Eq. 9), which makes the equilibrium locally convergent (Theorem 4.1).

    Defaults from their released code (GAN_stability, ``configs/default.yaml``): ``gamma`` 10,
    RMSprop with lr 1e-4 for both nets, one critic step per generator step. (Their runs also
    average G's weights with beta 0.999: ``model.ema_decay=0.999``.) R2, the same on fakes
    (Eq. 10), is ``model.r2_gamma``; both are options of every variant.

    Args:
        r1_gamma: ``gamma`` of R1.
        Other arguments as in :class:`~gan_zoo.models.GAN`.
    """

    default_optimizer: OptimizerFactory = functools.partial(torch.optim.RMSprop, lr=1e-4)

    @validated
    def __init__(self, *args: Any, r1_gamma: NonNegativeFloat = 10.0, **kwargs: Any) -> None:
        kwargs["r1_gamma"] = r1_gamma
        super().__init__(*args, **kwargs)
