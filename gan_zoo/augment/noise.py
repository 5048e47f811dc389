"""Instance noise: Sønderby et al. 2017 ("Amortised MAP Inference for Image Super-resolution",
Sec. 3.2) and Arjovsky & Bottou 2017 ("Towards Principled Methods for Training GANs", Sec. 3).

Adding the same Gaussian noise ``N(0, std^2 I)`` to every sample D sees, real and fake, makes the
two distributions overlap, so the divergence D estimates is finite and smooth even when the
supports are disjoint; Mescheder et al. 2018 (Sec. 4.1) show it makes the GAN locally
convergent.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_zoo.validation import NonNegativeFloat, validated


class InstanceNoise(nn.Module):
    """``x + std * eps`` with ``eps ~ N(0, I)`` of ``x``'s shape; the identity for ``std = 0``.

    Any ``(B, *S)`` samples (points or images); differentiable w.r.t. ``x``. The noise comes
    from torch's global RNG, so seeding (and gan_zoo's exact resume) reproduces it.

    >>> noise = InstanceNoise(std=0.5)
    >>> noise(torch.zeros(4, 2)).shape
    torch.Size([4, 2])
    """

    @validated
    def __init__(self, std: NonNegativeFloat = 0.1) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: Tensor) -> Tensor:
        if self.std == 0:
            return x
        return x + self.std * torch.randn_like(x)
