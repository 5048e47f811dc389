"""DiffAugment: Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training".

The same random, differentiable transformation ``T`` is applied to real *and* generated images
every time the discriminator sees them, in D's step and in G's step, so G's gradient flows back
through ``T`` (their Sec. 3 and Fig. 4). Three policies (their Sec. 3 and released
``DiffAugment_pytorch.py``), every op applied to every sample with its own random parameter:

- ``color``: brightness ``x + b``, ``b ~ U[-0.5, 0.5]``; saturation ``(x - mean_c) s + mean_c``,
  ``s ~ U[0, 2]``; contrast ``(x - mean_chw) c + mean_chw``, ``c ~ U[0.5, 1.5]``;
- ``translation``: an integer shift by up to ``1/8`` of the image size on each axis, zero padded;
- ``cutout``: a square of half the image size, centred anywhere in the image (so it may be
  clipped at the border), set to zero.

The released code works on images in ``[-1, 1]`` and so does this module: the brightness offset
is in those units (up to a quarter of the range), and "zero" for padding and cutout is
mid-grey. On 1-channel images saturation is the identity (``x - mean_c = 0``), as in the
released code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import kornia.geometry.transform as KT
import torch
from torch import Tensor, nn

from gan_zoo.augment._common import check_images, compute_dtype, full_precision, rand, randint
from gan_zoo.errors import ConfigValueError, check

Generator = torch.Generator | None


def rand_brightness(x: Tensor, generator: Generator = None) -> Tensor:
    """``(B, C, H, W) -> (B, C, H, W)``: add ``b ~ U[-0.5, 0.5]`` per sample (Zhao et al. 2020)."""
    b = rand((x.shape[0], 1, 1, 1), x, generator).to(x.dtype) - 0.5
    return x + b


def rand_saturation(x: Tensor, generator: Generator = None) -> Tensor:
    """``(B, C, H, W) -> (B, C, H, W)``: scale each pixel's deviation from its channel mean.

    Factor ``s ~ U[0, 2]`` per sample (Zhao et al. 2020, "color" policy): ``s = 0`` gives grey.
    """
    s = 2.0 * rand((x.shape[0], 1, 1, 1), x, generator).to(x.dtype)
    mean = x.mean(dim=1, keepdim=True)  # (B, 1, H, W) per-pixel grey level
    return (x - mean) * s + mean


def rand_contrast(x: Tensor, generator: Generator = None) -> Tensor:
    """``(B, C, H, W) -> (B, C, H, W)``: scale the deviation from the image mean by U[0.5, 1.5]."""
    c = rand((x.shape[0], 1, 1, 1), x, generator).to(x.dtype) + 0.5
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1) per-image mean
    return (x - mean) * c + mean


def rand_translation(x: Tensor, ratio: float = 0.125, generator: Generator = None) -> Tensor:
    """``(B, C, H, W) -> (B, C, H, W)``: integer shift in ``[-int(ratio H), int(ratio H)]``.

    Per sample and axis, uniform over the integers (Zhao et al. 2020, "translation"; the released
    code draws ``randint(-H // 8, H // 8 + 1)``), with zero padding. The warp is kornia's with
    nearest sampling: at integer shifts it copies pixels exactly, and its gradient w.r.t. ``x``
    routes each output pixel's gradient back to the input pixel it came from.
    """
    max_y, max_x = int(x.shape[2] * ratio), int(x.shape[3] * ratio)
    dx = randint(-max_x, max_x + 1, (x.shape[0],), x, generator)
    dy = randint(-max_y, max_y + 1, (x.shape[0],), x, generator)
    shift = torch.stack([dx, dy], dim=1).to(x.dtype)  # (B, 2) as (x, y), kornia's order
    return KT.translate(x, shift, mode="nearest", padding_mode="zeros", align_corners=True)


def rand_cutout(x: Tensor, ratio: float = 0.5, generator: Generator = None) -> Tensor:
    """``(B, C, H, W) -> (B, C, H, W)``: zero a ``int(ratio H) x int(ratio W)`` square per sample.

    As in the released code, the square's centre is uniform over the image (one extra position
    for even sizes, so both borders are reached symmetrically) and the part outside is clipped.
    A mask multiply, so the gradient is 1 outside the square and 0 inside.
    """
    b, _, h, w = x.shape
    cut_h, cut_w = int(h * ratio), int(w * ratio)
    top = randint(0, h + 1 - cut_h % 2, (b, 1, 1), x, generator) - cut_h // 2
    left = randint(0, w + 1 - cut_w % 2, (b, 1, 1), x, generator) - cut_w // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)
    return x * (~inside).unsqueeze(1).to(x.dtype)  # mask (B, 1, H, W)


def _color(x: Tensor, generator: Generator, translation: float, cutout: float) -> Tensor:
    # The released order: brightness, saturation, contrast.
    for op in (rand_brightness, rand_saturation, rand_contrast):
        x = op(x, generator)
    return x


def _translation(x: Tensor, generator: Generator, translation: float, cutout: float) -> Tensor:
    return rand_translation(x, translation, generator)


def _cutout(x: Tensor, generator: Generator, translation: float, cutout: float) -> Tensor:
    return rand_cutout(x, cutout, generator)


POLICIES: dict[str, Callable[[Tensor, Generator, float, float], Tensor]] = {
    "color": _color,
    "translation": _translation,
    "cutout": _cutout,
}


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    """``"color,translation"`` or ``["color", "translation"]`` to a tuple of known names.

    An empty policy is allowed and means no augmentation (as in the released code).

    >>> parse_policy("color, cutout")
    ('color', 'cutout')
    """
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    names = [str(n).strip() for n in names if str(n).strip()]
    valid = f"a comma-separated subset of {', '.join(POLICIES)}"
    for name in names:
        if name not in POLICIES:
            raise ConfigValueError("policy", name, valid)
    return tuple(names)


class DiffAugment(nn.Module):
    """DiffAugment (Zhao et al. 2020) as a module: ``(B, C, H, W) -> (B, C, H, W)``.

    Apply the *same module* to real and fake images, in D's step and in G's step (their Fig. 4);
    each call draws fresh parameters per sample. Differentiable w.r.t. the input; keeps its dtype
    and computes in float32 (autocast off) for half-precision inputs. Images in ``[-1, 1]``.

    Args:
        policy: comma-separated names or a sequence, in application order, from ``color``,
            ``translation``, ``cutout`` (the paper's default for 100-shot and small data is all
            three).
        translation_ratio: largest shift as a fraction of the size (paper: 1/8).
        cutout_ratio: side of the cutout square as a fraction of the size (paper: 1/2).

    >>> aug = DiffAugment("translation,cutout")
    >>> aug(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 1, 28, 28])
    """

    def __init__(
        self,
        policy: str | Sequence[str] = "color,translation,cutout",
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
    ) -> None:
        super().__init__()
        self.policy = parse_policy(policy)
        ok = 0.0 <= translation_ratio < 1.0
        check(ok, "translation_ratio", translation_ratio, "a number in [0, 1)")
        check(0.0 <= cutout_ratio <= 1.0, "cutout_ratio", cutout_ratio, "a number in [0, 1]")
        self.translation_ratio, self.cutout_ratio = float(translation_ratio), float(cutout_ratio)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``, same dtype; ``generator`` must be on ``x``'s device."""
        check_images(x)
        if not self.policy:
            return x
        with full_precision(x):
            y = x.to(compute_dtype(x))
            for name in self.policy:
                y = POLICIES[name](y, generator, self.translation_ratio, self.cutout_ratio)
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)!r}"
