"""Operator norms of Linear/Conv layers against dense Jacobians and closed-form values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan_zoo.callbacks.lipschitz import eval_mode, reshaped_spectral_norms
from gan_zoo.operator_norms import operator_norms, recorded_input_shapes


def _measured(layer: nn.Module, shape: tuple[int, ...], iterations: int = 50) -> float:
    """The operator norm :func:`operator_norms` gives ``layer`` after a forward at ``shape``."""
    with eval_mode(layer), recorded_input_shapes(layer) as shapes:
        layer(torch.randn(2, *shape))
        (norm,) = operator_norms(layer, shapes, iterations).values()
    return norm


def _dense_operator_norm(layer: nn.Module, shape: tuple[int, ...]) -> float:
    """Top singular value of the layer's full Jacobian on one ``(1, *shape)`` input, by SVD."""
    with eval_mode(layer):
        x = torch.zeros(1, *shape, dtype=torch.float64)
        double = layer.double()
        jacobian = torch.autograd.functional.jacobian(double, x)  # (1, *out, 1, *shape)
        layer.float()
    return torch.linalg.matrix_norm(jacobian.reshape(-1, x.numel()), ord=2).item()


CONVS = {
    "plain": (lambda: nn.Conv2d(2, 3, 3, padding=1), (2, 6, 6)),
    "stride_2": (lambda: nn.Conv2d(2, 4, 4, stride=2, padding=1), (2, 8, 8)),
    "dilation_groups": (lambda: nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=2), (4, 7, 7)),
    "circular": (lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), (2, 5, 5)),
    "reflect": (lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (2, 5, 5)),
    "same": (lambda: nn.Conv2d(2, 3, (3, 2), padding="same"), (2, 5, 6)),
    "transpose": (lambda: nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1), (3, 4, 4)),
    "transpose_groups": (
        lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2),
        (4, 3, 3),
    ),
    "conv1d": (lambda: nn.Conv1d(2, 3, 5, padding=2), (2, 10)),
    "conv3d": (lambda: nn.Conv3d(1, 2, 3, padding=1), (1, 4, 4, 4)),
    "spectral_norm": (lambda: spectral_norm(nn.Conv2d(2, 3, 3, padding=1)), (2, 6, 6)),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", list(CONVS))
def test_conv_operator_norm_matches_the_dense_jacobian(case: str, seed: int) -> None:
    make, shape = CONVS[case]
    torch.manual_seed(seed)
    layer = make()
    exact = _dense_operator_norm(layer, shape)  # the layer's own forward, not conv_map
    assert _measured(layer, shape) == pytest.approx(exact, rel=1e-3)


def test_reshaped_kernel_norm_is_not_the_conv_operator_norm() -> None:
    # 1 -> 1 channel, 3x3 kernel of 1/3 = (u u^T) with u = (1, 1, 1) / sqrt(3), zero padding 1 on
    # n x n: A = T (x) T, T the n x n tridiagonal Toeplitz matrix with entries 1/sqrt(3), whose
    # eigenvalues are (1 + 2 cos(k pi / (n + 1))) / sqrt(3); so ||A|| = (1 + 2 cos(pi/17))^2 / 3
    # for n = 16, while the reshaped (1, 9) kernel has norm sqrt(9 / 9) = 1.
    n = 16
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    nn.init.constant_(conv.weight, 1 / 3)
    assert reshaped_spectral_norms(conv) == pytest.approx({"Conv2d": 1.0})
    expected = (1 + 2 * math.cos(math.pi / (n + 1))) ** 2 / 3  # 2.9323
    assert _measured(conv, (1, n, n)) == pytest.approx(expected, rel=1e-4)
    assert expected < 3.0  # at most sqrt(kh * kw) times the reshaped norm (Tsuzuku et al. 2018)


def test_operator_norms_leave_the_global_rng_alone() -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1)
    state = torch.get_rng_state()
    norms = operator_norms(conv, {"": torch.Size([3, 8, 8])})
    assert torch.equal(torch.get_rng_state(), state) and norms["Conv2d"] > 0
