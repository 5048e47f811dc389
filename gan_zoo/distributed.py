"""Data parallelism for the n_critic loop: one all-reduce per optimizer step, no DDP wrapper.

Lightning's DDP wraps the whole LightningModule in one ``DistributedDataParallel``. A critic
step then leaves the generator's parameters without gradients, which DDP rejects unless
``find_unused_parameters=True`` (a graph traversal on every backward; Lightning issues 20328,
20866). DDP's reducer also cannot follow ``torch.autograd.grad`` (the gradient penalty,
pytorch issue 63812) nor several forwards of one net before its backward (real, fake and
interpolated batches through D).

:class:`GANDDPStrategy` keeps everything else of Lightning's DDP (launchers, SLURM/torchrun
cluster environments, distributed samplers, checkpointing from rank 0) but does not wrap the
module. Instead the loop calls :func:`all_reduce_` after each backward: gradients are averaged
across ranks in one flat collective per optimizer step. Every rank therefore takes the same
optimizer step on the average gradient of the global batch, which is what single-process
training on the concatenated batch does. :func:`choose_strategy` picks it for every multi-device
run and refuses Lightning's other parallel strategies, under which the loop would not sync.

Buffers:

- BatchNorm normalizes with each rank's own batch statistics in ``forward``, as in plain DDP
  without SyncBatchNorm. Its running statistics (``running_mean``/``running_var``, also those
  of InstanceNorm with ``track_running_stats``) are averaged in the same all-reduce, so after a
  step they are the mean over ranks of each rank's own update: their update is linear in the
  batch statistics, so this equals updating with the average of the per-rank statistics.
- Other buffers (spectral-norm ``u``/``v``) are left alone: they are computed from weights that
  are equal on every rank, so they are equal by construction; averaging them would only add
  rounding drift. A buffer of a user module that differs per rank stays per rank.
- ``trainer.sync_batchnorm=true``: Lightning converts BatchNorm to ``torch.nn.SyncBatchNorm``
  (also under GANDDPStrategy), whose training-mode forward accepts only GPU (CUDA/XPU/HPU)
  inputs: on CPU with gloo it raises ``ValueError`` at the first forward (tested). Not tested on
  GPUs here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from lightning.fabric.utilities.device_parser import _select_auto_accelerator
from lightning.fabric.utilities.imports import _IS_INTERACTIVE
from lightning.pytorch.accelerators import (
    Accelerator,
    AcceleratorRegistry,
    CUDAAccelerator,
    MPSAccelerator,
)
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.strategies import DDPStrategy, ParallelStrategy, Strategy, StrategyRegistry
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor, nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
from torch.nn.modules.batchnorm import _NormBase

from gan_zoo.errors import check


class GANDDPStrategy(DDPStrategy):
    """Lightning's DDP without the ``DistributedDataParallel`` wrapper (see module docstring).

    Modules are synchronised from rank 0 once at the start; afterwards the GAN loop keeps
    them identical with :func:`all_reduce_`.
    """

    syncs_in_loop = True

    def configure_ddp(self) -> None:
        assert self.model is not None
        broadcast_from_rank0(self.model)  # identical start on every rank (params and buffers)


def choose_strategy(
    strategy: str | Strategy,
    accelerator: str | Accelerator = "auto",
    devices: int | str | list[int] = "auto",
    num_nodes: int = 1,
) -> str | Strategy:
    """The ``Trainer`` strategy for these arguments: :class:`GANDDPStrategy` for every DDP run.

    ``ddp`` always, and ``auto`` whenever ``num_nodes > 1`` or Lightning would use more than one
    device per node (:func:`local_device_count`), become a :class:`GANDDPStrategy`; single-device
    strategies pass through; other parallel strategies are refused (:func:`check_strategy`).

    >>> type(choose_strategy("auto", "cpu", "2")).__name__
    'GANDDPStrategy'
    >>> choose_strategy("auto", "cpu", 1)
    'auto'
    """
    check_strategy(strategy)
    if isinstance(strategy, Strategy):
        return strategy
    many = num_nodes > 1 or local_device_count(accelerator, devices) > 1
    return GANDDPStrategy() if strategy == "ddp" or many else strategy


def check_strategy(strategy: str | Strategy, key: str = "strategy") -> None:
    """Refuse parallel strategies other than :class:`GANDDPStrategy` (``auto``/``ddp`` map to it).

    Lightning's own DDP, FSDP, DeepSpeed and XLA strategies wrap or shard the module: the loop's
    all-reduce would be skipped (ranks drift apart) or the critic step would crash.
    """
    if isinstance(strategy, str) and strategy in ("auto", "ddp"):
        return
    if isinstance(strategy, Strategy):
        cls: type | None = type(strategy)
        value: Any = type(strategy).__name__
    else:
        known = strategy in StrategyRegistry.available_strategies()
        cls, value = (StrategyRegistry[strategy]["strategy"] if known else None), strategy
    single = [
        name
        for name in StrategyRegistry.available_strategies()
        if not issubclass(StrategyRegistry[name]["strategy"], ParallelStrategy)
    ]
    valid = cls is not None and (
        issubclass(cls, GANDDPStrategy) or not issubclass(cls, ParallelStrategy)
    )
    check(
        valid,
        key,
        value,
        "auto or ddp (both run gan_zoo's GANDDPStrategy on several devices), or a single-device "
        f"strategy ({', '.join(single)}); Lightning's other parallel strategies wrap the module, "
        "which the n_critic loop does not support",
    )


def local_device_count(accelerator: str | Accelerator, devices: int | str | list[int]) -> int:
    """Devices per node that ``Trainer(accelerator=..., devices=...)`` uses, by Lightning's parsers.

    ``"auto"`` and ``-1`` mean every visible device (one CPU process for ``"auto"`` on CPU, and
    one GPU in a notebook, as Lightning does); ``"0,1"``, ``[0, 1]``, ``"2"`` and ``2`` mean two.
    0 when Lightning will refuse the combination (it then raises its own error).
    """
    try:
        if isinstance(accelerator, Accelerator):
            acc = accelerator
        else:
            if accelerator == "auto":
                accelerator = _select_auto_accelerator()
            elif accelerator == "gpu":
                accelerator = "mps" if MPSAccelerator.is_available() else "cuda"
            acc = AcceleratorRegistry.get(accelerator)
        if devices == "auto":
            count = acc.auto_device_count()
            return min(count, 1) if _IS_INTERACTIVE and isinstance(acc, CUDAAccelerator) else count
        return len(acc.get_parallel_devices(acc.parse_devices(devices)))
    except (MisconfigurationException, TypeError, ValueError, KeyError, ImportError):
        return 0


def broadcast_from_rank0(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (one flat broadcast per dtype)."""
    if world_size() == 1:
        return
    tensors = [t.data for t in [*module.parameters(), *module.buffers()]]
    # Sorted: set order of dtypes differs between processes, and so would the collectives.
    for dtype in sorted({t.dtype for t in tensors}, key=str):
        group = [t for t in tensors if t.dtype == dtype]
        flat = _flatten_dense_tensors(group)
        dist.broadcast(flat, src=0)
        for tensor, synced in zip(group, _unflatten_dense_tensors(flat, group)):
            tensor.copy_(synced)


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def global_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def gather_from_ranks(value: Any) -> list[Any]:
    """``value`` of every rank, in rank order (just ``[value]`` without DDP).

    A collective: every rank must call it at the same point (e.g. while a checkpoint is dumped,
    which Lightning does on all ranks).
    """
    if world_size() == 1:
        return [value]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def running_statistics(module: nn.Module) -> list[Tensor]:
    """``running_mean`` and ``running_var`` of every BatchNorm (and tracking InstanceNorm)."""
    stats = []
    for layer in module.modules():
        if isinstance(layer, _NormBase) and layer.track_running_stats:
            stats += [t for t in (layer.running_mean, layer.running_var) if t is not None]
    return stats


