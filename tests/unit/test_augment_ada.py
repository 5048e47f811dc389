"""ADA (Karras et al. 2020): each op's probability, blits, parameter distributions (App. B),
colour semantics, and the adaptive controller of p (Sec. 3) with its checkpointed state."""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_zoo.augment import ADA, AugmentPipe
from gan_zoo.augment import ops as aug_ops
from gan_zoo.augment.pipe import PRESETS
from gan_zoo.errors import ConfigValueError

SIZE = 16  # small images for the statistical tests: 4,000 samples cost a few MB
# Of the samples an op is applied to, the fraction it changes: an x-flip or luma flip happens
# with odds 1/2, a rotation by k * 90 degrees is the identity for k = 0 (1/4), and an integer
# shift round(U[-2, 2]) at 16 px is 0 on both axes with odds (1/4)^2. The rest always change.
CHANGED_WHEN_APPLIED = {"xflip": 0.5, "rotate90": 0.75, "xint": 1 - (1 / 4) ** 2, "lumaflip": 0.5}


def _images(b: int, c: int, size: int, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, size, size, generator=g) * 2 - 1  # (b, c, size, size) in [-1, 1]


def _changed(x: Tensor, y: Tensor) -> Tensor:
    return (y != x).flatten(1).any(1)  # (B,)


# ------------------------------------------------------------------- probabilities
@pytest.mark.parametrize("op", PRESETS["bgc"])
def test_each_op_hits_each_sample_with_probability_p(op: str) -> None:
    pipe, x = AugmentPipe(op), _images(4000, 3, SIZE)
    assert torch.equal(pipe(x, 0.0), x)  # p = 0: the input, bit for bit
    for p in (0.3, 1.0):
        y = pipe(x, p, generator=torch.Generator().manual_seed(1))
        expected = p * CHANGED_WHEN_APPLIED.get(op, 1.0)
        tolerance = 5 * math.sqrt(expected * (1 - expected) / len(x))  # 5 binomial sigmas
        assert abs(_changed(x, y).float().mean().item() - expected) <= tolerance + 1e-12


def test_the_whole_pipeline_at_p_0_is_the_identity_for_grey_and_rgb() -> None:
    for channels in (1, 3):
        x = _images(8, channels, 28)
        assert torch.equal(ADA(p=0.0)(x), x)


def test_p_may_be_a_device_tensor_and_the_rng_advances_the_same_whatever_p() -> None:
    pipe, x = AugmentPipe(), _images(4, 3, 32)
    g0, g1 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    pipe(x, torch.tensor(0.0), generator=g0)
    pipe(x, torch.tensor(0.9), generator=g1)
    assert torch.equal(g0.get_state(), g1.get_state())


# ------------------------------------------------------------------ pixel blitting
def test_xflip_mirrors_the_samples_it_changes() -> None:
    x = _images(64, 3, 32)
    y = AugmentPipe("xflip")(x, 1.0, generator=torch.Generator().manual_seed(0))
    moved = _changed(x, y)
    assert 0 < moved.sum() < len(x)
    torch.testing.assert_close(y[moved], x[moved].flip(-1), atol=1e-4, rtol=0)


def test_rotate90_rotates_by_a_multiple_of_a_right_angle() -> None:
    x = _images(64, 1, 28)
    y = AugmentPipe("rotate90")(x, 1.0, generator=torch.Generator().manual_seed(0))
    turns = set()
    for xi, yi in zip(x, y):
        errors = [(yi - torch.rot90(xi, k, (1, 2))).abs().max().item() for k in range(4)]
        assert min(errors) < 1e-4
        turns.add(errors.index(min(errors)))
    assert turns == {0, 1, 2, 3}


