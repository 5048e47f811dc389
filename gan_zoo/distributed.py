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
training on the concatenated batch does. ``Trainer(strategy="gan_ddp")`` selects it; ``train.py``
picks it for every multi-device run, and the model refuses Lightning's other parallel strategies,
under which the loop would not sync.

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

import atexit
from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy, ParallelStrategy, Strategy, StrategyRegistry
from torch import Tensor, nn

from gan_zoo.compat import NormBase, flatten_dense_tensors, unflatten_dense_tensors
from gan_zoo.errors import ConfigValueError


class GANDDPStrategy(DDPStrategy):
    """Lightning's DDP without the ``DistributedDataParallel`` wrapper (see module docstring).

    Registered in Lightning's ``StrategyRegistry`` as ``gan_ddp`` (and ``gan_ddp_fork`` for
    notebooks) when gan_zoo is imported: ``Trainer(strategy="gan_ddp", devices=4)``. Modules are
    synchronised from rank 0 once at the start; afterwards the GAN loop keeps them identical with
    :func:`all_reduce_`.
    """

    def configure_ddp(self) -> None:
        assert self.model is not None
        broadcast_from_rank0(self.model)  # identical start on every rank (params and buffers)

    def setup_distributed(self) -> None:
        super().setup_distributed()
        # Lightning registers this only for NCCL; gloo needs it as much (see close_process_group).
        atexit.register(close_process_group)


def close_process_group() -> None:
    """Destroy the default process group, if any, while the interpreter is still whole.

    A gloo group left to interpreter shutdown can abort the process ("terminate called without an
    active exception", SIGABRT): its worker threads still hold work objects whose tensors need
    the GIL (pytorch PR 179291). Lightning destroys the group at exit only for NCCL.
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


STRATEGY_NAME = "gan_ddp"
# Lightning's names for its own DDP, and the gan_zoo strategy that replaces each.
GAN_EQUIVALENT = {"ddp": STRATEGY_NAME, "ddp_fork": f"{STRATEGY_NAME}_fork"}


def register_strategies() -> None:
    """Add ``gan_ddp`` and ``gan_ddp_fork`` to Lightning's ``StrategyRegistry`` (idempotent)."""
    for name, start_method in ((STRATEGY_NAME, "popen"), (f"{STRATEGY_NAME}_fork", "fork")):
        if name not in StrategyRegistry:
            StrategyRegistry.register(
                name,
                GANDDPStrategy,
                description=f"gan_zoo's data parallelism for the n_critic loop ({start_method})",
                start_method=start_method,
            )


def check_strategy(strategy: Strategy) -> None:
    """Refuse parallel strategies other than :class:`GANDDPStrategy`, naming the fix.

    Lightning's own DDP (what ``strategy="auto"`` picks for several devices), FSDP, DeepSpeed and
    XLA wrap or shard the module: the loop's all-reduce would be skipped (ranks drift apart) or
    the critic step would crash. Single-device strategies are fine.
    """
    if isinstance(strategy, GANDDPStrategy) or not isinstance(strategy, ParallelStrategy):
        return
    name = type(strategy).__name__
    raise ConfigValueError(
        "strategy",
        name,
        f"'{STRATEGY_NAME}' for several devices or nodes, e.g. Trainer(strategy='{STRATEGY_NAME}',"
        f" devices=2), registered by `import gan_zoo`: Lightning's {name} wraps or shards the "
        "module, which the n_critic loop does not support",
    )


def broadcast_from_rank0(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (one flat broadcast per dtype)."""
    if world_size() == 1:
        return
    tensors = [t.data for t in [*module.parameters(), *module.buffers()]]
    # Sorted: set order of dtypes differs between processes, and so would the collectives.
    for dtype in sorted({t.dtype for t in tensors}, key=str):
        group = [t for t in tensors if t.dtype == dtype]
        flat = flatten_dense_tensors(group)
        dist.broadcast(flat, src=0)
        for tensor, synced in zip(group, unflatten_dense_tensors(flat, group)):
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
        if isinstance(layer, NormBase) and layer.track_running_stats:
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
    flat = flatten_dense_tensors(tensors)
    dist.all_reduce(flat)
    flat.div_(size)
    synced = unflatten_dense_tensors(flat, tensors)
    for tensor, average in zip(tensors, synced):
        tensor.copy_(average)
    if missing:  # one host read, only on ranks where some gradient is missing
        for i, had in zip(missing, present[missing].tolist()):
            if had > 0:
                params[i].grad = tensors[i]  # the zeros, now holding the average


def rank_seed_offset(rank: int) -> int:
    """Offset added to the torch seed on rank ``rank`` so ranks draw different noise."""
    return 1_000_003 * rank


def reseed_for_rank(rank: int) -> None:
    """Give each rank its own noise stream; rank 0 keeps the single-process stream."""
    if rank > 0:
        torch.manual_seed(torch.initial_seed() + rank_seed_offset(rank))


register_strategies()
