"""The discriminator as the loop and the penalties call it: labels bound, packs and heads known.

A discriminator net maps ``(B, *S)`` samples (and ``(B,)`` labels, when conditional) to
``(B / pack,)`` scores; one with an auxiliary classifier (AC-GAN, Odena et al. 2017) returns
``(scores, class_logits)``. :class:`Critic` gives the penalties a plain ``x -> scores`` callable
with the labels of the current batch bound and the ``pack`` it scores together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor


def scores_and_logits(output: Any) -> tuple[Tensor, Tensor | None]:
    """A discriminator's output split into ``(B',)`` scores and ``(B', K)`` class logits (or
    None): a net with an auxiliary classifier returns the pair, others the scores alone."""
    if isinstance(output, tuple):
        scores, logits = output
        return scores, logits
    return output, None


@dataclass
class Critic:
    """``x -> scores`` of ``discriminator`` with ``labels`` bound (None: unconditional).

    ``x`` is ``(B, *S)``, the scores ``(B / pack,)``; ``pack`` tells the penalties to take
    gradients per pack (:func:`gan_zoo.penalties.pack_of`).
    """

    discriminator: Callable[..., Any]
    labels: Tensor | None = None
    pack: int = 1

    def __call__(self, x: Tensor) -> Tensor:
        output = (
            self.discriminator(x) if self.labels is None else self.discriminator(x, self.labels)
        )
        return scores_and_logits(output)[0]
