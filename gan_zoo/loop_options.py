"""Options around the GAN loop that are not the loop itself (used by :class:`gan_zoo.models.GAN`).

- :func:`check_int`: the constructor's integer checks, with one-line errors.
- :func:`linear_lr_decay`: the linear learning-rate decay of the WGAN-GP and SN-GAN schedules.
- :func:`compile_nets`: ``torch.compile`` for G and D, keeping a spectral-norm critic eager.
- :func:`log_every_generator_steps` and :func:`logs_flushed`: Lightning's log interval counted
  in generator steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torch.nn.utils import parametrize

from gan_zoo.errors import check

# Where the user's `log_every_n_steps` (in generator steps) is kept on the Trainer, since
# `log_every_n_steps` itself is rewritten to count batches.
_LOG_EVERY = "_gan_zoo_log_every"


def check_int(value: Any, key: str, minimum: int) -> None:
    """Refuse anything but an ``int`` (not a ``bool``) ``>= minimum`` for config key ``key``."""
    valid = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    check(valid, key, value, f"an integer >= {minimum}")


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


def compile_nets(
    generator: nn.Module, discriminator: nn.Module
) -> dict[str, Callable[[Tensor], Tensor]]:
    """``torch.compile`` of G and, unless it carries parametrizations, of D; keyed by net name.

    Compiled spectral-norm parametrizations update ``u, v`` in place between the real and fake
    forwards and break the first graph's backward, so such critics stay eager.
    """
    compiled: dict[str, Callable[[Tensor], Tensor]] = {"generator": torch.compile(generator)}
    if not any(parametrize.is_parametrized(m) for m in discriminator.modules()):
        compiled["discriminator"] = torch.compile(discriminator)
    else:
        rank_zero_warn("compile: the spectral-norm critic runs eager; G is compiled.")
    return compiled


def log_every_generator_steps(trainer: pl.Trainer, n_critic: int) -> None:
    """Make ``trainer.log_every_n_steps`` count generator steps instead of batches.

    Lightning flushes logs every ``log_every_n_steps`` *batches*; a generator step spans
    ``n_critic`` batches. The user's value is kept on the trainer, so a second ``fit`` on the
    same trainer does not multiply it again.
    """
    # Lightning sets `log_every_n_steps` on the Trainer at run time; its type does not declare it.
    if getattr(trainer, _LOG_EVERY, None) is None:
        setattr(trainer, _LOG_EVERY, trainer.log_every_n_steps)  # type: ignore[attr-defined]
    trainer.log_every_n_steps = getattr(trainer, _LOG_EVERY) * n_critic  # type: ignore[attr-defined]


def logs_flushed(trainer: pl.Trainer | None, generator_step: int) -> bool:
    """Whether Lightning writes the logs of generator step ``generator_step`` (1-based).

    It flushes every ``log_every_n_steps`` generator steps (see :func:`log_every_generator_steps`)
    and on every step of ``fast_dev_run``; outside a fit (no interval recorded), always log.
    """
    every = getattr(trainer, _LOG_EVERY, None)
    if every is None or getattr(trainer, "fast_dev_run", False):
        return True
    return every > 0 and generator_step % every == 0
