"""Unit tests for gan_zoo.nets: shapes, argument checks, and the autograd features the GAN
variants rely on (spectral norm from the outside, double backward for gradient penalties)."""

from __future__ import annotations

import doctest
from collections.abc import Callable
from typing import Any, cast

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

import gan_zoo.nets._norm
import gan_zoo.nets.dcgan
import gan_zoo.nets.mlp
import gan_zoo.nets.resnet
from gan_zoo.errors import ConfigValueError
from gan_zoo.nets import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    ResNetDiscriminator,
    ResNetGenerator,
)

# Small widths keep every test on CPU well under a second.
GENERATORS: list[tuple[type[Any], dict[str, Any]]] = [
    (DCGANGenerator, {"latent_dim": 8, "channels": 1, "image_size": 28, "width": 8}),
    (DCGANGenerator, {"latent_dim": 8, "channels": 3, "image_size": 32, "width": 8}),
    (DCGANGenerator, {"latent_dim": 8, "channels": 3, "image_size": 64, "width": 4}),
    (ResNetGenerator, {"latent_dim": 8, "channels": 3, "width": 16}),
    (MLPGenerator, {"latent_dim": 3, "out_dim": 5, "hidden": 16, "depth": 2}),
]
DISCRIMINATORS: list[tuple[type[Any], dict[str, Any]]] = [
    (DCGANDiscriminator, {"channels": 1, "image_size": 28, "width": 8}),
    (DCGANDiscriminator, {"channels": 3, "image_size": 32, "width": 8}),
    (DCGANDiscriminator, {"channels": 3, "image_size": 64, "width": 4}),
    (ResNetDiscriminator, {"channels": 3, "width": 16}),
    (MLPDiscriminator, {"in_dim": 5, "hidden": 16, "depth": 2}),
]
NORMS = ["batch", "layer", "none"]
PER_SAMPLE_NORMS = ["layer", "none"]


def _ids(cases: list[tuple[type[Any], dict[str, Any]]]) -> list[str]:
    return [f"{cls.__name__}-{kw.get('image_size', '')}" for cls, kw in cases]


def _make_d(cls: type[Any], kwargs: dict[str, Any], norm: str) -> Any:
    return cls(**kwargs, norm=norm)


def _input(d: Any, batch: int = 4) -> Tensor:
    return torch.randn(batch, *d.input_shape)


@pytest.mark.parametrize(("cls", "kwargs"), GENERATORS, ids=_ids(GENERATORS))
def test_generator_output_shape_matches_output_shape(
    cls: type[Any], kwargs: dict[str, Any]
) -> None:
    g = cls(**kwargs)
    out = g(torch.randn(4, g.latent_dim))
    assert g.latent_dim == kwargs["latent_dim"]
    assert out.shape == (4, *g.output_shape)


@pytest.mark.parametrize(("cls", "kwargs"), GENERATORS[:4], ids=_ids(GENERATORS[:4]))
def test_image_generators_output_in_tanh_range(cls: type[Any], kwargs: dict[str, Any]) -> None:
    g = cls(**kwargs)
    out = g(10 * torch.randn(16, g.latent_dim))  # large z to push the tanh into saturation
    assert out.min() >= -1.0 and out.max() <= 1.0


def test_image_shapes_per_size() -> None:
    for size in (28, 32, 64):
        assert DCGANGenerator(image_size=size, width=4).output_shape == (1, size, size)
        assert DCGANDiscriminator(image_size=size, width=4).input_shape == (1, size, size)
    assert ResNetGenerator(width=8).output_shape == (3, 32, 32)
    assert ResNetDiscriminator(width=8).input_shape == (3, 32, 32)
    assert MLPGenerator().output_shape == (2,)
    assert MLPDiscriminator().input_shape == (2,)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize(("cls", "kwargs"), DISCRIMINATORS, ids=_ids(DISCRIMINATORS))
def test_discriminator_returns_one_score_per_sample(
    cls: type[Any], kwargs: dict[str, Any], norm: str
) -> None:
    d = _make_d(cls, kwargs, norm)
    assert d(_input(d, batch=4)).shape == (4,)


