"""Regularizers of the critic as pure functions."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def gradient_penalty(
    discriminator: nn.Module,
    real: Tensor,
    fake: Tensor,
    epsilon: Tensor | None = None,
    grad_scale: Tensor | None = None,
    one_sided: bool = False,
) -> Tensor:
    """Two-sided gradient penalty of Gulrajani et al. 2017, Eq. 3 (unweighted).

    ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` with ``x_hat = eps * x + (1 - eps) * x_tilde`` and
    ``eps ~ U[0, 1]`` drawn once per sample. The norm runs over every non-batch dimension, so
    it is the same formula for (B, D) points and (B, C, H, W) images of any channel count.

    Args:
        discriminator: the critic; maps ``(B, *S)`` to ``(B,)``.
        real: ``(B, *S)`` data batch.
        fake: ``(B, *S)`` generated batch (detached from the generator).
        epsilon: optional ``(B,)`` interpolation weights; drawn from U[0, 1] when omitted.
        grad_scale: the fp16 loss scale, if any. Following PyTorch's AMP gradient-penalty
            recipe, the scores are scaled before ``autograd.grad`` (so small gradients do not
            underflow in fp16) and the gradients unscaled before the norm.
        one_sided: penalize only norms above 1, ``E[max(0, ||grad|| - 1)^2]`` (the Lipschitz
            penalty of Petzka et al. 2018, Eq. 8, "WGAN-LP").

    Returns:
        Scalar tensor, differentiable w.r.t. the critic's parameters (``create_graph=True``).
    """
    batch = real.shape[0]
    if epsilon is None:
        epsilon = torch.rand(batch, device=real.device, dtype=real.dtype)
    eps = epsilon.reshape(batch, *([1] * (real.dim() - 1)))  # (B, 1, ..., 1)
    interpolated = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = discriminator(interpolated).sum()
    if grad_scale is not None:
        scores = scores * grad_scale
    (grads,) = torch.autograd.grad(scores, interpolated, create_graph=True)
    if grad_scale is not None:
        grads = grads / grad_scale
    norms = grads.float().flatten(start_dim=1).norm(2, dim=1)  # (B,)
    excess = (norms - 1.0).clamp(min=0.0) if one_sided else norms - 1.0
    return (excess**2).mean()
