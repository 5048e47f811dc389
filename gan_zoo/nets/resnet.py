"""The 32 px CIFAR-10 ResNet generator and discriminator.

Gulrajani et al. 2017 ("Improved Training of Wasserstein GANs", App. F) and Miyato et al.
2018 ("Spectral Normalization for GANs", App. B.4, Table 4) use the same pair; the defaults
(``width`` 256 for G, 128 for D, ``latent_dim`` 128) are Miyato et al.'s, about 4.3M and
1.0M parameters. Residual convs get Xavier-uniform init with gain sqrt(2) (they feed a
ReLU), shortcuts and heads gain 1, as in the SN-GAN reference code.
"""

from __future__ import annotations

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
from gan_zoo.validation import NonNegativeInt, PositiveInt, validated

_BASE = 4  # the generator starts from 4x4 feature maps (32 px after three upsamplings)


def _conv(c_in: int, c_out: int, kernel: int, gain: float = 1.0) -> nn.Conv2d:
    """Same-padding conv with Xavier-uniform weights and zero bias."""
    conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    if conv.bias is not None:  # always true; narrows the Optional for mypy
        nn.init.zeros_(conv.bias)
    return conv


def _linear(f_in: int, f_out: int) -> nn.Linear:
    """Linear layer with Xavier-uniform weights and zero bias."""
    linear = nn.Linear(f_in, f_out)
    nn.init.xavier_uniform_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


class UpBlock(nn.Module):
    """Generator block: ``(B, c_in, H, W) -> (B, c_out, 2H, 2W)``.

    Residual: BN, ReLU, nearest upsample x2, conv3x3, BN, ReLU, conv3x3. Shortcut:
    upsample x2, then a 1x1 conv. With ``num_classes > 0`` the BNs are class-conditional.
    """

    takes_labels = True

    def __init__(self, c_in: int, c_out: int, num_classes: int = 0) -> None:
        super().__init__()
        gain = math.sqrt(2.0)
        self.residual = LabelledSequential(
            batch_norm_2d(c_in, num_classes),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(c_in, c_out, 3, gain),
            batch_norm_2d(c_out, num_classes),
            nn.ReLU(),
            _conv(c_out, c_out, 3, gain),
        )
        self.shortcut = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(c_in, c_out, 1)
        )

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.residual(x, labels) + self.shortcut(x)


class DownBlock(nn.Module):
    """Discriminator block: ``(B, c_in, H, W) -> (B, c_out, H/2, W/2)`` or same size.

    Residual: norm, ReLU, conv3x3, norm, ReLU, conv3x3 (+ 2x2 average pool). The shortcut is
    the identity unless channels change or the block downsamples; then a 1x1 conv (+ pool).
    Norms sit where Gulrajani et al. 2017 put their optional critic layer norm.
    """

    def __init__(self, c_in: int, c_out: int, downsample: bool, norm: str) -> None:
        super().__init__()
        gain = math.sqrt(2.0)
        pool: list[nn.Module] = [nn.AvgPool2d(2)] if downsample else []
        self.residual = nn.Sequential(
            norm_2d(norm, c_in),
            nn.ReLU(),
            _conv(c_in, c_out, 3, gain),
            norm_2d(norm, c_out),
            nn.ReLU(),
            _conv(c_out, c_out, 3, gain),
            *pool,
        )
        learned = downsample or c_in != c_out
        self.shortcut = nn.Sequential(_conv(c_in, c_out, 1), *pool) if learned else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.residual(x) + self.shortcut(x)


