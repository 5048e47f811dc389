"""The few collectives FID and IS need, written so that no rank can wait on a collective alone.

Every function here is a collective: all ranks call it, in the same order, or none does. Local
work that can fail runs first and ends in :func:`raise_if_any_failed`, which every rank reaches
whether or not its own part failed, so one rank's error becomes the same error everywhere
instead of a hang. Without an initialized process group each function is the 1-process identity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from gan_zoo.metrics.functional import FeatureStatistics

T = TypeVar("T")


class FidelityError(RuntimeError):
    """Computing FID/IS failed on this rank or another one; raised on every rank alike."""


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _device() -> torch.device:
    # NCCL only moves CUDA tensors; gloo (CPU DDP) only CPU ones.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_sum(tensor: Tensor) -> Tensor:
    """Sum of ``tensor`` over ranks (a new tensor on ``tensor``'s device)."""
    if rank_and_world()[1] == 1:
        return tensor.clone()
    total = tensor.to(_device()).clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.to(tensor.device)


def all_sum_statistics(stats: FeatureStatistics) -> FeatureStatistics:
    """Feature statistics summed over ranks, on the CPU (sums and count: exact merging)."""
    count = all_sum(torch.tensor([float(stats.count)], dtype=torch.float64))
    return FeatureStatistics(
        all_sum(stats.feature_sum).cpu(), all_sum(stats.outer_sum).cpu(), int(count.item())
    )


def all_cat(rows: Tensor) -> Tensor:
    """Concatenate ``(n_r, K)`` from every rank in rank order; ``n_r`` may differ, even be 0."""
    if rank_and_world()[1] == 1:
        return rows
    device, world = _device(), rank_and_world()[1]
    count = torch.tensor([rows.shape[0]], device=device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    longest = int(max(c.item() for c in counts))
    padded = torch.zeros(longest, *rows.shape[1:], dtype=rows.dtype, device=device)
    padded[: rows.shape[0]] = rows.to(device)
    gathered = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded)
    return torch.cat([g[: int(c.item())] for g, c in zip(gathered, counts)]).to(rows.device)


def all_agree(flag: bool) -> bool:
    """True on every rank if ``flag`` is true on every rank."""
    if rank_and_world()[1] == 1:
        return flag
    value = torch.tensor([int(flag)], device=_device())
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def raise_if_any_failed(error: BaseException | None) -> None:
    """Collective: raise :class:`FidelityError` on every rank if ``error`` is set on any."""
    if all_agree(error is None):
        return
    if error is None:
        raise FidelityError("another rank failed while computing FID/IS (see its error)")
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    raise FidelityError(reason) from error


def run_everywhere(work: Callable[[], T]) -> T:
    """Run rank-local ``work``; if it raised on any rank, raise :class:`FidelityError` on all."""
    try:
        result, error = work(), None
    except Exception as err:  # any failure must reach the agreement below, not skip it
        result, error = None, err
    raise_if_any_failed(error)
    return result  # type: ignore[return-value]


def shard(n: int, rank: int, world: int) -> range:
    """Rank ``rank``'s contiguous block of ``range(n)``; blocks in rank order make ``range(n)``.

    >>> [list(shard(5, r, 2)) for r in range(2)]
    [[0, 1, 2], [3, 4]]
    """
    return range(_start(n, rank, world), _start(n, rank + 1, world))


def shard_batches(n: int, batch_size: int, rank: int, world: int) -> list[range]:
    """Rank ``rank``'s :func:`shard` of ``range(n)``, cut into batches of at most ``batch_size``.

    Shares are split by count, not in whole batches, so no rank idles while another works (128
    samples at batch 64 on 4 ranks: 32 each, not 64, 64, 0, 0).

    >>> [[list(b) for b in shard_batches(5, 2, r, 2)] for r in range(2)]
    [[[0, 1], [2]], [[3, 4]]]
    """
    share = shard(n, rank, world)
    starts = range(share.start, share.stop, batch_size)
    return [range(start, min(start + batch_size, share.stop)) for start in starts]


def _start(n: int, rank: int, world: int) -> int:
    base, extra = divmod(n, world)
    return rank * base + min(rank, extra)
