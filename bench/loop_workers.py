"""The worker side of ``bench.bench_loop``: one process per side of a comparison, timing
chunks of gan_zoo's ``Trainer.fit`` or of ``bench.reference_loop`` when the parent says "go"
(``Clock``), and reporting seconds and peak memory back over a pipe."""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import resource
import tempfile
import time
import traceback
import warnings
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader

from bench.reference_loop import IMAGE_SHAPE, LATENT_DIM, VARIANTS, ReferenceLoop, build_nets
from gan_zoo.models import GAN, SNGAN, WGANGP, MinimaxGAN, NonSaturatingGAN, WGANClip

BATCH = 64  # real images per critic step
ROWS = BATCH * 65  # synthetic images: an epoch is 65 generator steps at n_critic 1, 13 at 5
GAN_ZOO: dict[str, type[GAN]] = {  # paper defaults, which the reference restates
    "minimax_gan": MinimaxGAN,
    "ns_gan": NonSaturatingGAN,
    "wgan_clip": WGANClip,
    "wgan_gp": WGANGP,
    "sngan": SNGAN,
}
SPECS = {**VARIANTS, "wgan_no_penalty": dataclasses.replace(VARIANTS["wgan_gp"], gp_weight=None)}


@dataclasses.dataclass(frozen=True)
class Job:
    """One worker: ``side`` is gan_zoo, reference, or critic (the reference's critic step)."""

    side: str
    variant: str  # a key of SPECS
    device: str
    warmup: int  # untimed ticks; a tick is a generator step (a critic step for "critic")
    chunks: int  # timed chunks
    chunk: int  # ticks per chunk
    width: int = 64
    threads: int = 1  # torch threads; 0 keeps torch's default
    world: int = 1  # > 1: a rank of gan_zoo under gan_ddp
    rank: int = 0
    port: int = 0


def loader(rows: int, device: str) -> DataLoader:
    """Shuffled ``(rows, 1, 28, 28)`` batches of one in-memory tensor in [-1, 1]."""
    gen = torch.Generator().manual_seed(0)
    data = torch.rand(ROWS, *IMAGE_SHAPE, generator=gen) * 2 - 1  # a Tensor is a Dataset
    pin = device == "cuda"
    return DataLoader(data, rows, shuffle=True, drop_last=True, generator=gen, pin_memory=pin)  # type: ignore[arg-type]


def live_tensor_bytes(skip: Tensor) -> int:
    """Bytes of the storages of every tensor Python holds, each once, but ``skip``'s."""
    storages = {
        t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
        for t in gc.get_objects()
        if isinstance(t, Tensor) and t.device.type == "cpu"
    }
    storages.pop(skip.untyped_storage().data_ptr(), None)
    return sum(storages.values())


