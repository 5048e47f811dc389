"""A buffer of past generator outputs for training the discriminator (Shrivastava et al. 2017)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gan_zoo.distributed import gather_from_ranks, global_rank
from gan_zoo.validation import Fraction, PositiveInt, validated


class ReplayBuffer:
    """Fixed-size pool of past fakes, mixed into the discriminator's fake batches.

    Shrivastava et al. 2017 ("Learning from Simulated and Unsupervised Images through
    Adversarial Training", Sec. 2.3): each discriminator mini-batch takes a fraction
    ``ratio`` of its fakes from the pool of earlier generator outputs, and the current fakes then
    replace random entries of the pool. This keeps the discriminator from forgetting regions
    the generator has left, which damps oscillation.

    The pool is a plain attribute, not a registered buffer, so ``model.to(device)`` does not move
    it; it follows the device and dtype of the fakes it is given instead (a pool restored from a
    checkpoint on the CPU moves to the GPU at the first :meth:`mix`).

    Args:
        replay_size: capacity in samples (``>= 1``).
        replay_ratio: fraction of each fake batch drawn from the pool, in ``[0, 1]``.

    >>> buf = ReplayBuffer(replay_size=4, replay_ratio=0.5)
    >>> mixed, _, n_old = buf.mix(torch.zeros(2, 3))  # the first call only fills the pool
    >>> mixed.shape, n_old, len(buf)
    (torch.Size([2, 3]), 0, 2)
    >>> buf.mix(torch.ones(2, 3))[2]  # then round(0.5 * 2) = 1 row comes from the pool
    1
    """

    @validated
    def __init__(self, replay_size: PositiveInt, replay_ratio: Fraction = 0.5) -> None:
        self.size, self.ratio = replay_size, float(replay_ratio)
        self.samples: Tensor | None = None  # (size, *S), on the device of the fakes
        self.labels: Tensor | None = None  # (size,) class labels of a conditional GAN's fakes
        self.count = 0

    def __len__(self) -> int:
        return self.count

    @torch.no_grad()
    def mix(self, fake: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor | None, int]:
        """Mix the ``(B, *S)`` current fakes with pooled ones; return
        ``(mixed, mixed_labels, n_old)``.

        ``mixed`` is ``(B, *S)``: its first ``n_old = min(round(ratio * B), len(self))`` rows
        come from the pool, the remaining ``B - n_old`` are ``fake[n_old:]``, the current
        generator's. A conditional GAN's ``(B,)`` class ``labels`` travel with their fakes (None
        for an unconditional one). Then the current batch is written into the pool (appended
        while it fills up, afterwards over random entries).
        """
        fake = fake.detach()
        self._follow(fake)
        batch = fake.shape[0]
        n_old = min(round(self.ratio * batch), self.count)
        mixed, mixed_labels = fake, labels
        if n_old > 0:
            assert self.samples is not None
            picked = torch.randint(self.count, (n_old,), device=fake.device)
            mixed = torch.cat([self.samples[picked], fake[n_old:]])
            if labels is not None and self.labels is not None:
                mixed_labels = torch.cat(
                    [self.labels[picked.to(self.labels.device)], labels[n_old:]]
                )
        self._store(fake, labels)
        return mixed, mixed_labels, n_old

    def _follow(self, fake: Tensor) -> None:
        """Move the pool to ``fake``'s device and dtype if it is elsewhere (e.g. just restored)."""
        samples = self.samples
        if samples is not None and (samples.device != fake.device or samples.dtype != fake.dtype):
            self.samples = samples.to(device=fake.device, dtype=fake.dtype)

    def _store(self, fake: Tensor, labels: Tensor | None) -> None:
        if self.samples is None:
            self.samples = fake.new_empty((self.size, *fake.shape[1:]))
        if labels is not None and self.labels is None:
            self.labels = labels.new_zeros((self.size,))
        free = min(self.size - self.count, fake.shape[0])
        self.samples[self.count : self.count + free] = fake[:free]
        if labels is not None and self.labels is not None:
            self.labels[self.count : self.count + free] = labels[:free]
        self.count += free
        rest = fake[free:]
        if len(rest):
            slots = torch.randperm(self.size, device=fake.device)[: len(rest)]
            self.samples[slots] = rest[: len(slots)]
            if labels is not None and self.labels is not None:
                self.labels[slots.to(self.labels.device)] = labels[free:][: len(slots)]

    def state_dict(self) -> dict[str, Any]:
        samples = None if self.samples is None else self.samples[: self.count].cpu()
        labels = None if self.labels is None else self.labels[: self.count].cpu()
        state = {"size": self.size, "ratio": self.ratio, "count": self.count, "samples": samples}
        return state | ({"labels": labels} if labels is not None else {})

    def state_dict_of_every_rank(self) -> list[dict[str, Any]]:
        """:meth:`state_dict` of every rank, in rank order: under DDP each rank pools its own
        fakes. A collective (every rank calls it while Lightning dumps a checkpoint)."""
        return gather_from_ranks(self.state_dict())

    def load_rank_state(
        self, saved: list[dict[str, Any]] | dict[str, Any], device: torch.device | None = None
    ) -> None:
        """Restore this rank's pool from :meth:`state_dict_of_every_rank`'s list (or one state).

        A run resumed on fewer ranks than it was saved from keeps the first pools; on more, the
        extra ranks start from rank 0's pool.
        """
        pools = saved if isinstance(saved, list) else [saved]
        rank = global_rank()
        self.load_state_dict(pools[rank] if rank < len(pools) else pools[0], device=device)

    def load_state_dict(self, state: dict[str, Any], device: torch.device | None = None) -> None:
        """Restore a saved pool; a pool saved with a larger ``size`` keeps its first ``size``.

        ``device`` is where to put it now; wherever it lands, the next :meth:`mix` moves it to
        the fakes' device and dtype.
        """
        samples = state["samples"]
        if samples is None:
            self.samples, self.count = None, 0
            return
        samples = samples[: self.size]
        self.count = int(samples.shape[0])
        self.samples = samples.new_empty((self.size, *samples.shape[1:])).to(device)
        self.samples[: self.count] = samples.to(device)
        labels = state.get("labels")
        self.labels = None
        if labels is not None:
            self.labels = labels.new_zeros((self.size,)).to(device)
            self.labels[: self.count] = labels[: self.size].to(device)