def all_reduce_(module: nn.Module) -> None:
    """Average ``module``'s gradients and norm running statistics across ranks, in place.

    One flat all-reduce of the same layout on every rank; a no-op outside a multi-process run.
    Every parameter with ``requires_grad`` takes part: one a rank left without gradient (a
    data-dependent branch of a user's net) contributes zeros, so its average is the gradient of
    the global batch's mean loss, as in single-process training on the concatenated batch. It
    gets that average on every rank if any rank had a gradient, and stays ``None`` on every
    rank otherwise (as the single process's would), which needs a count of the ranks that had
    one: a host read, only on ranks where a gradient is missing. Other buffers are not touched
    (see the module docstring).
    """
    size = world_size()
    if size == 1:
        return
    params = [p for p in module.parameters() if p.requires_grad]
    missing = [i for i, p in enumerate(params) if p.grad is None]
    tensors = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
    if params:  # 1 per parameter with a gradient on this rank; summed, the ranks that had one
        present = torch.ones(len(params), device=params[0].device, dtype=tensors[0].dtype)
        for i in missing:
            present[i] = 0
        tensors.append(present)
    tensors += running_statistics(module)
    if not tensors:
        return
    flat = _flatten_dense_tensors(tensors)
    dist.all_reduce(flat)
    flat.div_(size)
    synced = _unflatten_dense_tensors(flat, tensors)
    for tensor, average in zip(tensors, synced):
        tensor.copy_(average)
    if missing:  # one host read, only on ranks where some gradient is missing
        for i, had in zip(missing, present[missing].tolist()):
            if had > 0:
                params[i].grad = tensors[i]  # the zeros, now holding the average


@contextmanager
def uncounted(opt: LightningOptimizer) -> Iterator[None]:
    """Step ``opt`` without advancing ``trainer.global_step``.

    In manual optimization Lightning counts every ``optimizer.step()`` as a global step
    (Lightning issue 17958), so with n_critic=5 ``max_steps`` would stop after N/6 generator
    steps. The counting lives in two callbacks Lightning injects into each optimizer for the
    duration of one training step; the discriminator's are silenced here.
    """
    before, after = opt._on_before_step, opt._on_after_step
    opt._on_before_step = opt._on_after_step = _do_nothing
    try:
        yield
    finally:
        opt._on_before_step, opt._on_after_step = before, after


def _do_nothing() -> None:
    return None


def rank_seed_offset(rank: int) -> int:
    """Offset added to the torch seed on rank ``rank`` so ranks draw different noise."""
    return 1_000_003 * rank


def reseed_for_rank(rank: int) -> None:
    """Give each rank its own noise stream; rank 0 keeps the single-process stream."""
    if rank > 0:
        torch.manual_seed(torch.initial_seed() + rank_seed_offset(rank))
