"""Drawing samples from a GAN: the user-facing half of :class:`gan_zoo.models.GAN`.

Kept apart from the training loop (``gan_zoo.models.base``) so that the loop file holds the loop
only. ``GAN`` inherits :class:`Sampling`; the loop's own fakes use ``_noise`` and ``_generate``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from gan_zoo.models import options
from gan_zoo.penalties import eval_mode


class Sampling:
    """``sample(n, labels=...)`` for a module with a generator, optionally its EMA copy.

    The host (``GAN``) sets ``generator``, ``generator_ema``, ``latent_dim`` and
    ``num_classes``; ``device`` is the LightningModule's.
    """

    generator: nn.Module
    generator_ema: nn.Module | None
    latent_dim: int
    num_classes: int

    def _sampling_device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def _noise(self, n: int, device: torch.device) -> Tensor:
        return torch.randn(n, self.latent_dim, device=device)  # (n, latent_dim)

    @staticmethod
    def _generate(generator: Callable[..., Tensor], z: Tensor, labels: Tensor | None) -> Tensor:
        """``(B, latent_dim)`` noise (and ``(B,)`` labels, None if unconditional) to samples."""
        return generator(z) if labels is None else generator(z, labels)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        batch_size: int = 256,
        z: Tensor | None = None,
        labels: Tensor | Sequence[int] | int | None = None,
    ) -> Tensor:
        """Draw ``n`` samples in data space (images in [-1, 1]) without grad, in batches.

        Uses the EMA generator when ``ema_decay > 0``, in eval mode (BatchNorm uses running
        statistics; its mode is restored afterwards). Returns a CPU tensor ``(n, *S)``; pass
        ``z`` ``(n, latent_dim)`` to choose the noise, and for a conditional GAN ``labels``
        (one class for all, or ``n`` of them; uniform over the classes when omitted).
        """
        generator = self.generator_ema if self.generator_ema is not None else self.generator
        device = self._sampling_device()
        classes = options.sample_labels(n, labels, self.num_classes, device)
        chunks = []
        with eval_mode(generator):
            for start in range(0, n, batch_size):
                count = min(batch_size, n - start)
                noise = self._noise(count, device) if z is None else z[start : start + count]
                part = None if classes is None else classes[start : start + count]
                chunks.append(self._generate(generator, noise.to(device), part).float().cpu())
        return torch.cat(chunks)
