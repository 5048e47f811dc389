"""The ADA augmentation pipeline: Karras et al. 2020, "Training Generative Adversarial Networks
with Limited Data", Sec. 2 and App. B, with the defaults of the released ``augment.py``.

Every op is applied to each sample independently with probability ``p`` (their Sec. 2.2: keeping
``p`` below ~0.8 keeps the augmentations from leaking into the generated images), in the paper's
order, with the paper's parameter distributions:

=================  ===========================================================================
pixel blitting     ``xflip``: mirror x with prob. 1/2; ``rotate90``: rotate by ``k * 90``
                   degrees, ``k ~ U{0..3}``; ``xint``: integer shift ``round(U[-1/8, 1/8] * size)``
general geometric  ``scale``: isotropic ``2^N(0, 0.2^2)``; ``rotate``: ``U[-pi, pi]`` before and
                   after ``aniso`` (each with ``1 - sqrt(1 - p)``, so either with ``p``);
                   ``aniso``: ``(s, 1/s)``, ``s = 2^N(0, 0.2^2)``;
                   ``xfrac``: ``N(0, 0.125^2) * size``
colour             ``brightness``: ``+N(0, 0.2^2)``; ``contrast``: ``* 2^N(0, 0.5^2)``;
                   ``lumaflip``: reflect luma with prob. 1/2; ``hue``: rotate about the luma axis
                   by ``U[-pi, pi]``; ``saturation``: chroma ``* 2^N(0, 1)``
=================  ===========================================================================

So with ``p = 1`` an ``xflip`` changes half of the samples, a ``rotate90`` three quarters, a
``lumaflip`` half; the other ops change every sample. All geometric ops compose into one matrix
per sample and one warp (kornia's ``warp_affine``, bilinear, reflection padding as in App. B);
the colour ops compose into one ``4 x 4`` matrix, applied to values in ``[-1, 1]``.

Differences from the released code, on purpose: no 2x wavelet-filtered oversampling around the
warp (at 28-64 px we warp at 1x with bilinear sampling; the released code oversamples to avoid
aliasing at 256-1024 px); samples whose transform is the identity are returned bit for bit (the
released code resamples every image once any geometric op is enabled). On 1-channel images the
colour ops act as on the grey pixel ``(g, g, g)`` and return its mean, as in the released code:
``hue`` and ``saturation`` are skipped (they are the identity on grey), ``lumaflip`` negates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import kornia.geometry.transform as KT
import torch
from torch import Tensor, nn

from gan_zoo.augment import _matrices as mat
from gan_zoo.augment import ops as augment_ops
from gan_zoo.augment._common import bmm_exact, check_images, compute_dtype, full_precision
from gan_zoo.augment.ops import COLOUR, GEOMETRIC, RGB_ONLY, Ranges
from gan_zoo.errors import ConfigValueError, check

BLIT = ("xflip", "rotate90", "xint")
GEOM = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
# The released train.py's --augpipe presets that fit 28-64 px images ('bgc' is its default).
PRESETS: dict[str, tuple[str, ...]] = {
    "blit": BLIT,
    "geom": GEOM,
    "color": COLOR,
    "bg": BLIT + GEOM,
    "bgc": BLIT + GEOM + COLOR,
}


def parse_ops(ops: str | Sequence[str]) -> frozenset[str]:
    """Preset names (``bgc``, ...) and op names, comma-separated or a sequence, to op names.

    >>> sorted(parse_ops("blit,contrast"))
    ['contrast', 'rotate90', 'xflip', 'xint']
    """
    names = ops.split(",") if isinstance(ops, str) else list(ops)
    chosen: set[str] = set()
    for name in (str(n).strip() for n in names):
        if name in PRESETS:
            chosen.update(PRESETS[name])
        elif name in PRESETS["bgc"]:
            chosen.add(name)
        elif name:
            valid = f"presets {', '.join(PRESETS)} or ops {', '.join(PRESETS['bgc'])}"
            raise ConfigValueError("ops", name, valid)
    return frozenset(chosen)


class AugmentPipe(nn.Module):
    """The ADA pipeline at an explicit probability: ``(B, C, H, W), p -> (B, C, H, W)``.

    Stateless (no parameters, no buffers); :class:`gan_zoo.augment.ADA` owns ``p``. Images in
    ``[-1, 1]`` with 1 (grey) or 3 (RGB) channels; keeps the input dtype and computes in float32
    (float64 for float64 input), with autocast off.

    Args:
        ops: what to apply: presets ``blit``, ``geom``, ``color``, ``bg``, ``bgc`` (default: the
            set the paper settles on in Sec. 2.3 and uses from Sec. 3 on) and/or op names,
            comma-separated.
        xint_max, scale_std, rotate_max, aniso_std, xfrac_std: geometric parameter ranges
            (App. B; shifts are fractions of the size, scaling stds are of ``log2``,
            ``rotate_max = 1`` is the full circle).
        brightness_std, contrast_std, hue_max, saturation_std: colour parameter ranges (App. B).

    >>> pipe = AugmentPipe("xflip")
    >>> x = torch.randn(4, 3, 32, 32)
    >>> torch.equal(pipe(x, p=0.0), x)
    True
    """

    def __init__(
        self,
        ops: str | Sequence[str] = "bgc",
        xint_max: float = 0.125,
        scale_std: float = 0.2,
        rotate_max: float = 1.0,
        aniso_std: float = 0.2,
        xfrac_std: float = 0.125,
        brightness_std: float = 0.2,
        contrast_std: float = 0.5,
        hue_max: float = 1.0,
        saturation_std: float = 1.0,
    ) -> None:
        super().__init__()
        self.ops = parse_ops(ops)
        self.ranges = Ranges(
            xint_max, scale_std, rotate_max, aniso_std, xfrac_std,
            brightness_std, contrast_std, hue_max, saturation_std,
        )  # fmt: skip
        for key, value in dataclasses.asdict(self.ranges).items():
            check(value >= 0, key, value, "a number >= 0")
        self.geometric = [(n, f) for n, f in GEOMETRIC if n in self.ops]
        self.colour = [(n, f) for n, f in COLOUR if n in self.ops]

    def forward(
        self, x: Tensor, p: Tensor | float, generator: torch.Generator | None = None
    ) -> Tensor:
        """Augment ``x: (B, C, H, W)`` (C = 1 or 3); each op hits each sample with prob. ``p``.

        ``p`` may be a 0-dim device tensor (no host sync); ``generator`` must be on ``x``'s
        device. Random numbers are drawn for every enabled op whatever ``p`` is, so the RNG
        advances by the same amount on every call.
        """
        check_images(x, channels=(1, 3))
        # A fill on the device, not as_tensor: a Python float copied to a GPU would sync.
        p = p if isinstance(p, Tensor) else torch.full((), float(p), device=x.device)
        with full_precision(x):
            y = x.to(compute_dtype(x))
            if self.geometric:
                y = _warp(y, self._compose(self.geometric, y, p, generator, size=3))
            colour = [(n, f) for n, f in self.colour if x.shape[1] == 3 or n not in RGB_ONLY]
            if colour:
                y = _recolour(y, self._compose(colour, y, p, generator, size=4))
        return y.to(x.dtype)

    def _compose(
        self,
        samplers: Sequence[tuple[str, augment_ops.Sampler]],
        x: Tensor,
        p: Tensor,
        generator: torch.Generator | None,
        size: int,
    ) -> Tensor:
        """The product of the samplers' ``(B, size, size)`` matrices, first applied first."""
        matrix = torch.eye(size, device=x.device).expand(x.shape[0], size, size)
        for _, sample in samplers:
            matrix = bmm_exact(sample(self.ranges, x, p, generator), matrix)
        return matrix

    def extra_repr(self) -> str:
        return f"ops={','.join(op for op in PRESETS['bgc'] if op in self.ops)!r}"