def test_default_nets_fit_together() -> None:
    """The default pairs (MNIST DCGAN, CIFAR ResNet, 2-D toy MLP) connect without arguments."""
    pairs: list[tuple[Any, Any]] = [
        (DCGANGenerator(), DCGANDiscriminator()),
        (ResNetGenerator(), ResNetDiscriminator()),
        (MLPGenerator(), MLPDiscriminator()),
    ]
    for g, d in pairs:
        assert g.output_shape == d.input_shape
        assert d(g(torch.randn(2, g.latent_dim))).shape == (2,)


BAD_ARGS: list[tuple[Callable[..., nn.Module], dict[str, Any], str]] = [
    (DCGANGenerator, {"image_size": 48}, "image_size"),
    (DCGANGenerator, {"latent_dim": 0}, "latent_dim"),
    (DCGANGenerator, {"channels": 0}, "channels"),
    (DCGANGenerator, {"width": 0}, "width"),
    (DCGANDiscriminator, {"image_size": 16}, "image_size"),
    (DCGANDiscriminator, {"norm": "spectral"}, "norm"),
    (DCGANDiscriminator, {"width": -1}, "width"),
    (ResNetGenerator, {"image_size": 64}, "image_size"),
    (ResNetGenerator, {"latent_dim": 0}, "latent_dim"),
    (ResNetDiscriminator, {"image_size": 28}, "image_size"),
    (ResNetDiscriminator, {"norm": "instance"}, "norm"),
    (ResNetDiscriminator, {"channels": 0}, "channels"),
    (MLPGenerator, {"depth": 0}, "depth"),
    (MLPGenerator, {"hidden": 0}, "hidden"),
    (MLPGenerator, {"out_dim": 0}, "out_dim"),
    (MLPDiscriminator, {"in_dim": 0}, "in_dim"),
    (MLPDiscriminator, {"norm": "Batch"}, "norm"),
    (MLPDiscriminator, {"depth": 2.5}, "depth"),
]


@pytest.mark.parametrize(("cls", "kwargs", "key"), BAD_ARGS)
def test_bad_arguments_raise_config_value_error(
    cls: Callable[..., nn.Module], kwargs: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigValueError, match=rf"^{key}=") as info:
        cls(**kwargs)
    assert info.value.key == key


def test_error_messages_list_valid_values() -> None:
    with pytest.raises(ConfigValueError, match="expected one of 28, 32, 64"):
        DCGANGenerator(image_size=48)
    with pytest.raises(ConfigValueError, match="'batch', 'layer', 'none'"):
        MLPDiscriminator(norm="spectral")


@pytest.mark.parametrize(("cls", "kwargs"), DISCRIMINATORS, ids=_ids(DISCRIMINATORS))
def test_wrong_input_shape_names_expected_and_got(cls: type[Any], kwargs: dict[str, Any]) -> None:
    d = cls(**kwargs)
    bad = torch.randn(2, *(n + 1 for n in d.input_shape))
    with pytest.raises(ValueError, match=rf"^{cls.__name__} expects inputs of shape \(B, "):
        d(bad)
    with pytest.raises(ValueError, match="got"):
        d(torch.randn(*d.input_shape))  # missing batch dimension


def test_wrong_input_shape_message() -> None:
    with pytest.raises(ValueError) as info:
        DCGANDiscriminator(width=4)(torch.randn(2, 3, 32, 32))
    msg = "DCGANDiscriminator expects inputs of shape (B, 1, 28, 28), got (2, 3, 32, 32)"
    assert str(info.value) == msg


