"""Worker processes: one configuration each, ticking its ``Clock`` after every generator step."""

from __future__ import annotations

import functools
import logging
import os
import traceback
import warnings
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import lightning.pytorch as pl
import torch

from bench.loop.clock import Clock, state_bytes
from bench.loop.jobs import (
    CRITIC_STEPS,
    Job,
    endless,
    gan_zoo_model,
    make_loader,
    reference_loop,
    trainer,
)
from bench.reference_loop import VARIANTS


class _Tick(pl.Callback):
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, outputs: Any, *_: Any) -> None:
        if "g_loss" in outputs:  # this batch ended with a generator step
            self.clock.tick()


# -------------------------------------------------------------------------------- workers
def run_gan_zoo(job: Job, clock: Clock, log: bool = True) -> None:
    """The real ``Trainer.fit``; ``inner``: host time inside ``training_step``.

    ``log=False`` turns ``self.log``/``self.log_dict`` into no-ops, to measure their cost.
    """
    model = gan_zoo_model(job.variant, job.width, job.seed)
    if not log:
        model.log = model.log_dict = lambda *args, **kwargs: None  # type: ignore[method-assign,assignment]
    step = model.training_step

    def timed_training_step(*args: Any, **kwargs: Any) -> Any:
        start = clock.now()
        try:
            return step(*args, **kwargs)
        finally:
            clock.add_inner(start)

    model.training_step = timed_training_step  # type: ignore[method-assign]
    clock.state = lambda: state_bytes([model.generator, model.discriminator], fit.optimizers)
    fit = trainer(job, clock.total_steps, [_Tick(clock)])
    fit.fit(model, make_loader(job.device, job.seed))


def run_reference(job: Job, clock: Clock) -> None:
    device = torch.device(job.device)
    loop = reference_loop(VARIANTS[job.variant], device, job.width, job.seed)
    nets, opts = [loop.generator, loop.discriminator], [loop.d_opt, loop.g_opt]
    clock.state = lambda: state_bytes(nets, opts)
    batches = endless(make_loader(job.device, job.seed), device, clock)  # inner: data time
    for _ in range(clock.total_steps):
        loop.train_cycle(batches)
        clock.tick()


def run_critic(job: Job, clock: Clock) -> None:
    """Critic steps only (a tick each), on WGAN-GP's nets (critic without norm)."""
    device = torch.device(job.device)
    loop = reference_loop(CRITIC_STEPS[job.variant], device, job.width, job.seed)
    clock.state = lambda: state_bytes([loop.generator, loop.discriminator], [loop.d_opt])
    batches = endless(make_loader(job.device, job.seed), device, clock)
    for _ in range(clock.total_steps):
        loop.critic_step(next(batches))
        clock.tick()


RUNNERS: dict[str, Callable[[Job, Clock], None]] = {
    "gan_zoo": run_gan_zoo,
    "gan_zoo_without_log": functools.partial(run_gan_zoo, log=False),
    "reference": run_reference,
    "critic": run_critic,
}


def quiet() -> None:
    """Lightning's info lines and warnings (no logger, few batches) are noise here."""
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def worker(conn: Connection, job: Job) -> None:
    quiet()
    if job.threads:
        torch.set_num_threads(job.threads)
        os.environ["OMP_NUM_THREADS"] = str(job.threads)  # Lightning's DDP keeps it then
    if job.world > 1:  # as torchrun would: Lightning sees these and launches nothing itself
        rank = {"LOCAL_RANK": str(job.rank), "RANK": str(job.rank), "NODE_RANK": "0"}
        os.environ.update(rank, WORLD_SIZE=str(job.world), MASTER_ADDR="127.0.0.1")
        os.environ["MASTER_PORT"] = str(job.port)
    try:
        RUNNERS[job.impl](job, Clock(conn, job))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        raise
