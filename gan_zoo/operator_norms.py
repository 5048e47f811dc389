"""Operator norms of Linear and Conv layers: the largest singular value of the map they compute.

A Linear layer computes ``x -> W x``, whose operator norm is the largest singular value of ``W``.
A conv layer computes a much larger, structured linear map of its whole ``(C, H, W)`` input; its
operator norm depends on the input size, stride, padding, dilation and groups, and is *not* the
largest singular value of the kernel reshaped to ``(out, in * kh * kw)`` (what spectral norm
divides by, Miyato et al. 2018). E.g. a 1->1 3x3 conv with every weight 1/3 has reshaped norm 1
but operator norm close to 3 on large inputs (the inside of a constant image is scaled by 3).
For an ordinary (``groups=1``) conv, each input pixel lies in at most ``kh * kw`` patches, so the
operator norm is at most ``sqrt(kh * kw)`` times the reshaped norm (Tsuzuku et al. 2018), and it
is at least the reshaped norm once some output's receptive field lies inside the input. Sedghi
et al. 2019 compute it exactly for circular padding.

:func:`operator_norms` measures each conv at the input shape it actually gets, iterating on
``A^T A``: ``A`` runs through ``F.conv{1,2,3}d`` / ``F.conv_transpose{1,2,3}d`` with
the layer's own stride, padding (and padding mode), dilation and groups, and ``A^T`` is its
autograd vector-Jacobian product (exact, since ``A`` is linear). The iteration is Lanczos', the
Krylov refinement of power iteration; like it, it approaches the top singular value from below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_zoo.compat import ConvNd, ConvTransposeNd, reversed_padding

# Layers whose weight is a linear map (Linear, Conv and ConvTranspose of any dimension).
WEIGHTED = (nn.Linear, ConvNd)
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _layer_name(name: str, layer: nn.Module) -> str:
    return name or type(layer).__name__


@contextmanager
def recorded_input_shapes(module: nn.Module) -> Iterator[dict[str, torch.Size]]:
    """Record the per-sample input shape of every Linear/Conv layer in the forwards it wraps.

    Yields a dict ``layer name -> shape without the batch dimension``, filled by forward hooks
    (removed on exit) at each layer's first call.
    """
    shapes: dict[str, torch.Size] = {}
    handles = []
    for name, layer in module.named_modules():
        if isinstance(layer, WEIGHTED):

            def hook(_: nn.Module, inputs: tuple[Any, ...], __: Any, key: str = name) -> None:
                shapes.setdefault(key, inputs[0].shape[1:])

            handles.append(layer.register_forward_hook(hook))
    try:
        yield shapes
    finally:
        for handle in handles:
            handle.remove()


def conv_map(layer: ConvNd, weight: Tensor) -> Callable[[Tensor], Tensor]:
    """The bias-free linear map of a Conv/ConvTranspose ``layer`` with kernel ``weight``.

    ``(N, C_in, *spatial)`` to ``(N, C_out, *spatial_out)``, exactly as the layer's forward
    (without ``output_size``) computes it, less the bias.
    """
    dims = weight.dim() - 2
    stride, dilation, groups = layer.stride, layer.dilation, layer.groups
    if isinstance(layer, ConvTransposeNd):
        conv_t, out_pad = _CONV_TRANSPOSE[dims], layer.output_padding
        padding = layer.padding  # a transposed conv's padding is never a string
        assert not isinstance(padding, str)
        return lambda x: conv_t(x, weight, None, stride, padding, out_pad, groups, dilation)
    conv = _CONV[dims]
    if layer.padding_mode != "zeros":  # padded outside the conv, as nn.Conv*d's forward does
        pad, mode = reversed_padding(layer), layer.padding_mode
        return lambda x: conv(F.pad(x, pad, mode=mode), weight, None, stride, 0, dilation, groups)
    return lambda x: conv(x, weight, None, stride, layer.padding, dilation, groups)


def top_singular_value(
    linear_map: Callable[[Tensor], Tensor],
    input_shape: tuple[int, ...],
    iterations: int,
    generator: torch.Generator,
) -> float:
    """Largest singular value of ``linear_map`` on ``(1, *input_shape)`` inputs, from below.

    Lanczos iteration on ``A^T A`` (Golub & Van Loan 2013, Sec. 10.1), with full
    reorthogonalization: the Krylov refinement of power iteration. Each of the ``iterations``
    steps costs one ``A`` and one ``A^T`` product, as a power-iteration step does, but the top
    eigenvalue of the small tridiagonal matrix converges far faster than the power iterate when
    the top singular values are close (a 50-step power iteration can be 1% low on a DCGAN conv;
    50 Lanczos steps are about 1e-5 low). The start vector comes from ``generator``, never
    from the global RNG. ``A^T`` is autograd's vector-Jacobian product of ``A``, the same at
    every point since ``A`` is linear.
    """
    v = torch.randn((1, *input_shape), generator=generator, device=generator.device)
    with torch.enable_grad():
        probe = torch.zeros_like(v, requires_grad=True)
        image = linear_map(probe)  # a graph whose vector-Jacobian product is A^T

    def gram(x: Tensor) -> Tensor:  # (n,) -> A^T A x, (n,)
        with torch.no_grad():
            y = linear_map(x.reshape(v.shape))
        (back,) = torch.autograd.grad(image, probe, grad_outputs=y, retain_graph=True)
        return back.flatten()

    steps = min(iterations, v.numel())
    basis = v.new_zeros((steps, v.numel()))  # (steps, n) orthonormal Lanczos vectors
    basis[0] = v.flatten() / v.norm()
    alphas: list[Tensor] = []  # the diagonal of the tridiagonal matrix T
    betas: list[Tensor] = []  # its off-diagonal
    scale = 0.0  # the largest |alpha| so far, for a relative breakdown test
    for j in range(steps):
        w = gram(basis[j])
        alphas.append(w @ basis[j])
        for _ in range(2):  # Gram-Schmidt twice: "twice is enough" (Parlett 1998)
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = w.norm()
        scale = max(scale, alphas[-1].abs().item())
        if j + 1 == steps or beta <= 1e-6 * scale:  # done, or an invariant subspace is found
            break
        betas.append(beta)
        basis[j + 1] = w / beta
    tridiagonal = torch.diag(torch.stack(alphas).double())
    if betas:
        off = torch.stack(betas).double()
        tridiagonal += torch.diag(off, 1) + torch.diag(off, -1)
    return torch.linalg.eigvalsh(tridiagonal).max().clamp_min(0.0).sqrt().item()


@torch.no_grad()
def operator_norms(
    module: nn.Module, input_shapes: dict[str, torch.Size], iterations: int = 50, seed: int = 0
) -> dict[str, float]:
    """Operator norm of every Linear/Conv layer of ``module`` named in ``input_shapes``.

    Linear: the exact largest singular value of its weight. Conv/ConvTranspose: Lanczos iteration
    (:func:`top_singular_value`, ``iterations`` steps, in float32) through :func:`conv_map` at the
    layer's per-sample input shape from :func:`recorded_input_shapes`, on a private
    ``torch.Generator`` seeded with ``seed``. Spectral-norm parametrizations give the normalized
    weight; call this in eval mode, so that reading it runs no power iteration of theirs.
    """
    norms: dict[str, float] = {}
    for name, layer in module.named_modules():
        if not isinstance(layer, WEIGHTED) or name not in input_shapes:
            continue  # not a linear layer, or not run by the forward
        weight = layer.weight.detach().float()
        if isinstance(layer, nn.Linear):
            norms[_layer_name(name, layer)] = torch.linalg.matrix_norm(weight, ord=2).item()
            continue
        generator = torch.Generator(device=weight.device).manual_seed(seed)
        shape = tuple(input_shapes[name])
        with torch.autocast(weight.device.type, enabled=False):  # float32, even inside AMP
            norm = top_singular_value(conv_map(layer, weight), shape, iterations, generator)
        norms[_layer_name(name, layer)] = norm
    return norms