def _apply_spectral_norm(d: nn.Module) -> int:
    """Wrap every Conv2d/Linear as SN-GAN does; returns how many were wrapped."""
    layers = [m for m in d.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    for layer in layers:
        spectral_norm(layer)
    return len(layers)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize(("cls", "kwargs"), DISCRIMINATORS, ids=_ids(DISCRIMINATORS))
def test_spectral_norm_wraps_every_layer(cls: type[Any], kwargs: dict[str, Any], norm: str) -> None:
    d = _make_d(cls, kwargs, norm)
    assert _apply_spectral_norm(d) > 0
    for _ in range(2):  # the second call reuses the power-iteration buffers
        d.zero_grad()
        d(_input(d)).sum().backward()
    wrapped = [m for m in d.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert all(parametrize.is_parametrized(m, "weight") for m in wrapped)
    for m in wrapped:
        grad = cast(Any, m).parametrizations.weight.original.grad
        assert grad is not None and torch.isfinite(grad).all()
    d.eval()
    assert d(_input(d)).shape == (4,)


def _gradient_penalty(d: nn.Module, x: Tensor) -> Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017, Eq. 3) at ``x``: needs a double backward."""
    x = x.requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


@pytest.mark.parametrize("with_sn", [False, True])
@pytest.mark.parametrize("norm", PER_SAMPLE_NORMS)
@pytest.mark.parametrize(("cls", "kwargs"), DISCRIMINATORS, ids=_ids(DISCRIMINATORS))
def test_double_backward_through_discriminator(
    cls: type[Any], kwargs: dict[str, Any], norm: str, with_sn: bool
) -> None:
    d = _make_d(cls, kwargs, norm)
    if with_sn:
        _apply_spectral_norm(d)
    _gradient_penalty(d, _input(d)).backward()
    # The penalty depends on every weight; biases may get None (the head's bias shifts the
    # score but not its input gradient), so only weights must have gradients.
    weights = [p for p in d.parameters() if p.dim() >= 2]
    assert all(w.grad is not None and torch.isfinite(w.grad).all() for w in weights)
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights)


@pytest.mark.parametrize("norm", PER_SAMPLE_NORMS)
@pytest.mark.parametrize(("cls", "kwargs"), DISCRIMINATORS, ids=_ids(DISCRIMINATORS))
def test_per_sample_norms_have_no_batchnorm(
    cls: type[Any], kwargs: dict[str, Any], norm: str
) -> None:
    d = _make_d(cls, kwargs, norm)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in d.modules())
    # In train mode a sample's score must not depend on the rest of the batch.
    x = _input(d, batch=6)
    torch.testing.assert_close(d(x)[:2], d(x[:2]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("cls", "kwargs"), DISCRIMINATORS[:4], ids=_ids(DISCRIMINATORS[:4]))
def test_norm_choice_is_used(cls: type[Any], kwargs: dict[str, Any]) -> None:
    assert any(isinstance(m, nn.BatchNorm2d) for m in cls(**kwargs, norm="batch").modules())
    assert any(isinstance(m, nn.GroupNorm) for m in cls(**kwargs, norm="layer").modules())
    groups = {
        m.num_groups for m in cls(**kwargs, norm="layer").modules() if hasattr(m, "num_groups")
    }
    assert groups == {1}  # one group = layer norm over (C, H, W)


def test_mlp_norm_choice_is_used() -> None:
    assert any(isinstance(m, nn.BatchNorm1d) for m in MLPDiscriminator(norm="batch").modules())
    assert any(isinstance(m, nn.LayerNorm) for m in MLPDiscriminator(norm="layer").modules())


def test_mlp_generator_takes_batchnorm_as_pacgans_toy_generator() -> None:
    g = MLPGenerator(hidden=16, depth=4, norm="batch")
    assert sum(isinstance(m, nn.BatchNorm1d) for m in g.modules()) == 4
    assert not any(isinstance(m, nn.BatchNorm1d) for m in MLPGenerator(hidden=16).modules())


def test_maxout_discriminator_takes_the_max_of_each_units_pieces() -> None:
    """PacGAN's toy D: every hidden layer is a maxout of 5 pieces (Goodfellow et al. 2013)."""
    d = MLPDiscriminator(in_dim=2, hidden=3, depth=2, maxout=5)
    first, activation = d.net[0], d.net[2]
    assert first.out_features == 15 and isinstance(activation, gan_zoo.nets.mlp.Maxout)
    assert d.net[3].in_features == 3  # the next layer sees one value per unit
    x = torch.randn(7, 2)
    pieces = first(x).view(7, 3, 5)  # unit u's pieces are outputs 5u .. 5u + 4
    assert torch.equal(d.net[:3](x), pieces.max(dim=2).values)
    assert d(x).shape == (7,)
    assert not any(isinstance(m, nn.ReLU) for m in d.modules())


@pytest.mark.parametrize(
    "net",
    [
        MLPGenerator(hidden=400, init_std=0.02),
        MLPDiscriminator(hidden=200, maxout=5, init_std=0.02),
    ],
)
def test_mlp_init_std_draws_weights_from_n_0_std_with_zero_biases(net: nn.Module) -> None:
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    weights = torch.cat([m.weight.flatten() for m in linears[1:]])  # the large ones
    assert abs(weights.std().item() - 0.02) < 0.001 and abs(weights.mean().item()) < 0.001
    assert all(torch.count_nonzero(m.bias) == 0 for m in linears)
    default = [m for m in MLPGenerator(hidden=400).modules() if isinstance(m, nn.Linear)]
    assert abs(default[1].weight.std().item() - 0.02) > 0.005  # PyTorch's own: U(±1/√400)


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_resnet_parameter_counts_match_sngan() -> None:
    """Miyato et al. 2018 CIFAR-10 nets: G about 4.3M, D about 1.0M parameters."""
    assert 4.2e6 < _n_params(ResNetGenerator(width=256)) < 4.35e6  # measured 4,276,739
    assert 1.0e6 < _n_params(ResNetDiscriminator(width=128)) < 1.1e6  # measured 1,053,825


def test_dcgan_depth_and_init() -> None:
    g = DCGANGenerator(image_size=64, channels=3, width=64)
    convs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.in_channels for c in convs] == [512, 256, 128, 64]  # 4 -> 8 -> 16 -> 32 -> 64
    weights = torch.cat([c.weight.flatten() for c in convs])
    assert abs(weights.std().item() - 0.02) < 0.002  # N(0, 0.02), Radford et al. 2016
    d = DCGANDiscriminator(image_size=28, width=64)
    convs2d = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs2d] == [64, 128]  # 28 -> 14 -> 7
    assert isinstance(d.features[1], nn.LeakyReLU)  # no norm right after the first conv


