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
across ranks, and so are floating-point buffers (BatchNorm running statistics), in one flat
collective per optimizer step. Every rank therefore takes the same optimizer step on the
average gradient of the global batch, which is what single-process training on the
concatenated batch does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.strategies import DDPStrategy
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


class GANDDPStrategy(DDPStrategy):
    """Lightning's DDP without the ``DistributedDataParallel`` wrapper (see module docstring).

    Modules are synchronised from rank 0 once at the start; afterwards the GAN loop keeps
    them identical with :func:`all_reduce_`.
    """

    syncs_in_loop = True

    def configure_ddp(self) -> None:
        assert self.model is not None
        broadcast_from_rank0(self.model)  # identical start on every rank (params and buffers)


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


def all_reduce_(module: nn.Module) -> None:
    """Average ``module``'s gradients and floating-point buffers across ranks, in place.

    One flat all-reduce; a no-op outside a multi-process run. Buffers are averaged rather than
    broadcast from rank 0 so BatchNorm running statistics reflect the global batch; buffers
    that are equal on every rank (spectral-norm vectors, computed from equal weights) stay equal.
    """
    size = world_size()
    if size == 1:
        return
    tensors = [p.grad for p in module.parameters() if p.grad is not None]
    tensors += [b for b in module.buffers() if b.is_floating_point()]
    if not tensors:
        return
    flat = _flatten_dense_tensors(tensors)
    dist.all_reduce(flat)
    flat.div_(size)
    for tensor, synced in zip(tensors, _unflatten_dense_tensors(flat, tensors)):
        tensor.copy_(synced)


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
