"""Data order that survives a restart: a seeded sampler and a loader that remember their position.

Lightning 2.x restores its loop counters from a checkpoint but does not fast-forward a plain
``DataLoader``: a run resumed mid-epoch would start the epoch's permutation from the top and
see different batches than the uninterrupted run. Lightning does call ``state_dict`` /
``load_state_dict`` on a train loader that has them (``CombinedLoader._state_dicts``, stored
under ``loops.fit_loop.state_dict.combined_loader``), and restores it just before it calls
``iter()`` on the loader (``FitLoop.setup_data``). :class:`ResumableDataLoader` uses that hook.

Its position is the number of batches it handed out in the current epoch. When the loader's
length is known, Lightning's fetcher does not prefetch, so at any checkpoint that count equals
Lightning's own ``batch_progress.current.processed``; worker prefetching happens below the
loader's iterator and does not count.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` that can start its permutation part-way through an epoch.

    The permutation of epoch ``e`` is ``randperm(N, seed + e)`` split over ``num_replicas``
    ranks, exactly as in ``DistributedSampler``. Subclassing it means Lightning keeps this
    sampler under DDP instead of injecting its own, and calls :meth:`set_epoch` every epoch.

    Args:
        dataset: the sized dataset to index.
        num_replicas: number of DDP processes (1 without DDP).
        rank: this process's rank.
        seed: shuffling seed, the same on every rank.

    >>> sampler = ResumableSampler(range(6), num_replicas=1, rank=0, seed=0)
    >>> full = list(sampler)
    >>> sampler.load_state_dict({"epoch": 0, "start": 4})
    >>> list(sampler) == full[4:], len(sampler)
    (True, 6)
    """

    def __init__(self, dataset: Dataset[Any], num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self._resume: tuple[int, int] | None = None  # (epoch, samples already seen) to skip

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        if self._resume is not None and self._resume[0] == self.epoch:
            indices = indices[self._resume[1] :]
        self._resume = None
        return iter(indices)

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s permutation; a pending offset for another epoch lapses."""
        if self._resume is not None and self._resume[0] != epoch:
            self._resume = None
        super().set_epoch(epoch)

    def pending_start(self) -> int:
        """Samples of the current epoch the next iteration skips (0 unless resuming in it)."""
        if self._resume is not None and self._resume[0] == self.epoch:
            return self._resume[1]
        return 0

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Start the next iteration at sample ``state["start"]`` of epoch ``state["epoch"]``."""
        self.epoch = int(state["epoch"])
        self._resume = (self.epoch, int(state["start"]))


class ResumableDataLoader(DataLoader):
    """``DataLoader`` over a :class:`ResumableSampler` whose position is saved in checkpoints.

    ``state_dict()`` is ``{"epoch", "batches"}``: the sampler's epoch and the batches handed out
    in it. A finished epoch is stored as the start of the next one. The loader's own generator
    (used only to seed worker processes) is reseeded from ``(seed, epoch)`` at every ``iter()``,
    so it never draws from torch's global RNG, whose state the checkpoint restores separately.
    """

    sampler: ResumableSampler

    def __init__(self, dataset: Dataset[Any], sampler: ResumableSampler, **kwargs: Any) -> None:
        super().__init__(dataset, sampler=sampler, generator=torch.Generator(), **kwargs)
        self._batches_out = 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # Eager (not a generator function), so the count is reset the moment Lightning calls iter().
        self.generator.manual_seed(self.sampler.seed * 1_000_003 + self.sampler.epoch)
        # Resumed mid-epoch, the batches skipped count as handed out: the position stays the
        # uninterrupted run's, also for a second checkpoint in the same epoch.
        self._batches_out = self.sampler.pending_start() // (self.batch_size or 1)
        return self._counted(super().__iter__())

    def _counted(self, batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            self._batches_out += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """The position: ``{"epoch": e, "batches": batches of epoch e already handed out}``."""
        epoch, batches = self.sampler.epoch, self._batches_out
        if batches >= len(self):
            epoch, batches = epoch + 1, 0
        return {"epoch": epoch, "batches": batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a :meth:`state_dict`: the next ``iter()`` skips the batches seen."""
        batch_size = self.batch_size or 1
        self.sampler.load_state_dict(
            {"epoch": state["epoch"], "start": state["batches"] * batch_size}
        )
