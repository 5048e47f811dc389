"""Optimizers of the two nets: checking a configured optimizer early, and the LR schedule.

The paper optimizers themselves are class attributes of the variants (``default_optimizer``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from gan_zoo.errors import ConfigValueError

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def check_optimizer(factory: OptimizerFactory, key: str) -> None:
    """Build ``factory`` once on a throwaway parameter, so torch's own argument checks (learning
    rate, betas, ...) refuse a bad value in one line when the model is built, not at ``fit``.

    >>> import functools
    >>> check_optimizer(functools.partial(torch.optim.Adam, lr=-1.0), "generator_optimizer")
    Traceback (most recent call last):
    ...
    gan_zoo.errors.ConfigValueError: generator_optimizer=... is invalid: expected arguments ...
    """
    try:
        factory([nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError, IndexError) as err:  # Adam reads betas[1] unchecked
        reason = " ".join(str(err).split()) or type(err).__name__
        raise ConfigValueError(
            key, _describe(factory), f"arguments its optimizer accepts ({reason})"
        ) from None


def _describe(factory: OptimizerFactory) -> str:
    func = getattr(factory, "func", factory)
    keywords = getattr(factory, "keywords", {}) or {}
    args = ", ".join(f"{k}={v!r}" for k, v in keywords.items())
    return f"{getattr(func, '__qualname__', repr(func))}({args})"


def linear_lr_decay(
    optimizers: Sequence[torch.optim.Optimizer], total_steps: int
) -> list[torch.optim.lr_scheduler.LambdaLR]:
    """One scheduler per optimizer, taking its learning rate linearly to 0 over ``total_steps``.

    The loop steps them once per generator step, so ``total_steps`` counts generator steps, as in
    the CIFAR-10 schedules of Gulrajani et al. 2017 (WGAN-GP) and Miyato et al. 2018 (SN-GAN).
    """

    def linear(step: int) -> float:
        return max(0.0, 1.0 - step / total_steps)

    return [torch.optim.lr_scheduler.LambdaLR(opt, linear) for opt in optimizers]


def step_schedulers(schedulers: Any) -> None:
    """Step what ``LightningModule.lr_schedulers()`` returned: None, one scheduler or a list.

    Manual optimization leaves scheduling to the module; the loop calls this once per generator
    step, the unit :func:`linear_lr_decay` counts in.
    """
    for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
        if scheduler is not None:
            scheduler.step()