class Clock(pl.Callback):
    """Ticked after every step. At chunk boundaries it sends the chunk's wall and CPU seconds
    and waits for its turn; after the last chunk it measures one more step's peak memory."""

    def __init__(self, conn: Connection, job: Job, data: Tensor) -> None:
        self.conn, self.job, self.data, self.count = conn, job, data, 0
        self.ticks = job.warmup + job.chunks * job.chunk + 1  # + the memory step
        self.started, self.live = (0.0, 0.0), 0
        self.profiler: profile | None = None

    def on_train_batch_end(self, *args: Any) -> None:  # gan_zoo: a batch is a generator step
        self.tick()

    def tick(self) -> None:
        self.count += 1
        if self.count == self.ticks:
            self.conn.send(("done", self.memory()))
        elif self.count >= self.job.warmup and (self.count - self.job.warmup) % self.job.chunk == 0:
            self.boundary()

    def boundary(self) -> None:
        """End of the warm-up or of a chunk: report, then wait for the next turn."""
        cuda = self.job.device == "cuda"
        if cuda:
            torch.cuda.synchronize()  # only here: syncing every step would serialize the host
        wall, cpu = time.perf_counter() - self.started[0], time.process_time() - self.started[1]
        if self.count == self.job.warmup:
            self.conn.send(("ready", None))
            if cuda:
                torch.cuda.reset_peak_memory_stats()
        else:
            self.conn.send(("chunk", (wall, cpu)))
        if self.count == self.ticks - 1:  # timing done: watch the allocator for one more step
            if not cuda:
                self.live = live_tensor_bytes(skip=self.data)
                profiler = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
                profiler.start()
                self.profiler = profiler
            return
        if self.conn.recv() != "go":
            raise RuntimeError("expected 'go'")
        self.started = (time.perf_counter(), time.process_time())

    def memory(self) -> dict[str, float]:
        """Peak tensor MiB (CUDA: ``max_memory_allocated``; CPU: the tensors alive before the
        step plus the peak of those allocated during it) and the process's peak RSS MiB."""
        peak = torch.cuda.max_memory_allocated() if self.job.device == "cuda" else self.live
        if self.profiler is not None:
            self.profiler.stop()
            with tempfile.TemporaryDirectory() as tmp:
                self.profiler.export_chrome_trace(f"{tmp}/trace.json")
                events = json.loads(Path(f"{tmp}/trace.json").read_text())["traceEvents"]
            # "Total Allocated": bytes of CPU tensors allocated since the profiler started and
            # not yet freed; frees of older tensors are not seen, so this is an upper bound.
            peak += max(
                [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"] + [0]
            )
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # Linux: KiB
        return {"peak_mib": peak / 2**20, "rss_mib": rss}


def run_gan_zoo(job: Job, conn: Connection) -> None:
    """The real ``Trainer.fit``, with what a user can turn off turned off."""
    model = GAN_ZOO[job.variant](*build_nets(SPECS[job.variant], job.width), latent_dim=LATENT_DIM)
    batches = loader(BATCH * model.n_critic, job.device)  # a batch: one generator step's reals
    clock = Clock(conn, job, batches.dataset)  # type: ignore[arg-type]
    trainer = pl.Trainer(
        accelerator=job.device,
        devices=job.world,
        strategy="gan_ddp" if job.world > 1 else "auto",
        max_steps=clock.ticks,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    trainer.fit(model, batches)


def run_reference(job: Job, conn: Connection) -> None:
    """``ReferenceLoop`` cycles, or (side "critic") its critic steps only."""
    device = torch.device(job.device)
    nets = [net.to(device) for net in build_nets(SPECS[job.variant], job.width)]
    loop, batches = ReferenceLoop(SPECS[job.variant], *nets), loader(BATCH, job.device)
    clock = Clock(conn, job, batches.dataset)  # type: ignore[arg-type]
    reals = endless(batches, device)
    for _ in range(clock.ticks):
        if job.side == "critic":
            loop.critic_step(next(reals))
        else:
            loop.train_cycle(reals)
        clock.tick()


def endless(batches: DataLoader, device: torch.device) -> Iterator[Tensor]:
    """The reference's data path: epoch after epoch, each batch moved to ``device``."""
    while True:
        for batch in batches:
            yield batch.to(device, non_blocking=True)  # (B, 1, 28, 28)


def worker(conn: Connection, job: Job) -> None:
    warnings.filterwarnings("ignore")  # Lightning's notes on loaders and loggers are noise here
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if job.threads:  # 1 on CPU: two OpenMP threads on busy cores wait for each other
        torch.set_num_threads(job.threads)
        os.environ["OMP_NUM_THREADS"] = str(job.threads)  # else Lightning's DDP resets it
    if job.world > 1:  # as torchrun would: Lightning sees these and launches nothing itself
        os.environ.update(RANK=str(job.rank), LOCAL_RANK=str(job.rank), NODE_RANK="0")
        os.environ.update(WORLD_SIZE=str(job.world), MASTER_ADDR="127.0.0.1")
        os.environ["MASTER_PORT"] = str(job.port)
    try:
        (run_gan_zoo if job.side == "gan_zoo" else run_reference)(job, conn)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        raise
