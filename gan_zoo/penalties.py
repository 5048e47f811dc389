"""Regularizers of the critic, and the input gradients they are built from, as pure functions.

A ``critic`` is any callable mapping ``(B, *S)`` samples to raw scores: a discriminator net, or
the model's ``critic`` (labels bound for a conditional one). When it scores packs of ``m``
samples concatenated (PacGAN, Lin et al. 2018), it returns ``(B / m,)`` scores and carries
``pack = m``; gradients are then taken per pack, the unit the critic sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

Critic = Callable[[Tensor], Tensor]


def pack_of(critic: Critic) -> int:
    """How many samples the critic scores together (its ``pack``; 1 for a plain critic)."""
    return int(getattr(critic, "pack", 1))


def interpolate(real: Tensor, fake: Tensor, epsilon: Tensor | None = None, pack: int = 1) -> Tensor:
    """``eps * real + (1 - eps) * fake``, one ``eps ~ U[0, 1]`` per sample or per pack of
    ``pack`` samples (Gulrajani et al. 2017, Algorithm 1). ``real``, ``fake`` and the result are
    ``(B, *S)``; ``epsilon``, if given, is ``(B / pack,)``."""
    groups = real.shape[0] // pack
    if epsilon is None:
        epsilon = torch.rand(groups, device=real.device, dtype=real.dtype)
    eps = epsilon.repeat_interleave(pack).reshape(-1, *([1] * (real.dim() - 1)))  # (B, 1, ...)
    return eps * real + (1 - eps) * fake


def input_gradients(
    critic: Critic, x: Tensor, grad_scale: Tensor | None = None, create_graph: bool = False
) -> Tensor:
    """``grad_x`` of the summed scores, grouped per pack: ``(B, *S)`` to ``(B / pack, -1)``.

    Only the input gets a gradient, so no parameter ``.grad`` is touched. ``grad_scale`` is the
    fp16 loss scale, if any: following PyTorch's AMP gradient-penalty recipe the scores are
    scaled before ``autograd.grad`` (small gradients do not underflow in fp16) and the gradients
    unscaled after. With ``create_graph`` the result is differentiable w.r.t. the critic.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        scores = critic(x).sum()
        if grad_scale is not None:
            scores = scores * grad_scale
        (grads,) = torch.autograd.grad(scores, x, create_graph=create_graph)
    if grad_scale is not None:
        grads = grads / grad_scale
    return grads.float().reshape(x.shape[0] // pack_of(critic), -1)


def input_gradient_norms(critic: Critic, x: Tensor) -> Tensor:
    """``||grad_x D(x)||_2`` per sample (per pack): ``(B, *S)`` points to ``(B / pack,)``."""
    return input_gradients(critic, x).norm(2, dim=1)


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Run ``module`` in eval mode and restore each submodule's own mode afterwards.

    Measuring in eval mode changes nothing in training: BatchNorm keeps its running statistics
    (and SyncBatchNorm issues no all-reduce), spectral norm takes no extra power iteration.
    """
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.train(training)


def lipschitz_estimate(critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
    """The largest ``||grad_x D||`` over ``(B, *S)`` real and fake points and points between.

    A lower bound on the critic's Lipschitz constant ``K`` where the data are: the dual
    ``E[D(x)] - E[D(G(z))]`` of a K-Lipschitz critic bounds ``K * W1`` from below (Arjovsky et
    al. 2017, Eq. 3), so dividing by this ``K`` puts it on W1's own scale. The interpolation
    weights are a fixed grid, not random draws, so measuring never moves the training RNG.
    """
    pack = pack_of(critic)
    rows = min(real.shape[0], fake.shape[0]) // pack * pack
    real, fake = real[:rows], fake[:rows]
    grid = (torch.arange(rows // pack, device=real.device, dtype=real.dtype) + 0.5) / (rows // pack)
    points = (real, fake, interpolate(real, fake, grid, pack))
    return torch.stack([input_gradient_norms(critic, x).max() for x in points]).max()


def gradient_penalty(
    critic: Critic,
    real: Tensor,
    fake: Tensor,
    epsilon: Tensor | None = None,
    grad_scale: Tensor | None = None,
    one_sided: bool = False,
) -> Tensor:
    """Two-sided gradient penalty of Gulrajani et al. 2017, Eq. 3 (unweighted).

    ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` with ``x_hat = eps * x + (1 - eps) * x_tilde`` and
    ``eps ~ U[0, 1]`` drawn once per sample (per pack). The norm runs over every non-batch
    dimension, so it is the same formula for (B, D) points and (B, C, H, W) images.

    Args:
        critic: maps ``(B, *S)`` to ``(B / pack,)`` scores.
        real: ``(B, *S)`` data batch.
        fake: ``(B, *S)`` generated batch (detached from the generator).
        epsilon: optional ``(B / pack,)`` interpolation weights; drawn from U[0, 1] if omitted.
        grad_scale: the fp16 loss scale, if any (see :func:`input_gradients`).
        one_sided: penalize only norms above 1, ``E[max(0, ||grad|| - 1)^2]`` (the Lipschitz
            penalty of Petzka et al. 2018, Eq. 8, "WGAN-LP").

    Returns:
        Scalar tensor, differentiable w.r.t. the critic's parameters.
    """
    x_hat = interpolate(real.detach(), fake.detach(), epsilon, pack_of(critic))
    norms = input_gradients(critic, x_hat, grad_scale, create_graph=True).norm(2, dim=1)
    excess = (norms - 1.0).clamp(min=0.0) if one_sided else norms - 1.0
    return (excess**2).mean()


def zero_centered_penalty(critic: Critic, x: Tensor, grad_scale: Tensor | None = None) -> Tensor:
    """``E[||grad_x D(x)||^2]`` on ``(B, *S)`` samples (unweighted).

    On real data it is R1, on generated data R2, of Mescheder et al. 2018 ("Which Training
    Methods for GANs Actually Converge?", Eq. 9 and 10: ``R(psi) = gamma / 2 * E[||grad D||^2]``,
    the ``gamma / 2`` applied by the caller). Zero-centered: it pulls the critic's gradient to
    zero on the data, which makes the GAN's equilibrium locally convergent (their Theorem 4.1).
    """
    return input_gradients(critic, x, grad_scale, create_graph=True).square().sum(dim=1).mean()