class OptimizedDownBlock(nn.Module):
    """First discriminator block on raw pixels: ``(B, c_in, H, W) -> (B, c_out, H/2, W/2)``.

    Residual: conv3x3, ReLU, conv3x3, 2x2 average pool (no pre-activation: ReLU of pixels in
    ``[-1, 1]`` would drop half the input). Shortcut: pool first, then a 1x1 conv, which is
    4x cheaper than the reverse order and equal to it. No norm, as in both papers' code.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        gain = math.sqrt(2.0)
        self.residual = nn.Sequential(
            _conv(c_in, c_out, 3, gain),
            nn.ReLU(),
            _conv(c_out, c_out, 3, gain),
            nn.AvgPool2d(2),
        )
        self.shortcut = nn.Sequential(nn.AvgPool2d(2), _conv(c_in, c_out, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.residual(x) + self.shortcut(x)


class ResNetGenerator(nn.Module):
    """CIFAR-10 ResNet generator (Miyato et al. 2018, Table 4a).

    ``z: (B, latent_dim) -> (B, channels, 32, 32)`` in ``[-1, 1]``: linear to
    ``(B, width, 4, 4)``, three :class:`UpBlock` to 32x32, BN, ReLU, conv3x3, tanh.

    >>> g = ResNetGenerator(latent_dim=8, width=16)
    >>> g(torch.randn(2, 8)).shape
    torch.Size([2, 3, 32, 32])
    """

    latent_dim: int
    output_shape: tuple[int, ...]

    @validated
    def __init__(
        self,
        latent_dim: PositiveInt = 128,
        channels: PositiveInt = 3,
        width: PositiveInt = 256,
        image_size: Literal[32] = 32,
        num_classes: NonNegativeInt = 0,
    ) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.output_shape = (channels, image_size, image_size)
        self.project = nn.Sequential(
            _linear(latent_dim, width * _BASE * _BASE),
            nn.Unflatten(1, (width, _BASE, _BASE)),
        )
        self.blocks = LabelledSequential(*(UpBlock(width, width, num_classes) for _ in range(3)))
        self.to_image = LabelledSequential(
            batch_norm_2d(width, num_classes), nn.ReLU(), _conv(width, channels, 3), nn.Tanh()
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """``(B, latent_dim)`` (and ``(B,)`` labels when conditional) ``-> (B, C, 32, 32)``."""
        if self.num_classes and labels is None:
            raise ValueError("this generator is class-conditional: pass labels (B,)")
        h = self.blocks(self.project(z), labels)  # (B, width, 32, 32)
        return self.to_image(h, labels)


class ResNetDiscriminator(nn.Module):
    """CIFAR-10 ResNet discriminator (Miyato et al. 2018, Table 4b).

    ``x: (B, channels, 32, 32) -> (B,)`` raw scores: :class:`OptimizedDownBlock` to 16x16,
    one downsampling :class:`DownBlock` to 8x8, two more at 8x8, ReLU, sum over space
    (not mean, as in the reference code), linear. ``norm`` is "none" in both papers;
    "layer" is Gulrajani et al.'s option for gradient-penalty critics.

    >>> d = ResNetDiscriminator(width=16)
    >>> d(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2])
    """

    input_shape: tuple[int, ...]

    @validated
    def __init__(
        self,
        channels: PositiveInt = 3,
        width: PositiveInt = 128,
        image_size: Literal[32] = 32,
        norm: Norm = "none",
        pack: PositiveInt = 1,
        num_classes: NonNegativeInt = 0,
        conditioning: Conditioning = "projection",
    ) -> None:
        super().__init__()
        self.input_shape = (channels, image_size, image_size)
        self.pack, self.num_classes = pack, num_classes
        self.blocks = nn.Sequential(
            OptimizedDownBlock(channels * pack, width),
            DownBlock(width, width, downsample=True, norm=norm),
            DownBlock(width, width, downsample=False, norm=norm),
            DownBlock(width, width, downsample=False, norm=norm),
            nn.ReLU(),
        )
        self.head = _linear(width, 1)
        self.conditioning = (
            ClassConditioning(width, num_classes, conditioning) if num_classes else None
        )

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Any:
        """``(B, C, 32, 32)`` (and ``(B,)`` labels) ``-> (B / pack,)`` scores (and logits)."""
        check_input_shape(self, x, self.input_shape)
        h = torch.sum(self.blocks(pack_samples(x, self.pack)), dim=(2, 3))  # (B / pack, width)
        return conditioned_output(self.conditioning, h, self.head(h).squeeze(1), labels)
