"""Adaptive discriminator augmentation: Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data", Sec. 3, with the controller of the released ``training_loop.py``.

The overfitting heuristic ``r_t = E[sign(D_train)]`` (their Eq. 1, right) is the mean sign of
D's raw outputs on the (augmented) real training images seen since the last adjustment. Every
``interval`` discriminator minibatches (paper: 4), ``p`` moves by
``sign(r_t - target) * N / (kimg * 1000)``, where ``N`` is the number of real images those
minibatches held (all ranks together) and ``kimg = 500`` lets ``p`` go from 0 to 1 in 500k
images; ``target = 0.6``. ``p`` is clamped to ``[0, 1]`` (the released code clamps at 0 only;
above 1 every op is already always applied, so the excess would only delay the way down).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from gan_zoo.augment.pipe import AugmentPipe
from gan_zoo.errors import check

Reduce = Callable[[Tensor], Any]


class ADA(nn.Module):
    """The ADA pipeline with its probability ``p`` and the adaptive controller.

    ``forward(x)`` augments a ``(B, C, H, W)`` batch with the current ``p`` (see
    :class:`gan_zoo.augment.AugmentPipe`); apply it to reals and fakes, in D's and G's steps.
    ``observe(real_scores)`` feeds the controller once per discriminator step.

    State, all tensors in ``state_dict()`` so a checkpoint resumes the controller exactly:
    ``p`` (0-dim float32 buffer), ``stats`` (``(2,)`` float32: the sum of ``sign(D(real))`` and
    the number of scores since the last adjustment) and ``minibatches`` (0-dim int64: observed
    since the last adjustment). ``rt`` (not saved) holds the last ``r_t`` for logging, NaN until
    the first adjustment. Keep the module in float32: a half-precision cast of the whole model
    (Lightning's ``bf16-true``/``16-true``, not the ``-mixed`` ones) would round ``p`` to 8 or
    11 bits, and steps of ``256 / 500k`` would no longer move it.

    Args:
        p: the initial probability (released code: 0).
        target: the ``r_t`` that ``p`` steers towards (paper: 0.6); ``None`` keeps ``p`` fixed
            (``observe`` still records ``r_t``).
        interval: discriminator minibatches between adjustments (paper: 4).
        kimg: thousands of real images for ``p`` to go from 0 to 1 (paper: 500).
        pipe: an :class:`AugmentPipe`, or the ``ops`` string for one (default ``bgc``).

    >>> ada = ADA(p=0.0)
    >>> for _ in range(4):  # D is sure of every real image: r_t = 1 > 0.6
    ...     ada.observe(torch.ones(64))
    >>> round(ada.p.item() * 500_000)  # up by 4 * 64 images / 500k
    256
    """

    p: Tensor
    stats: Tensor
    minibatches: Tensor
    rt: Tensor

    def __init__(
        self,
        p: float = 0.0,
        target: float | None = 0.6,
        interval: int = 4,
        kimg: float = 500.0,
        pipe: AugmentPipe | str = "bgc",
    ) -> None:
        super().__init__()
        check(0.0 <= p <= 1.0, "p", p, "a number in [0, 1]")
        ok = target is None or -1.0 <= target <= 1.0
        check(ok, "target", target, "a number in [-1, 1] (paper: 0.6), or null for a fixed p")
        ok = isinstance(interval, int) and not isinstance(interval, bool) and interval >= 1
        check(ok, "interval", interval, "an integer >= 1")
        check(kimg > 0, "kimg", kimg, "a number > 0")
        self.pipe = pipe if isinstance(pipe, AugmentPipe) else AugmentPipe(pipe)
        self.target, self.interval, self.kimg = target, interval, float(kimg)
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("stats", torch.zeros(2))
        # The count lives twice: a host int decides when to update (reading a CUDA buffer every
        # step would sync), and the buffer mirrors it for checkpoints (restored by the hook).
        self.register_buffer("minibatches", torch.tensor(0))
        self._minibatches = 0
        self.register_load_state_dict_post_hook(_read_minibatches)
        # The last r_t, for logging; not part of the training state.
        self.register_buffer("rt", torch.tensor(float("nan")), persistent=False)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``: every op applied per sample with probability ``p``."""
        return self.pipe(x, self.p, generator)

    @torch.no_grad()
    def accumulate(self, real_scores: Tensor, reduce: Reduce | None = None) -> None:
        """Add the signs of D's raw outputs on a real minibatch, ``(B,)`` (or any shape).

        ``reduce`` sums a ``(2,)`` tensor across ranks in place, e.g.
        ``torch.distributed.all_reduce``; it is applied to this minibatch's contribution before
        it is added, so ``stats`` is identical on every rank (and in rank 0's checkpoint).
        Every rank must call it at the same step. No host synchronization.
        """
        scores = real_scores.detach().float().flatten()
        count = torch.full((), scores.numel(), dtype=torch.float32, device=scores.device)
        batch = torch.stack([scores.sign().sum(), count]).to(self.stats.device)
        if reduce is not None:
            reduce(batch)
        self.stats += batch

    @torch.no_grad()
    def update(self) -> None:
        """Set ``rt`` from the accumulated statistics and, unless ``target`` is None, step ``p``.

        ``p += sign(r_t - target) * N / (kimg * 1000)`` with ``N`` the accumulated count, then
        clamped to ``[0, 1]``; then the statistics restart. Nothing happens with ``N = 0``.
        No host synchronization.
        """
        total, count = self.stats[0], self.stats[1]
        seen = count > 0
        rt = total / count.clamp_min(1.0)
        self.rt.copy_(torch.where(seen, rt, self.rt))
        if self.target is not None:
            step = torch.sign(rt - self.target) * count / (self.kimg * 1000.0)
            self.p.copy_(torch.where(seen, (self.p + step).clamp(0.0, 1.0), self.p))
        self.stats.zero_()
        self._minibatches = 0
        self.minibatches.zero_()

    def observe(self, real_scores: Tensor, reduce: Reduce | None = None) -> None:
        """Call once per discriminator step with ``(B,)`` raw scores ``D(augment(real))``.

        Accumulates them (see :meth:`accumulate` for ``reduce``) and, every ``interval``-th
        call, runs :meth:`update`.
        """
        self.accumulate(real_scores, reduce)
        self._minibatches += 1
        if self._minibatches >= self.interval:
            self.update()
        else:
            self.minibatches.fill_(self._minibatches)  # a device write, no sync

    def extra_repr(self) -> str:
        return f"target={self.target}, interval={self.interval}, kimg={self.kimg}"


def _read_minibatches(module: nn.Module, incompatible_keys: Any) -> None:
    """After ``load_state_dict``: the host count from the restored buffer (one read, at load)."""
    assert isinstance(module, ADA)
    module._minibatches = int(module.minibatches.item())
