"""gan_zoo's training loop against a raw-PyTorch loop, side by side in one run.

    python -m bench.bench_loop                                   # rewrites its RESULTS.md block
    python -m bench.bench_loop --pairs 4 --out /tmp/loop.md      # a quick look
    python -m bench.bench_loop --width 8 --no-ddp --out /tmp/w8.md   # the loop's fixed cost

Per variant: gan_zoo's real ``Trainer.fit`` (no logger, progress bar, checkpoints or summary)
against ``bench.reference_loop`` (same nets, losses, optimizers and data), and a control row,
the reference against itself. Then WGAN-GP's critic step against the same step without the
penalty, and gan_zoo on 1 vs 2 DDP processes on CPU (``gan_ddp``, gloo).

The two sides of a comparison are worker processes, alive together, forked from a server that
imported everything once. After a warm-up they take turns timing one chunk of steps each while
the other waits (A B | B A | A B ...), so a slow phase of a shared machine hits both sides; a
ratio is the median of the ratios of adjacent chunks, with their min-max. That both sides compute
the same thing is tests/integration/test_reference_equivalence.py. Method, limits:
bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import multiprocessing as mp
import os
import resource
import socket
import statistics
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

from bench.loop_report import header, report, write_section
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


# ------------------------------------------------------------------------ in the workers
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


# ------------------------------------------------------------------------- in the parent
def receive(conn: Connection, expected: str) -> Any:
    kind, payload = conn.recv()  # EOFError if the worker died without a word
    if kind != expected:
        raise RuntimeError(f"a worker failed:\n{payload}")
    return payload


def race(ctx: Any, a: list[Job], b: list[Job]) -> list[dict[str, Any]]:
    """Run the ranks of configurations ``a`` and ``b`` in turns: A B | B A | A B ...

    Returns, for each, rank 0's chunk seconds (``wall``, ``cpu``) and ``memory``.
    """
    groups: list[list[Connection]] = []
    procs = []
    for jobs in (a, b):
        groups.append([])
        for job in jobs:
            parent_end, child_end = ctx.Pipe()
            procs.append(ctx.Process(target=worker, args=(child_end, job), daemon=True))
            procs[-1].start()
            child_end.close()
            groups[-1].append(parent_end)
    for conn in groups[0] + groups[1]:
        receive(conn, "ready")
    out: list[dict[str, Any]] = [{"wall": [], "cpu": []}, {"wall": [], "cpu": []}]
    for turn in range(a[0].chunks):
        for g in (0, 1) if turn % 2 == 0 else (1, 0):
            for conn in groups[g]:
                conn.send("go")
            wall, cpu = [receive(conn, "chunk") for conn in groups[g]][0]
            out[g]["wall"].append(wall)
            out[g]["cpu"].append(cpu)
    for g in (0, 1):
        out[g]["memory"] = [receive(conn, "done") for conn in groups[g]][0]
    for proc in procs:
        proc.join()
    return out


def compare(name: str, a: dict[str, Any], b: dict[str, Any], ticks: int) -> dict[str, Any]:
    """Median ms per ``ticks`` of each side, and the paired ratios a/b (median, min, max)."""
    row: dict[str, Any] = {"name": name, "memory": [a["memory"], b["memory"]]}
    for clock in ("wall", "cpu"):
        ratios = [x / y for x, y in zip(a[clock], b[clock])]
        a_ms, b_ms = (1e3 * statistics.median(side[clock]) / ticks for side in (a, b))
        row[clock] = dict(a_ms=a_ms, b_ms=b_ms, ratio=statistics.median(ratios))
        row[clock].update(lo=min(ratios), hi=max(ratios))
    print(json.dumps(row), flush=True)
    return row


def benchmarks(ctx: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Every comparison of the report, in turn."""

    def job(side: str, variant: str, ticks_per_chunk: int = args.chunk) -> Job:
        chunks, threads = args.pairs, args.threads
        return Job(
            side, variant, args.device, args.warmup, chunks, ticks_per_chunk, args.width, threads
        )

    rows = []
    for name in [*args.variants, "control"]:  # control: the reference against itself
        variant, side = ("ns_gan", "reference") if name == "control" else (name, "gan_zoo")
        ours, reference = race(ctx, [job(side, variant)], [job("reference", variant)])
        rows.append(compare(name, ours, reference, args.chunk))
    critic = args.chunk * VARIANTS["wgan_gp"].n_critic  # the critic work of a WGAN-GP chunk
    gp, plain = race(
        ctx, [job("critic", "wgan_gp", critic)], [job("critic", "wgan_no_penalty", critic)]
    )
    ddp: list[dict[str, Any]] = []
    out = {"variants": rows, "gp": compare("wgan_gp critic step", gp, plain, critic), "ddp": ddp}
    for variant in [v for v in ("ns_gan", "wgan_gp") if args.ddp and v in args.variants]:
        one = dataclasses.replace(job("gan_zoo", variant), device="cpu", threads=1)
        with socket.socket() as sock:  # a free port for the process group
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        two = [dataclasses.replace(one, world=2, rank=r, port=port) for r in (0, 1)]
        single, double = race(ctx, [one], two)
        ddp.append(compare(variant, single, double, args.chunk))
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(GAN_ZOO), help="comma list")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--pairs", type=int, default=40, help="timed chunks per side")
    parser.add_argument("--chunk", type=int, help="generator steps per chunk (1 CPU, 10 GPU)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed generator steps")
    parser.add_argument("--threads", type=int, help="per worker (1 on CPU; 0: torch's default)")
    parser.add_argument("--width", type=int, default=64, help="channels of the nets' last layer")
    parser.add_argument("--ddp", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.chunk = args.chunk or (1 if args.device == "cpu" else 10)  # a GPU step takes ms
    args.threads = int(args.device == "cpu") if args.threads is None else args.threads
    args.variants = args.variants.split(",")
    if unknown := set(args.variants) - set(GAN_ZOO):
        parser.error(f"--variants: unknown {sorted(unknown)}; valid: {','.join(GAN_ZOO)}")
    if min(args.pairs, args.chunk, args.warmup) < 1:
        parser.error("--pairs, --chunk and --warmup must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Read when the fork server starts, so every worker inherits them. A step allocates and
    # frees tens of MB; glibc's adaptive thresholds may hand those pages back to the kernel
    # after every step in one process and not in the other (up to 25% apart, bench/README.md).
    os.environ.update(MALLOC_MMAP_THRESHOLD_=str(32 * 2**20), MALLOC_TRIM_THRESHOLD_=str(2**30))
    os.environ.update(KINETO_LOG_LEVEL="5", TORCH_CPP_LOG_LEVEL="ERROR")  # profiler notes
    os.environ["PYTHONWARNINGS"] = "ignore::RuntimeWarning:runpy"  # workers re-run __main__
    ctx = mp.get_context("forkserver")  # safe with CUDA, unlike fork
    ctx.set_forkserver_preload(["bench.bench_loop"])
    started, load = time.perf_counter(), os.getloadavg()[0]
    results = benchmarks(ctx, args)
    minutes = (time.perf_counter() - started) / 60
    text = report(results, args, header(args, (load, os.getloadavg()[0]), minutes))
    write_section(args.out, args.device, text)
    print(text, f"wrote {args.out}", sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