@pytest.mark.parametrize(
    "module", [gan_zoo.nets._norm, gan_zoo.nets.dcgan, gan_zoo.nets.mlp, gan_zoo.nets.resnet]
)
def test_docstring_examples(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("pack", [1, 2])
def test_dcgan_channels_last_is_the_same_net_in_another_layout(pack: int) -> None:
    """NHWC weights (``channels_last=True``) compute what NCHW ones do, take NCHW inputs and
    checkpoints of either layout, and train: the gradients agree too."""
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=8, width=8)
    d = DCGANDiscriminator(width=8, norm="none", pack=pack)
    g_nhwc = DCGANGenerator(latent_dim=8, width=8, channels_last=True)
    d_nhwc = DCGANDiscriminator(width=8, norm="none", pack=pack, channels_last=True)
    g_nhwc.load_state_dict(g.state_dict())
    d_nhwc.load_state_dict(d.state_dict())
    conv = next(p for p in d_nhwc.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    z = torch.randn(4, 8)
    fake, fake_nhwc = g(z), g_nhwc(z)
    torch.testing.assert_close(fake, fake_nhwc, rtol=1e-5, atol=1e-6)
    assert fake_nhwc.flatten(1).shape == (4, 28 * 28)
    scores, scores_nhwc = d(fake).sum(), d_nhwc(fake_nhwc).sum()
    torch.testing.assert_close(scores, scores_nhwc, rtol=1e-5, atol=1e-6)
    scores.backward()
    scores_nhwc.backward()
    for a, b in zip(g.parameters(), g_nhwc.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
    assert DCGANGenerator(latent_dim=8, width=8).load_state_dict(g_nhwc.state_dict())