def test_xint_shifts_by_whole_pixels_up_to_an_eighth_with_reflection_padding() -> None:
    size, limit = 32, 4  # round(0.125 * 32)
    x = _images(32, 3, size)
    y = AugmentPipe("xint")(x, 1.0, generator=torch.Generator().manual_seed(0))
    padded = F.pad(x, [limit] * 4, mode="reflect")  # (B, C, size + 8, size + 8)
    for yi, pi in zip(y, padded):
        crops = {
            (dx, dy): (yi - pi[:, limit - dy : limit - dy + size, limit - dx : limit - dx + size])
            for dx in range(-limit, limit + 1)
            for dy in range(-limit, limit + 1)
        }
        best = min(crops, key=lambda d: crops[d].abs().max().item())
        # Bilinear sampling at whole-pixel positions: exact up to float32 coordinate rounding.
        assert crops[best].abs().max().item() < 1e-4, f"no whole-pixel shift matches: {best}"


# ------------------------------------------------------- parameter distributions
def _matrices(op: str, n: int = 20_000, p: float = 1.0) -> Tensor:
    """``(n, k, k)`` matrices of one op for 3-channel 32 px images (no pixels allocated)."""
    sampler = dict(aug_ops.GEOMETRIC + aug_ops.COLOUR)[op]
    x = torch.empty(1, 1, 1, 1).expand(n, 3, 32, 32)
    g = torch.Generator().manual_seed(0)
    return sampler(aug_ops.Ranges(), x, torch.tensor(p), g)


# op -> (the parameter read back from its matrix, the std of App. B's normal distribution)
NORMAL_PARAMETERS: dict[str, tuple[Callable[[Tensor], Tensor], float]] = {
    "scale": (lambda m: torch.log2(m[:, 0, 0]), 0.2),
    "aniso": (lambda m: torch.log2(m[:, 0, 0]), 0.2),
    "xfrac": (lambda m: m[:, 0, 2] / 32, 0.125),  # a fraction of the width
    "brightness": (lambda m: m[:, 0, 3], 0.2),
    "contrast": (lambda m: torch.log2(m[:, 0, 0]), 0.5),
    "saturation": (lambda m: torch.log2(1 + 1.5 * (m[:, 0, 0] - 1)), 1.0),  # diag 1 + (s-1) 2/3
}


@pytest.mark.parametrize("op", NORMAL_PARAMETERS)
def test_normal_parameters_have_appendix_b_spreads(op: str) -> None:
    read, std = NORMAL_PARAMETERS[op]
    values = read(_matrices(op))
    assert abs(values.mean().item()) < 5 * std / math.sqrt(len(values))
    assert values.std().item() == pytest.approx(std, rel=0.05)


def test_scalings_are_isotropic_and_anisotropic_as_named() -> None:
    iso, aniso = _matrices("scale", 100), _matrices("aniso", 100)
    assert torch.equal(iso[:, 0, 0], iso[:, 1, 1])
    torch.testing.assert_close(aniso[:, 0, 0] * aniso[:, 1, 1], torch.ones(100))


@pytest.mark.parametrize("op", ["rotate", "hue"])
def test_angles_are_uniform_over_the_circle(op: str) -> None:
    m = _matrices(op)
    if op == "rotate":
        theta = torch.atan2(m[:, 1, 0], m[:, 0, 0])
    else:  # rotation about (1, 1, 1) / sqrt(3): trace = 1 + 2 cos, m01 - m10 = -2 sin / sqrt 3
        cos, sin = (m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2] - 1) / 2, (m[:, 1, 0] - m[:, 0, 1])
        theta = torch.atan2(sin * math.sqrt(3) / 2, cos)
    quarters = torch.histc(theta, bins=4, min=-math.pi, max=math.pi) / len(theta)
    torch.testing.assert_close(quarters, torch.full((4,), 0.25), atol=0.02, rtol=0)


def test_two_rotations_make_any_rotation_happen_with_probability_p() -> None:
    p = 0.5
    first, second = _matrices("rotate", p=p), _matrices("rotate", p=p).flip(0)
    eye = torch.eye(3)
    none = ((first == eye).flatten(1).all(1) & (second == eye).flatten(1).all(1)).float()
    # each is applied with 1 - sqrt(1 - p), so neither with (sqrt(1 - p))^2 = 1 - p
    assert none.mean().item() == pytest.approx(1 - p, abs=0.02)


