"""DiffAugment (Zhao et al. 2020), and what every augmentation module shares: shapes, dtypes,
gradients, autocast and reproducible randomness (ADA's own tests are in test_augment_ada.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from gan_zoo.augment import ADA, DiffAugment
from gan_zoo.augment.diffaugment import rand_brightness, rand_contrast, rand_saturation
from gan_zoo.errors import ConfigValueError

MODULES: dict[str, Callable[[], nn.Module]] = {
    "diffaugment": DiffAugment,
    "ada_p1": lambda: ADA(p=1.0, target=None),
}


def _images(b: int, c: int, size: int, seed: int = 0) -> Tensor:
    """``(b, c, size, size)`` images in ``[-1, 1]``, distinct pixels (no symmetry)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, size, size, generator=g) * 2 - 1


# ------------------------------------------------------------------ shared behaviour
@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [28, 32, 64])
def test_shape_and_dtype_are_kept(name: str, channels: int, size: int) -> None:
    aug = MODULES[name]()
    x = _images(3, channels, size)
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        y = aug(x.to(dtype))
        assert y.shape == x.shape and y.dtype == dtype


@pytest.mark.parametrize("name", MODULES)
def test_gradients_reach_every_input_sample(name: str) -> None:
    x = _images(8, 3, 32).requires_grad_(True)
    MODULES[name]()(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (x.grad.flatten(1).abs().sum(1) > 0).all()


@pytest.mark.parametrize("name", MODULES)
def test_gradcheck_with_fixed_randomness(name: str) -> None:
    aug = MODULES[name]()
    x = _images(2, 3, 8).double().requires_grad_(True)
    # The same generator seed on every call: gradcheck perturbs x under one fixed augmentation.
    fn = lambda t: aug(t, generator=torch.Generator().manual_seed(3))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("name", MODULES)
def test_seeding_torch_reproduces_the_augmentation_bit_for_bit(name: str) -> None:
    aug, x = MODULES[name](), _images(16, 3, 32)
    torch.manual_seed(7)
    first = aug(x)
    torch.manual_seed(7)
    assert torch.equal(aug(x), first)
    assert not torch.equal(aug(x), first)  # and the global RNG moves on


@pytest.mark.parametrize("name", MODULES)
def test_an_explicit_generator_reproduces_and_leaves_the_global_rng_alone(name: str) -> None:
    aug, x = MODULES[name](), _images(16, 3, 32)
    state = torch.get_rng_state()
    first = aug(x, generator=torch.Generator().manual_seed(5))
    second = aug(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first, second)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", MODULES)
def test_autocast_does_not_change_float32_math(name: str) -> None:
    aug, x = MODULES[name](), _images(8, 3, 32)
    plain = aug(x, generator=torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = aug(x, generator=torch.Generator().manual_seed(1))
        half = aug(x.bfloat16(), generator=torch.Generator().manual_seed(1))
    assert cast.dtype == torch.float32 and torch.equal(cast, plain)
    # bf16 in, bf16 out: the float32 result of the bf16-rounded input, rounded once.
    expected = aug(x.bfloat16().float(), generator=torch.Generator().manual_seed(1))
    assert torch.equal(half, expected.bfloat16())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", MODULES)
def test_cuda_with_half_precision_autocast(name: str) -> None:
    aug = MODULES[name]().cuda()
    x = _images(8, 3, 32).cuda().requires_grad_(True)
    for dtype in (torch.float16, torch.bfloat16):
        with torch.autocast("cuda", dtype=dtype):
            y = aug(x.to(dtype), generator=torch.Generator("cuda").manual_seed(0))
        assert y.dtype == dtype and torch.isfinite(y).all()
        y.float().sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
    torch.manual_seed(0)
    first = aug(x)
    torch.manual_seed(0)
    assert torch.equal(aug(x), first)


# ------------------------------------------------------------------------ DiffAugment
def test_unknown_policy_is_one_line_naming_the_value_and_the_valid_ones() -> None:
    with pytest.raises(ConfigValueError) as err:
        DiffAugment("color,flip")
    assert str(err.value) == (
        "policy='flip' is invalid: expected a comma-separated subset of color, translation, cutout"
    )


def test_policy_accepts_a_sequence_and_the_empty_policy_is_the_identity() -> None:
    assert DiffAugment(["cutout", "color"]).policy == ("cutout", "color")
    x = _images(2, 3, 32)
    assert DiffAugment("")(x) is x


def _shifted(x: Tensor, dx: int, dy: int) -> Tensor:
    """``x: (C, H, W)`` with content moved by (dx, dy) pixels, zero padded."""
    out = torch.zeros_like(x)
    h, w = x.shape[1:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


@pytest.mark.parametrize("size", [28, 32, 64])
def test_translation_shifts_by_whole_pixels_up_to_an_eighth_with_zero_padding(size: int) -> None:
    # Every pixel a distinct value in (0, 1], so zero padding shows and the centre pixel's value
    # says where it came from.
    x = (torch.arange(size * size) + 1.0).div(size * size).view(1, 1, size, size)
    x = x.expand(256, 3, size, size)
    y = DiffAugment("translation")(x, generator=torch.Generator().manual_seed(0))
    c, limit, seen = size // 2, size // 8, set()
    for xi, yi in zip(x, y):
        source_y, source_x = divmod(round(yi[0, c, c].item() * size * size) - 1, size)
        dx, dy = c - source_x, c - source_y
        assert max(abs(dx), abs(dy)) <= limit  # within [-H/8, H/8] on both axes...
        assert torch.equal(yi, _shifted(xi, dx, dy))  # ...an exact copy, zeros elsewhere
        seen.add((dx, dy))
    # Both extremes are drawn (the released randint(-H // 8, H // 8 + 1) includes them).
    assert {dx for dx, _ in seen} >= {-limit, limit} and {dy for _, dy in seen} >= {-limit, limit}


@pytest.mark.parametrize("size", [28, 32, 64])
def test_cutout_zeroes_a_square_of_half_the_size_clipped_at_the_border(size: int) -> None:
    x = torch.ones(256, 1, size, size)
    y = DiffAugment("cutout")(x, generator=torch.Generator().manual_seed(0))
    assert set(y.unique().tolist()) <= {0.0, 1.0}  # nothing but the mask
    half, full_squares = size // 2, 0
    for yi in y[:, 0]:
        rows = (yi == 0).any(1).nonzero().flatten()
        cols = (yi == 0).any(0).nonzero().flatten()
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert (yi[top:bottom, left:right] == 0).all()  # a solid rectangle...
        assert int((yi == 0).sum()) == (bottom - top) * (right - left)  # ...and nothing else
        h, w = int(bottom - top), int(right - left)
        assert half // 2 <= h <= half and half // 2 <= w <= half  # a square, at most half clipped
        inside = 0 < top and bottom < size and 0 < left and right < size
        assert h == w == half or not inside
        full_squares += h == w == half
    assert 0 < full_squares < len(y)  # usually whole, sometimes clipped by the border


def test_cutout_passes_no_gradient_through_the_square() -> None:
    x = _images(4, 3, 32).requires_grad_(True)
    y = DiffAugment("cutout")(x, generator=torch.Generator().manual_seed(0))
    y.sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad, (y != 0).to(x.dtype))  # 1 outside the square, 0 inside


def test_brightness_adds_one_offset_per_sample_within_half_a_unit() -> None:
    x = _images(512, 3, 8)
    delta = rand_brightness(x, torch.Generator().manual_seed(0)) - x
    per_sample = delta.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-6)
    offsets = per_sample[:, 0]
    assert offsets.min() >= -0.5 and offsets.max() <= 0.5  # U[-0.5, 0.5] in [-1, 1] units
    assert offsets.min() < -0.45 and offsets.max() > 0.45


def test_saturation_keeps_each_pixels_grey_level_and_is_the_identity_on_grey() -> None:
    x = _images(256, 3, 8)
    y = rand_saturation(x, torch.Generator().manual_seed(0))
    assert torch.allclose(y.mean(1), x.mean(1), atol=1e-6)
    ratio = (y - y.mean(1, keepdim=True)).flatten(1).norm(dim=1) / (
        (x - x.mean(1, keepdim=True)).flatten(1).norm(dim=1)
    )  # one factor per sample, U[0, 2]
    assert ratio.min() >= 0 and ratio.max() <= 2 and ratio.min() < 0.1 and ratio.max() > 1.9
    grey = _images(4, 1, 8)
    assert torch.equal(rand_saturation(grey, torch.Generator().manual_seed(0)), grey)


def test_contrast_keeps_the_image_mean_and_scales_deviations_by_half_to_one_and_a_half() -> None:
    x = _images(256, 3, 8)
    y = rand_contrast(x, torch.Generator().manual_seed(0))
    assert torch.allclose(y.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-6)
    dx = x - x.mean((1, 2, 3), keepdim=True)
    dy = y - y.mean((1, 2, 3), keepdim=True)
    ratio = dy.flatten(1).norm(dim=1) / dx.flatten(1).norm(dim=1)
    assert ratio.min() >= 0.5 - 1e-6 and ratio.max() <= 1.5 + 1e-6
    assert ratio.min() < 0.55 and ratio.max() > 1.45
