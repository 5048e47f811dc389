"""DCGAN generator and discriminator (Radford et al. 2016, "Unsupervised Representation
Learning with Deep Convolutional GANs", Sec. 3 and Fig. 1) for 28, 32 and 64 px images.

Both nets work on a ladder of resolutions ``base -> 2 base -> ... -> image_size`` with
``base = 7`` for 28 px (MNIST) and ``base = 4`` otherwise. Channel counts double at every
halving of resolution, so ``width`` is the channel count at full resolution: 28 px uses
``2w, w``, 32 px ``4w, 2w, w`` and 64 px ``8w, 4w, 2w, w``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gan_zoo.nets._norm import Norm, check_input_shape, norm_2d
from gan_zoo.nets.conditioning import (
    ClassConditioning,
    Conditioning,
    LabelledSequential,
    batch_norm_2d,
    conditioned_output,
    pack_samples,
)
from gan_zoo.validation import NonNegativeInt, PositiveInt, StrictBool, validated

ImageSize = Literal[28, 32, 64]


def _ladder(image_size: int, width: int) -> tuple[int, list[int]]:
    """Base resolution and channel counts ``[c_base, ..., width]`` from coarse to fine."""
    base = 7 if image_size == 28 else 4
    n_steps = int(math.log2(image_size // base))  # resolution doublings: 2, 3 or 4
    return base, [width * 2 ** (n_steps - 1 - i) for i in range(n_steps)]


def _dcgan_init(module: nn.Module) -> None:
    """Weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0 (Radford et al. 2016, Sec. 4)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.GroupNorm) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
    bias = getattr(module, "bias", None)
    if isinstance(bias, Tensor):
        nn.init.zeros_(bias)


def _in_memory_format(net: nn.Module, channels_last: bool) -> None:
    """Store ``net``'s 4-D weights NHWC when ``channels_last``: oneDNN's preferred layout, whose
    convolutions took 0.87x the time of NCHW ones for the default job's step on a 2-core CPU
    (bench/RESULTS.md, "The default job on a slower CPU"). Same math, other kernels."""
    if channels_last:
        net.to(memory_format=torch.channels_last)


class DCGANGenerator(nn.Module):
    """Latent vector to image: linear projection, then stride-2 transposed convs.

    ``z: (B, latent_dim) -> (B, channels, image_size, image_size)`` in ``[-1, 1]`` (tanh).
    BatchNorm and ReLU after every layer but the output one, as in Radford et al. 2016; with
    ``num_classes > 0`` the BatchNorms are class-conditional and ``forward`` takes labels.
    ``channels_last`` stores the conv weights NHWC, so the images come out NHWC-strided (same
    values; ``reshape``, not ``view``, flattens them).

    >>> g = DCGANGenerator(latent_dim=8, channels=1, image_size=28, width=8)
    >>> g(torch.randn(2, 8)).shape
    torch.Size([2, 1, 28, 28])
    """

    latent_dim: int
    output_shape: tuple[int, ...]

    @validated
    def __init__(
        self,
        latent_dim: PositiveInt = 64,
        channels: PositiveInt = 1,
        image_size: ImageSize = 28,
        width: PositiveInt = 64,
        num_classes: NonNegativeInt = 0,
        channels_last: StrictBool = False,
    ) -> None:
        super().__init__()
        base, widths = _ladder(image_size, width)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.output_shape = (channels, image_size, image_size)
        # Convs followed by BatchNorm need no bias: the norm's shift replaces it.
        self.project = LabelledSequential(
            nn.Linear(latent_dim, widths[0] * base * base, bias=False),
            nn.Unflatten(1, (widths[0], base, base)),
            batch_norm_2d(widths[0], num_classes),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(widths):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                batch_norm_2d(c_out, num_classes),
                nn.ReLU(),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, stride=2, padding=1), nn.Tanh()]
        self.upsample = LabelledSequential(*layers)
        self.apply(_dcgan_init)
        _in_memory_format(self, channels_last)  # outputs follow the weights' layout

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """``(B, latent_dim)`` (and ``(B,)`` labels when conditional) ``-> (B, C, H, W)``."""
        if self.num_classes and labels is None:
            raise ValueError("this generator is class-conditional: pass labels (B,)")
        h = self.project(z, labels)  # (B, c_base, base, base)
        return self.upsample(h, labels)


class DCGANDiscriminator(nn.Module):
    """Image to one raw score: stride-2 convs with LeakyReLU(0.2), then a linear layer.

    ``x: (B, channels, image_size, image_size) -> (B,)`` logits or critic values, no sigmoid,
    so the loss decides how to read them. No norm on the first layer (Radford et al. 2016,
    Sec. 3); ``norm`` picks BatchNorm, per-sample layer norm (GroupNorm with one group, for
    gradient penalties) or nothing for the others. ``pack`` scores packs of samples
    concatenated along channels (PacGAN); with ``num_classes > 0`` it takes labels and
    ``conditioning`` adds the projection term or an auxiliary classifier
    (``gan_zoo.nets.conditioning``). ``channels_last`` stores the conv weights NHWC and converts
    inputs to NHWC: the same scores, computed by oneDNN's faster kernels on CPU.

    >>> d = DCGANDiscriminator(channels=3, image_size=32, width=8, norm="layer")
    >>> d(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2])
    """

    input_shape: tuple[int, ...]

    @validated
    def __init__(
        self,
        channels: PositiveInt = 1,
        image_size: ImageSize = 28,
        width: PositiveInt = 64,
        norm: Norm = "batch",
        pack: PositiveInt = 1,
        num_classes: NonNegativeInt = 0,
        conditioning: Conditioning = "projection",
        channels_last: StrictBool = False,
    ) -> None:
        super().__init__()
        base, widths = _ladder(image_size, width)
        widths = widths[::-1]  # fine to coarse: width, 2 width, ...
        self.input_shape = (channels, image_size, image_size)
        self.pack, self.num_classes, self.channels_last = pack, num_classes, channels_last
        layers: list[nn.Module] = [
            nn.Conv2d(channels * pack, widths[0], 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        ]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [
                nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=norm == "none"),
                norm_2d(norm, c_out),
                nn.LeakyReLU(0.2),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1] * base * base, 1)
        self.conditioning = (
            ClassConditioning(widths[-1] * base * base, num_classes, conditioning)
            if num_classes
            else None
        )
        self.apply(_dcgan_init)
        _in_memory_format(self, channels_last)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Any:
        """``(B, C, H, W)`` (and ``(B,)`` labels) ``-> (B / pack,)`` scores (and class logits)."""
        check_input_shape(self, x, self.input_shape)
        x = pack_samples(x, self.pack)
        if self.channels_last:  # real batches arrive NCHW from the loader
            x = x.contiguous(memory_format=torch.channels_last)
        h = torch.flatten(self.features(x), 1)  # (B / pack, F), the same order in either layout
        return conditioned_output(self.conditioning, h, self.head(h).squeeze(1), labels)