def test_integer_shifts_are_whole_pixels_within_an_eighth() -> None:
    t = _matrices("xint")[:, :2, 2]
    assert torch.equal(t, t.round()) and t.abs().max() == 4  # round(0.125 * 32)


# ----------------------------------------------------------------- colour semantics
def test_brightness_and_contrast_are_an_offset_and_a_gain_about_zero() -> None:
    x = _images(16, 3, 8)
    shift = AugmentPipe("brightness")(x, 1.0) - x
    torch.testing.assert_close(shift, shift[:, :1, :1, :1].expand_as(x), atol=1e-6, rtol=0)
    gain = AugmentPipe("contrast")(x, 1.0) / x
    torch.testing.assert_close(gain, gain[:, :1, :1, :1].expand_as(x), atol=1e-5, rtol=1e-5)


def test_lumaflip_negates_grey_and_mirrors_only_luma_of_rgb() -> None:
    grey = _images(64, 1, 8)
    y = AugmentPipe("lumaflip")(grey, 1.0)
    flipped = _changed(grey, y)
    assert 0 < flipped.sum() < len(grey) and torch.equal(y[flipped], -grey[flipped])
    rgb = _images(64, 3, 8)
    y = AugmentPipe("lumaflip")(rgb, 1.0)
    flipped = _changed(rgb, y)
    luma, chroma = rgb.mean(1, keepdim=True), rgb - rgb.mean(1, keepdim=True)
    torch.testing.assert_close(y[flipped], (chroma - luma)[flipped], atol=1e-6, rtol=0)


def test_hue_and_saturation_keep_luma_and_act_on_chroma() -> None:
    x = _images(32, 3, 8)
    chroma = x - x.mean(1, keepdim=True)
    for op in ("hue", "saturation"):
        y = AugmentPipe(op)(x, 1.0)
        torch.testing.assert_close(y.mean(1), x.mean(1), atol=1e-5, rtol=0)
        ratio = (y - y.mean(1, keepdim=True)).norm(dim=1) / chroma.norm(dim=1)  # (B, H, W)
        if op == "hue":  # a rotation keeps each pixel's chroma length
            torch.testing.assert_close(ratio, torch.ones_like(ratio), atol=1e-4, rtol=0)
        else:  # one factor per image
            torch.testing.assert_close(ratio, ratio[:, :1, :1].expand_as(ratio), atol=1e-4, rtol=0)


def test_ops_that_need_colour_are_skipped_for_grey_images() -> None:
    grey = _images(16, 1, 28)
    assert torch.equal(AugmentPipe("hue,saturation")(grey, 1.0), grey)
    assert _changed(grey, AugmentPipe("color")(grey, 1.0)).all()  # brightness, contrast still


# --------------------------------------------------------------------- validation
def test_bad_ops_and_channels_are_refused_with_one_line() -> None:
    with pytest.raises(ConfigValueError, match=r"^ops='filter' is invalid: expected presets"):
        AugmentPipe("bgc,filter")
    with pytest.raises(ConfigValueError, match=r"^p=1.5 is invalid"):
        ADA(p=1.5)
    with pytest.raises(ValueError, match="expected 1 or 3 channels, got 2"):
        ADA(p=1.0)(torch.zeros(2, 2, 28, 28))


def test_double_backward_through_the_pipeline_for_r1_style_penalties() -> None:
    conv = nn.Conv2d(3, 4, 3)
    d = nn.Sequential(conv, nn.Softplus(), nn.Flatten(), nn.LazyLinear(1))
    x = _images(4, 3, 16).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(ADA(p=1.0)(x)).sum(), x, create_graph=True)
    grad.square().sum().backward()  # R1 = ||grad_x D(aug(x))||^2, differentiated w.r.t. D
    weight = conv.weight.grad
    assert weight is not None and torch.isfinite(weight).all() and weight.abs().sum() > 0


