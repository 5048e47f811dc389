"""How the training loop calls its nets: compiled or eager, conditional or not, augmented.

Kept apart from the loop (``gan_zoo.models.base``) so that the loop file holds the loop only.
``GAN`` inherits :class:`NetCalls`; a variant's penalty may use :meth:`NetCalls.grad_scale`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from gan_zoo.distributed import GANDDPStrategy, all_reduce_
from gan_zoo.models.critic import scores_and_logits
from gan_zoo.models.sampling import Sampling


class NetCalls(Sampling):
    """G and D as the loop runs them: through ``torch.compile`` when it compiled them.

    The host (``GAN``, a LightningModule) sets ``generator``, ``discriminator``, ``augment`` and
    ``_compiled`` (``{"generator": fn, "discriminator": fn}`` after compiling, else empty).
    """

    discriminator: nn.Module
    augment: nn.Module | None
    _compiled: dict[str, Callable[..., Any]]
    trainer: Any
    _trainer: Any

    def _discriminator_fn(self) -> Callable[..., Any]:
        return self._compiled.get("discriminator", self.discriminator)

    def _score(self, x: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """D's ``(B / pack,)`` scores of ``(B, *S)`` inputs, and its class logits (or None)."""
        out = self._discriminator_fn()(x) if labels is None else self._discriminator_fn()(x, labels)
        return scores_and_logits(out)

    def _run_generator(self, z: Tensor, labels: Tensor | None) -> Tensor:
        """``(B, latent_dim)`` noise (and ``(B,)`` labels) to ``(B, *S)`` samples, with grad."""
        return self._generate(self._compiled.get("generator", self.generator), z, labels)

    def _augmented(self, x: Tensor) -> Tensor:
        return x if self.augment is None else self.augment(x)

    def _sync(self, module: nn.Module) -> None:
        """Average ``module``'s gradients over ranks under gan_zoo's DDP strategy (a no-op
        elsewhere): the loop calls its nets directly, not through DDP's wrapper."""
        if isinstance(self.trainer.strategy, GANDDPStrategy):
            all_reduce_(module)

    def grad_scale(self, device: torch.device) -> Tensor | None:
        """The loss scale of fp16 mixed precision (a device tensor), or None when unscaled.

        A penalty built from ``torch.autograd.grad`` must scale its outputs and unscale the
        gradients (PyTorch AMP recipe, "Gradient penalty"), see ``penalties.input_gradients``.
        """
        scaler = getattr(self.trainer.precision_plugin, "scaler", None) if self._trainer else None
        if scaler is None or not scaler.is_enabled():
            return None
        return scaler.scale(torch.ones((), device=device))