def _warp(x: Tensor, matrix: Tensor) -> Tensor:
    """Warp ``x: (B, C, H, W)`` by centred forward maps ``(B, 3, 3)``; identity rows untouched."""
    b, _, h, w = x.shape
    cx, cy = (
        torch.full((b,), (w - 1) / 2, device=x.device),
        torch.full((b,), (h - 1) / 2, device=x.device),
    )
    # kornia's pixel frame (align_corners=True) has pixel centres at 0..W-1: move the origin
    # from the image centre to the corner pixel, M = T(c) G T(-c).
    pixel = bmm_exact(mat.translate2d(cx, cy), bmm_exact(matrix, mat.translate2d(-cx, -cy)))
    warped = KT.warp_affine(
        x,
        pixel[:, :2].to(x.dtype),
        (h, w),
        mode="bilinear",
        padding_mode="reflection",
        align_corners=True,
    )
    moved = (matrix != torch.eye(3, device=x.device)).flatten(1).any(1)
    return torch.where(moved.view(b, 1, 1, 1), warped, x)


def _recolour(x: Tensor, matrix: Tensor) -> Tensor:
    """Apply ``(B, 4, 4)`` colour maps to ``x: (B, C, H, W)``; identity rows untouched."""
    linear, offset = matrix[:, :3, :3].to(x.dtype), matrix[:, :3, 3].to(x.dtype)
    if x.shape[1] == 3:
        # Column by column rather than einsum: no TF32 GEMM (see bmm_exact), no (B, 3, 3, H, W).
        y = offset[:, :, None, None].expand_as(x)
        for j in range(3):
            y = y + linear[:, :, j, None, None] * x[:, j : j + 1]
    else:  # grey g -> the mean of M (g, g, g, 1)
        gain, shift = linear.sum(2).mean(1), offset.mean(1)
        y = x * gain.view(-1, 1, 1, 1) + shift.view(-1, 1, 1, 1)
    changed = (matrix != torch.eye(4, device=x.device)).flatten(1).any(1)
    return torch.where(changed.view(-1, 1, 1, 1), y, x)