# --------------------------------------------------------------------- controller
STEP = 4 * 64 / 500_000  # interval * batch / (ada_kimg * 1000), Karras et al. 2020 Sec. 3


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_p_moves_by_the_paper_step_once_per_interval_towards_the_target(sign: float) -> None:
    ada = ADA(p=0.5)  # target 0.6, interval 4, 500 kimg
    for interval in range(1, 4):
        for _ in range(3):
            ada.observe(torch.full((64,), 2.0 * sign))  # r_t = sign: far from 0.6 either way
        assert ada.p.item() == pytest.approx(0.5 + sign * STEP * (interval - 1), abs=1e-6)
        ada.observe(torch.full((64,), 2.0 * sign))  # the 4th minibatch adjusts p
        assert ada.p.item() == pytest.approx(0.5 + sign * STEP * interval, abs=1e-6)
        assert ada.rt.item() == sign


def test_rt_is_the_mean_sign_and_p_stays_when_it_hits_the_target() -> None:
    ada = ADA(p=0.2, target=0.5, interval=1)
    ada.observe(torch.tensor([3.0, 0.1, 2.0, -7.0]))  # signs 1, 1, 1, -1: r_t = 0.5
    assert ada.rt.item() == 0.5 and ada.p.item() == pytest.approx(0.2)


def test_p_is_clamped_to_the_unit_interval() -> None:
    ada = ADA(p=0.9, interval=4, kimg=4 * 8 / 1000 / 0.4)  # one interval moves p by 0.4
    for _ in range(8):
        ada.observe(torch.ones(8))
    assert ada.p.item() == 1.0
    for _ in range(4 * 4):
        ada.observe(-torch.ones(8))
    assert ada.p.item() == 0.0


def test_fixed_p_mode_records_rt_but_keeps_p() -> None:
    ada = ADA(p=0.3, target=None, interval=2)
    for _ in range(4):
        ada.observe(torch.ones(16))
    assert ada.p.item() == pytest.approx(0.3) and ada.rt.item() == 1.0


def test_the_reduce_hook_sums_statistics_across_ranks_before_they_count() -> None:
    world = 2  # a stand-in for torch.distributed.all_reduce over 2 ranks with equal batches
    ada = ADA(p=0.5)
    for _ in range(4):
        ada.observe(torch.ones(64), reduce=lambda t: t.mul_(world))
    assert ada.p.item() == pytest.approx(0.5 + world * STEP, abs=1e-6)  # N = all ranks' images
    assert ada.rt.item() == 1.0


def test_p_is_a_0_dim_float_buffer_and_the_state_survives_a_checkpoint() -> None:
    model = nn.ModuleDict({"augment": ADA(p=0.25)})  # nested, as in a LightningModule
    ada = model["augment"]
    assert isinstance(ada, ADA)
    assert dict(ada.named_buffers())["p"].shape == () and ada.p.dtype == torch.float32
    for _ in range(6):  # one adjustment, then two minibatches into the next interval
        ada.observe(torch.randn(32))
    state = model.state_dict()
    assert all(isinstance(v, Tensor) for v in state.values())  # plain tensors, no extra state
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    restored_model = nn.ModuleDict({"augment": ADA()})
    restored_model.load_state_dict(torch.load(buffer, weights_only=True))
    restored = restored_model["augment"]
    assert isinstance(restored, ADA)
    assert torch.equal(restored.p, ada.p) and torch.equal(restored.stats, ada.stats)
    for _ in range(2):  # both finish the interval at the same minibatch, identically
        scores = torch.randn(32)
        ada.observe(scores)
        restored.observe(scores)
    assert torch.equal(restored.p, ada.p) and ada.p.item() != pytest.approx(0.25)
