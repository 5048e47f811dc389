"""Exponential moving average of generator weights."""

from __future__ import annotations

import copy

import torch
from torch import nn

from gan_zoo.compat import foreach_lerp_


def make_ema(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` to hold the average (same structure, no gradients)."""
    ema = copy.deepcopy(module)
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def ema_update(ema: nn.Module, module: nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * module`` for parameters; buffers are copied.

    The averaged generator of Karras et al. 2018 (Progressive GAN, Sec. A.1) and Yazici et al.
    2019 ("The Unusual Effectiveness of Averaging in GAN Training"). BatchNorm running
    statistics are copied, not averaged, since they describe the current generator's
    activations.
    """
    ema_params = list(ema.parameters())
    params = [p.detach() for p in module.parameters()]
    foreach_lerp_(ema_params, params, 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), module.buffers()):
        ema_buffer.copy_(buffer)
