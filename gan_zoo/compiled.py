"""``torch.compile`` for the generator and the critic (``model.compile=true``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torch.nn.utils import parametrize


def compile_nets(
    generator: nn.Module, discriminator: nn.Module
) -> dict[str, Callable[[Tensor], Tensor]]:
    """``torch.compile`` of G and, unless it carries parametrizations, of D; keyed by net name.

    Compiled spectral-norm parametrizations update ``u, v`` in place between the real and fake
    forwards and break the first graph's backward, so such critics stay eager. The gradient
    penalty always calls the eager critic: double backward through compiled graphs is unsafe.
    """
    compiled: dict[str, Callable[[Tensor], Tensor]] = {"generator": torch.compile(generator)}
    if not any(parametrize.is_parametrized(m) for m in discriminator.modules()):
        compiled["discriminator"] = torch.compile(discriminator)
    else:
        rank_zero_warn("compile: the spectral-norm critic runs eager; G is compiled.")
    return compiled
