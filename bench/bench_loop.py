"""Benchmark gan_zoo's n_critic loop against the raw-PyTorch reference loop (issue 4).

    python -m bench.bench_loop           # check, then every benchmark; writes bench/RESULTS.md
    python -m bench.bench_loop --check   # only the check: same losses as the reference

Each configuration runs in its own worker process, forked from a server that has imported
everything once (Lightning's import is neither timed nor counted as memory). Two workers that
are compared (gan_zoo vs reference, 1 vs 2 DDP processes, ...) are alive together: both warm up,
then take turns timing chunks of generator steps in the order A B | B A | A B ..., so slow
phases of a shared machine hit both; a ratio is the median over adjacent pairs of chunks. Each
chunk records wall-clock and process CPU time; a control (the reference against itself) shows
the noise floor, and a width-8 probe measures gan_zoo's fixed cost per step. bench/README.md
says what is measured and its limits.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import itertools
import json
import logging
import multiprocessing as mp
import os
import platform
import re
import resource
import socket
import statistics
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import lightning
import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.data import DataLoader

from bench.reference_loop import (
    IMAGE_SHAPE,
    LATENT_DIM,
    VARIANTS,
    ReferenceLoop,
    Variant,
    build_nets,
)
from gan_zoo.distributed import GANDDPStrategy
from gan_zoo.models import GAN, SNGAN, WGANGP, MinimaxGAN, NonSaturatingGAN, WGANClip

BATCH = 64
DATASET_BATCHES = 64  # 4,096 synthetic images: both loops cross an epoch every 64 batches
GAN_ZOO: dict[str, Callable[..., GAN]] = {
    "minimax_gan": MinimaxGAN,
    "ns_gan": NonSaturatingGAN,
    "wgan_clip": functools.partial(WGANClip, clip_value=0.01),
    "wgan_gp": functools.partial(WGANGP, gp_weight=10.0),
    "sngan": functools.partial(SNGAN, loss="hinge"),
}
# The WGAN-GP critic step, and the same step without the penalty (same nets and optimizer).
CRITIC_STEPS = {
    "wgan_gp": VARIANTS["wgan_gp"],
    "wgan_no_penalty": dataclasses.replace(VARIANTS["wgan_gp"], gp_weight=None),
}
_MARK = "bench_loop/profiled_cycle"
SECTION = "## Training loop (issue 4)"
TARGET_TIME, TARGET_MEMORY, TARGET_GP = 1.05, 1.01, 3.0


@dataclasses.dataclass(frozen=True)
class Job:
    """One worker: ``impl`` in RUNNERS, ``variant`` a key of VARIANTS (CRITIC_STEPS for critic)."""

    impl: str
    variant: str
    device: str
    warmup: int
    chunks: tuple[int, ...]  # timed steps per turn
    width: int = 64
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 leaves torch's default
    world: int = 1  # gan_zoo under GANDDPStrategy (gloo) when > 1
    rank: int = 0
    port: int = 0


def make_loader(device: str, seed: int) -> DataLoader:
    """Shuffled batches ``(BATCH, 1, 28, 28)`` of one fixed in-memory synthetic tensor."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(DATASET_BATCHES * BATCH, *IMAGE_SHAPE, generator=gen) * 2 - 1
    return DataLoader(
        images, BATCH, shuffle=True, drop_last=True, generator=gen, pin_memory=device == "cuda"
    )


def endless(loader: DataLoader, device: torch.device, clock: Clock | None = None) -> Iterator:
    """The reference's data path: the same loader, epoch after epoch, moved to ``device``.

    With a ``clock``, the time spent fetching batches is its ``inner`` part.
    """
    while True:
        batches = iter(loader)
        for _ in range(len(loader)):
            start = Clock.now()
            batch = next(batches).to(device, non_blocking=True)  # (B, 1, 28, 28)
            if clock is not None:
                clock.add_inner(start)
            yield batch


def gan_zoo_model(variant: str, width: int = 64, seed: int = 0) -> GAN:
    """The gan_zoo variant with the nets and optimizers the reference uses."""
    spec = VARIANTS[variant]
    generator, discriminator = build_nets(spec, width, seed)
    return GAN_ZOO[variant](
        generator,
        discriminator,
        latent_dim=LATENT_DIM,
        n_critic=spec.n_critic,
        generator_optimizer=spec.optimizer,
        discriminator_optimizer=spec.optimizer,
    )


def reference_loop(
    spec: Variant, device: torch.device, width: int = 64, seed: int = 0
) -> ReferenceLoop:
    """The reference on ``device``, nets built (and spectrally normalised) as gan_zoo's are."""
    loop = ReferenceLoop(spec, *build_nets(spec, width, seed))  # spectral norm before .to()
    loop.generator.to(device)
    loop.discriminator.to(device)
    return loop


def trainer(job: Job, max_steps: int, callbacks: list[pl.Callback]) -> pl.Trainer:
    """What a user gets with the extras off: no logger, progress bar, checkpoints or summary."""
    ddp = job.world > 1
    return pl.Trainer(
        accelerator=job.device,
        devices=job.world,
        strategy=GANDDPStrategy(process_group_backend="gloo") if ddp else "auto",
        max_steps=max_steps,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )


# ------------------------------------------------------------------------------ measuring
def proc_status_kib(key: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process in KiB (Linux), else None."""
    try:
        match = re.search(rf"{key}:\s+(\d+)", Path("/proc/self/status").read_text())
    except OSError:
        return None
    return int(match.group(1)) if match else None


def state_bytes(modules: list[nn.Module], optimizers: list[torch.optim.Optimizer]) -> int:
    """Bytes of parameters, buffers, gradients and optimizer state (unique storages)."""
    params = [p for m in modules for p in m.parameters()]
    tensors = params + [b for m in modules for b in m.buffers()]
    tensors += [p.grad for p in params if p.grad is not None]
    tensors += [v for o in optimizers for s in o.state.values() for v in s.values()]
    storages = {
        t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
        for t in tensors
        if isinstance(t, Tensor)
    }
    return sum(storages.values())


def transient_peak_bytes(prof: profile) -> int:
    """Peak CPU tensor bytes above the level at the ``_MARK`` annotation (allocator events)."""
    with tempfile.TemporaryDirectory() as tmp:
        prof.export_chrome_trace(f"{tmp}/trace.json")
        events = json.loads(Path(f"{tmp}/trace.json").read_text())["traceEvents"]
    mark = min(e["ts"] for e in events if e.get("name") == _MARK)
    memory = sorted(
        (e["ts"], e["args"]["Total Allocated"])
        for e in events
        if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0
    )
    before = [total for ts, total in memory if ts < mark]
    after = [total for ts, total in memory if ts >= mark]
    base = before[-1] if before else 0
    return max([base, *after]) - base


class Clock:
    """Ticked after every generator step; talks to the parent over a pipe.

    After ``warmup`` steps it resets the peak-memory counters, sends ``ready`` and waits. Each
    ``go`` times the next chunk of steps and answers ``chunk``: wall and process CPU seconds,
    and those spent in the runner's ``inner`` part. A final ``go`` runs two untimed cycles, the
    second under the memory profiler (CPU), and answers ``done``.
    """

    def __init__(self, conn: Connection, job: Job) -> None:
        self.conn, self.cuda = conn, job.device == "cuda"
        self.boundaries = list(itertools.accumulate((job.warmup, *job.chunks)))
        self.total_steps = self.boundaries[-1] + 2
        self.step, self.inner, self.started = 0, [0.0, 0.0], self.now()
        self.faults_at_go = 0
        self.memory: dict[str, Any] = {"rss_start_kib": proc_status_kib("VmRSS")}
        self.state: Callable[[], int] = lambda: 0  # set by the runner
        self.profiler: profile | None = None

    def tick(self) -> None:
        self.step += 1
        if self.step in self.boundaries:
            if self.cuda:
                torch.cuda.synchronize()
            if self.step == self.boundaries[0]:
                self._reset_peaks()
                self.conn.send(("ready", {"threads": torch.get_num_threads()}))
            else:
                (wall, cpu), (wall0, cpu0) = self.now(), self.started
                chunk = {"seconds": wall - wall0, "cpu_seconds": cpu - cpu0}
                chunk["faults"] = self.faults() - self.faults_at_go
                chunk.update(inner=self.inner[0], inner_cpu=self.inner[1])
                self.conn.send(("chunk", chunk))
            if self.step == self.boundaries[-1]:
                self._read_peaks()
            self._wait_for_go()
            if self.step == self.boundaries[-1] and not self.cuda:
                self.profiler = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
                self.profiler.__enter__()
        elif self.step == self.total_steps - 1 and self.profiler is not None:
            self.memory["tensor_state_bytes"] = self.state()
            with record_function(_MARK):
                pass
        elif self.step == self.total_steps:
            if self.profiler is not None:
                self.profiler.__exit__(None, None, None)
                self.memory["tensor_transient_bytes"] = transient_peak_bytes(self.profiler)
            self.conn.send(("done", self.memory))

    @staticmethod
    def now() -> tuple[float, float]:
        """Wall-clock and process CPU time (all threads) in seconds."""
        return time.perf_counter(), time.process_time()

    @staticmethod
    def faults() -> int:
        """Minor page faults of this process so far (the kernel zero-filling fresh pages)."""
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def add_inner(self, since: tuple[float, float]) -> None:
        wall, cpu = self.now()
        self.inner[0] += wall - since[0]
        self.inner[1] += cpu - since[1]

    def _wait_for_go(self) -> None:
        message = self.conn.recv()
        assert message == "go", message
        self.inner, self.started, self.faults_at_go = [0.0, 0.0], self.now(), self.faults()

    def _reset_peaks(self) -> None:
        self.memory["rss_ready_kib"] = proc_status_kib("VmRSS")
        try:  # Linux: resets VmHWM (peak RSS) to the current RSS
            Path("/proc/self/clear_refs").write_text("5")
            self.memory["rss_peak_reset"] = True
        except OSError:
            self.memory["rss_peak_reset"] = False
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()

    def _read_peaks(self) -> None:
        self.memory["rss_peak_kib"] = proc_status_kib("VmHWM")
        if self.cuda:
            self.memory["cuda_peak_bytes"] = torch.cuda.max_memory_allocated()


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
        model.log = model.log_dict = lambda *args, **kwargs: None  # type: ignore[method-assign]
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


# --------------------------------------------------------------------------------- parent
def _receive(conn: Connection, job: Job, expected: str) -> dict[str, Any]:
    try:
        if not conn.poll(3600):
            raise RuntimeError("no answer in an hour")
        kind, payload = conn.recv()
    except (EOFError, OSError, RuntimeError) as err:
        raise RuntimeError(f"worker {job} died: {err!r}") from None
    if kind != expected:
        raise RuntimeError(f"worker {job} failed:\n{payload}")
    return payload


def race(ctx: Any, groups: list[list[Job]]) -> list[dict[str, Any]]:
    """Run groups of jobs (a group: the ranks of one configuration) in turns; see module doc.

    Returns per group: the ``chunk`` answers of rank 0 as lists, ``threads`` per rank, and
    rank 0's ``memory``.
    """
    procs = []
    for group in groups:
        procs.append([])
        for job in group:
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(child_end, job), daemon=True)
            proc.start()
            child_end.close()
            procs[-1].append((proc, parent_end, job))
    out: list[dict[str, Any]] = [{} for _ in groups]
    for g, group in enumerate(procs):
        out[g]["threads"] = [_receive(c, j, "ready")["threads"] for _, c, j in group]
    n_chunks = len(groups[0][0].chunks)
    for turn in range(n_chunks + 1):  # the last turn: the untimed memory cycles
        order = range(len(groups)) if turn % 2 == 0 else reversed(range(len(groups)))
        for g in order:
            for _, conn, _ in procs[g]:
                conn.send("go")
            kind = "chunk" if turn < n_chunks else "done"
            first, *_ = [_receive(c, j, kind) for _, c, j in procs[g]]
            if kind == "chunk":
                for key, value in first.items():
                    out[g].setdefault(key, []).append(value)
            else:
                out[g]["memory"] = first
    for proc, _, _ in itertools.chain(*procs):
        proc.join()
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chunks_of(steps: int, turns: int) -> tuple[int, ...]:
    """``steps`` split into ``turns`` near-equal chunks (each at least 1 step)."""
    turns = max(1, min(turns, steps))
    return tuple(steps // turns + (i < steps % turns) for i in range(turns))


def bench_variants(
    ctx: Any, args: argparse.Namespace, width: int, steps: int, without_log: bool = False
) -> list[dict]:
    """gan_zoo vs reference per variant (and, with ``without_log``, gan_zoo minus logging)."""
    rows = []
    impls = ("gan_zoo", "reference") + (("gan_zoo_without_log",) if without_log else ())
    for variant in args.variants:
        chunks = chunks_of(steps, args.turns)
        jobs = [
            Job(impl, variant, args.device, args.warmup, chunks, width, threads=args.threads)
            for impl in impls
        ]
        started = time.perf_counter()
        gz, ref, *rest = race(ctx, [[job] for job in jobs])
        rows.append(pair_row(variant, jobs[0], gz, ref, VARIANTS[variant].n_critic))
        if rest:  # gan_zoo against itself without self.log: what logging costs
            rows[-1]["log"] = pair_row(variant, jobs[0], gz, rest[0], VARIANTS[variant].n_critic)
        rows[-1]["wall_s"] = time.perf_counter() - started
        print(json.dumps(rows[-1]), flush=True)
    return rows


def bench_control(ctx: Any, args: argparse.Namespace) -> dict:
    """The reference against itself (ns_gan): how far apart two identical loops measure here."""
    chunks = chunks_of(args.steps, args.turns)
    job = Job("reference", "ns_gan", args.device, args.warmup, chunks, threads=args.threads)
    first, second = race(ctx, [[job], [job]])
    row = pair_row("control: reference vs itself (ns_gan)", job, first, second, n_critic=1)
    print(json.dumps(row), flush=True)
    return row


def bench_gp(ctx: Any, args: argparse.Namespace) -> dict:
    chunks = chunks_of(args.steps * 2, min(args.turns * 2, 2 * args.steps))
    jobs = [
        Job("critic", v, args.device, args.warmup, chunks, threads=args.threads)
        for v in CRITIC_STEPS
    ]
    gp, plain = race(ctx, [[jobs[0]], [jobs[1]]])
    row = pair_row("wgan_gp critic step", jobs[0], gp, plain, n_critic=1)
    print(json.dumps(row), flush=True)
    return row


def bench_ddp(ctx: Any, args: argparse.Namespace) -> list[dict]:
    rows = []
    for variant in args.ddp_variants:
        chunks, port = chunks_of(args.ddp_steps, args.turns), free_port()
        single = Job("gan_zoo", variant, "cpu", args.warmup, chunks, threads=args.threads)
        ranks = [dataclasses.replace(single, world=2, rank=r, port=port) for r in (0, 1)]
        one, two = race(ctx, [[single], ranks])
        rows.append(ddp_row(variant, single, one, two, VARIANTS[variant].n_critic, BATCH))
        print(json.dumps(rows[-1]), flush=True)
    return rows


# ---------------------------------------------------------------------------------- check
class _Recorder(pl.Callback):
    """Reseeds at the start of training (as the reference does) and records every loss."""

    def __init__(self, seed: int) -> None:
        self.seed, self.losses = seed, []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        torch.manual_seed(self.seed)

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, outputs: Any, *_: Any) -> None:
        self.losses += [outputs["d_loss"]] + ([outputs["g_loss"]] if "g_loss" in outputs else [])


def check(variants: list[str], steps: int, device: str) -> list[dict]:
    """Same seed, data order and noise: every loss and every weight after ``steps`` cycles."""
    rows = []
    for variant in variants:
        model, recorder = gan_zoo_model(variant), _Recorder(seed=1)
        job = Job("gan_zoo", variant, device, 0, ())
        trainer(job, steps, [recorder]).fit(model, make_loader(device, 0))
        loop = reference_loop(VARIANTS[variant], torch.device(device))
        torch.manual_seed(1)
        batches, ref_losses = endless(make_loader(device, 0), torch.device(device)), []
        for _ in range(steps):
            d_losses, g_loss = loop.train_cycle(batches)
            ref_losses += d_losses + [g_loss]
        gz = torch.stack(recorder.losses).cpu()
        ref = torch.stack(ref_losses).cpu()
        ours = {**_prefixed(model.generator, "G"), **_prefixed(model.discriminator, "D")}
        theirs = {**_prefixed(loop.generator, "G"), **_prefixed(loop.discriminator, "D")}
        common = set(ours) & set(theirs)
        weight_diff = max((ours[k] - theirs[k]).abs().max().item() for k in common)
        tol = 1e-5 if device == "cpu" else 1e-3
        loss_diff = (gz - ref).abs().max().item() if gz.shape == ref.shape else float("inf")
        ok = set(ours) == set(theirs) and loss_diff <= tol and weight_diff <= tol
        rows.append(dict(variant=variant, losses=len(ref), loss_diff=loss_diff))
        rows[-1].update(weight_diff=weight_diff, tolerance=tol, ok=ok, steps=steps)
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _prefixed(module: nn.Module, prefix: str) -> dict[str, Tensor]:
    return {f"{prefix}.{k}": v.detach().float().cpu() for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------------- report
def _per_step_ms(seconds: list[float], chunks: tuple[int, ...]) -> list[float]:
    return [1e3 * s / n for s, n in zip(seconds, chunks)]


def memory_summary(a: dict[str, Any], b: dict[str, Any], device: str) -> dict[str, Any]:
    """Peak-memory figures of two workers (MiB) and the ratio the target is judged on.

    GPU: ``torch.cuda.max_memory_allocated`` over the timed chunks. CPU: tensor state plus the
    profiled transient peak of one cycle (the allocator's view); RSS figures for context.
    """
    mib = 1 / 2**20
    out: dict[str, Any] = {}
    if device == "cuda":
        out["peak"] = [a["cuda_peak_bytes"] * mib, b["cuda_peak_bytes"] * mib]
    else:
        out["transient"] = [m["tensor_transient_bytes"] * mib for m in (a, b)]
        out["state"] = [m["tensor_state_bytes"] * mib for m in (a, b)]
        out["peak"] = [s + t for s, t in zip(out["state"], out["transient"])]
    if a.get("rss_peak_kib") and a.get("rss_peak_reset"):
        out["rss_peak"] = [m["rss_peak_kib"] / 1024 for m in (a, b)]
        out["rss_growth"] = [(m["rss_peak_kib"] - m["rss_start_kib"]) / 1024 for m in (a, b)]
    out["ratio"] = out["peak"][0] / out["peak"][1]
    return out


def _compare(a: list[float], b: list[float], chunks: tuple[int, ...]) -> dict[str, Any]:
    """Medians of per-step ms of ``a`` and ``b`` and of their paired ratios and differences."""
    a_ms, b_ms = _per_step_ms(a, chunks), _per_step_ms(b, chunks)
    ratios = [x / y if y else float("nan") for x, y in zip(a_ms, b_ms)]
    return {
        "a_ms": statistics.median(a_ms),
        "b_ms": statistics.median(b_ms),
        "ratio": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "diff_ms": statistics.median([x - y for x, y in zip(a_ms, b_ms)]),
    }


def pair_row(name: str, job: Job, a: dict, b: dict, n_critic: int) -> dict[str, Any]:
    """Timing and memory of configuration ``a`` against ``b`` (paired chunk by chunk).

    Top level: wall-clock; ``cpu``: process CPU time; ``inner``: the runners' inner parts
    (gan_zoo: ``training_step``; reference: fetching batches), wall and CPU.
    """
    row: dict[str, Any] = {"name": name, "n_critic": n_critic, "width": job.width}
    row.update(_compare(a["seconds"], b["seconds"], job.chunks))
    row["cpu"] = _compare(a["cpu_seconds"], b["cpu_seconds"], job.chunks)
    row["inner"] = _compare(a["inner"], b["inner"], job.chunks)
    row["inner_cpu"] = _compare(a["inner_cpu"], b["inner_cpu"], job.chunks)
    row.update(steps=sum(job.chunks), pairs=len(job.chunks), threads=a["threads"] + b["threads"])
    row["faults_per_step"] = [sum(x["faults"]) / sum(job.chunks) for x in (a, b)]
    row["images_per_s"] = [BATCH * n_critic * 1e3 / ms for ms in (row["a_ms"], row["b_ms"])]
    row["memory"] = memory_summary(a["memory"], b["memory"], job.device)
    return row


def ddp_row(variant: str, job: Job, one: dict, two: dict, n_critic: int, batch: int) -> dict:
    """Throughput of 1 process against 2 (each rank: ``batch`` per critic step)."""
    rows, per_step = {}, {}
    for world, result in ((1, one), (2, two)):
        per_step[world] = [s / n for s, n in zip(result["seconds"], job.chunks)]
        steps_per_s = 1 / statistics.median(per_step[world])
        rows[world] = {
            "threads": result["threads"],
            "steps_per_s": steps_per_s,
            "images_per_s": steps_per_s * batch * n_critic * world,
            "cpu_ms": statistics.median(_per_step_ms(result["cpu_seconds"], job.chunks)),
        }
    speedups = [2 * x / y for x, y in zip(per_step[1], per_step[2])]  # images/s, paired
    row = {"variant": variant, "n_critic": n_critic, "steps": sum(job.chunks), "runs": rows}
    row.update(speedup=statistics.median(speedups), speedup_range=[min(speedups), max(speedups)])
    return row


def _verdict(value: float, target: float) -> str:
    return "yes" if value <= target else f"**no** (+{100 * (value / target - 1):.1f}% over)"


def _ratio(c: dict[str, Any]) -> str:
    return f"{c['ratio']:.3f}× [{c['ratio_range'][0]:.3f}–{c['ratio_range'][1]:.3f}]"


def fixed_cost_estimate(row: dict[str, Any], tiny: dict[str, Any] | None, basis: str) -> float:
    """The ratio the width-8 probe predicts: (reference + gan_zoo's extra ms) / reference.

    gan_zoo's extra work (hooks, logging, wrappers) does not depend on the nets' width, and
    at width 8 it is not buried in compute noise.
    """
    if tiny is None:
        return float("nan")
    ref_ms = row["cpu"]["b_ms"] if basis == "cpu" else row["b_ms"]
    extra = tiny["cpu"]["diff_ms"] if basis == "cpu" else tiny["diff_ms"]
    return (ref_ms + extra) / ref_ms


def _variant_table(rows: list[dict], tiny: dict[str, dict], control: dict, basis: str) -> list[str]:
    """One row per variant and the control; on CPU, time is judged on wall, CPU and estimate."""
    lines = [
        "| variant | n_critic | gan_zoo ms/step | reference ms/step | time ratio (wall), "
        "median [min–max] of pairs | CPU-time ratio, median [min–max] | fixed-cost estimate | "
        "gan_zoo − reference ms/step | peak memory ratio | images/s gan_zoo / reference | "
        "time ≤ 1.05×? | memory ≤ 1.01×? |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in [*rows, control]:
        estimate = fixed_cost_estimate(r, tiny.get(r["name"]), basis)
        time_ok = _verdict(r["ratio"], TARGET_TIME)
        if basis == "cpu":
            time_ok = f"wall {time_ok}, CPU {_verdict(r['cpu']['ratio'], TARGET_TIME)}"
        if estimate == estimate:  # not nan
            time_ok += f", estimate {_verdict(estimate, TARGET_TIME)}"
        memory_ok = _verdict(r["memory"]["ratio"], TARGET_MEMORY)
        if r is control:
            time_ok = memory_ok = "(noise floor)"
        lines.append(
            f"| {r['name']} | {r['n_critic']} | {r['a_ms']:.1f} | {r['b_ms']:.1f} | "
            f"{_ratio(r)} of {r['pairs']} | {_ratio(r['cpu'])} | "
            + (f"{estimate:.3f}×" if estimate == estimate else "—")
            + f" | {r['diff_ms']:+.2f} | {r['memory']['ratio']:.4f}× | "
            f"{r['images_per_s'][0]:.0f} / {r['images_per_s'][1]:.0f} | {time_ok} | {memory_ok} |"
        )
    return lines


def _memory_table(rows: list[dict]) -> list[str]:
    def pair(m: dict, key: str) -> str:
        return f"{m[key][0]:.1f} / {m[key][1]:.1f}" if key in m else "n/a"

    cpu = "transient" in rows[0]["memory"]
    head = ["tensor state", "transient peak of one cycle"] if cpu else []
    tail = ["RSS peak", "RSS growth", "page faults per generator step"]
    lines = [
        "| variant | peak (judged) | " + " | ".join(head + tail) + " |",
        "|---|---|" + "---|" * (len(head) + len(tail)),
    ]
    for r in rows:
        m, cells = r["memory"], [pair(r["memory"], "peak")]
        cells += [pair(m, "state"), pair(m, "transient")] if cpu else []
        cells += [pair(m, "rss_peak"), pair(m, "rss_growth")]
        cells.append("{:.0f} / {:.0f}".format(*r["faults_per_step"]))
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    return lines


def breakdown(row: dict[str, Any], basis: str) -> dict[str, float]:
    """gan_zoo's extra ms per generator step, split at ``training_step`` (``basis``: cpu|wall).

    outside = (gan_zoo total - its training_step) - the reference's batch fetching;
    inside = gan_zoo's training_step - (reference total - its batch fetching).
    """
    total, inner = (row["cpu"], row["inner_cpu"]) if basis == "cpu" else (row, row["inner"])
    return {
        "extra": total["diff_ms"],
        "outside": (total["a_ms"] - inner["a_ms"]) - inner["b_ms"],
        "inside": inner["a_ms"] - (total["b_ms"] - inner["b_ms"]),
    }


def _overhead_table(rows: list[dict], basis: str) -> list[str]:
    lines = [
        f"| variant (width 8) | n_critic | gan_zoo ms/step ({basis}) | reference ms/step | "
        "ratio | extra ms per generator step | of which outside `training_step` | of which "
        "inside | of which `self.log` | ratio with `self.log` a no-op |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t, b = (r["cpu"] if basis == "cpu" else r), breakdown(r, basis)
        log = r["log"]["cpu"] if basis == "cpu" else r["log"]  # gan_zoo vs without self.log
        lines.append(
            f"| {r['name']} | {r['n_critic']} | {t['a_ms']:.2f} | {t['b_ms']:.2f} | "
            f"{_ratio(t)} | {b['extra']:+.2f} | {b['outside']:+.2f} | {b['inside']:+.2f} | "
            f"{log['diff_ms']:+.2f} | {log['b_ms'] / t['b_ms']:.3f}× |"
        )
    return lines


def _ddp_table(rows: list[dict]) -> list[str]:
    lines = [
        "| variant | processes × threads | generator steps/s | real images/s | CPU ms per "
        "generator step (rank 0) | 2-process speed-up (images/s), median [min–max] |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["speedup_range"]
        for world, run in r["runs"].items():
            speedup = f"{r['speedup']:.2f}× [{lo:.2f}–{hi:.2f}]" if world == 2 else "baseline"
            lines.append(
                f"| {r['variant']} | {world} × {run['threads'][0]} | "
                f"{run['steps_per_s']:.2f} | {run['images_per_s']:.0f} | {run['cpu_ms']:.1f} | "
                f"{speedup} |"
            )
    return lines


def _misses(results: dict[str, Any], basis: str) -> list[str]:
    """One line per missed target, with the fixed-cost breakdown where the probe ran."""
    tiny, lines = {r["name"]: r for r in results.get("overhead", [])}, []
    for r in results["variants"]:
        estimate = fixed_cost_estimate(r, tiny.get(r["name"]), basis)
        judged = [r["ratio"], estimate] + ([r["cpu"]["ratio"]] if basis == "cpu" else [])
        if any(x > TARGET_TIME for x in judged):  # nan compares False
            line = (
                f"- {r['name']}: time ratio {r['ratio']:.3f}× wall ({r['diff_ms']:+.1f} ms per "
                f"generator step), {r['cpu']['ratio']:.3f}× CPU time, {estimate:.3f}× "
                f"fixed-cost estimate; target {TARGET_TIME}×."
            )
            if r["name"] in tiny:
                b = breakdown(tiny[r["name"]], basis)
                log = tiny[r["name"]]["log"]["cpu"] if basis == "cpu" else tiny[r["name"]]["log"]
                line += (
                    f" Fixed extra of gan_zoo ({basis}): {b['extra']:+.2f} ms per generator step"
                    f", {b['outside']:+.2f} outside `training_step`, {b['inside']:+.2f} inside, "
                    f"`self.log` {log['diff_ms']:+.2f}."
                )
            lines.append(line)
        if r["memory"]["ratio"] > TARGET_MEMORY:
            lines.append(
                f"- {r['name']}: peak memory {r['memory']['ratio']:.4f}× misses "
                f"{TARGET_MEMORY}× by {100 * (r['memory']['ratio'] / TARGET_MEMORY - 1):.2f}%."
            )
        rss = r["memory"].get("rss_peak")
        if rss and rss[0] / rss[1] > TARGET_MEMORY:
            lines.append(
                f"- {r['name']}: process RSS peak {rss[0] / rss[1]:.3f}× (+{rss[0] - rss[1]:.1f} "
                "MiB; not the judged figure): Python-side state of the Trainer, not tensors."
            )
    if results["gp"]["ratio"] > TARGET_GP:
        lines.append(f"- WGAN-GP critic step {results['gp']['ratio']:.2f}× misses {TARGET_GP}×.")
    return lines or ["- none: every target was met in this run."]


def _noise_floor(control: dict[str, Any]) -> str:
    wall, cpu = control["ratio_range"], control["cpu"]["ratio_range"]
    return (
        f"Noise floor of this run: two identical reference loops measured "
        f"{control['ratio']:.3f}× wall (pairs {wall[0]:.2f}–{wall[1]:.2f}×) and "
        f"{control['cpu']['ratio']:.3f}× CPU time (pairs {cpu[0]:.2f}–{cpu[1]:.2f}×) against "
        "each other; direct ratios closer to 1.05 than that are not resolved, the fixed-cost "
        "estimate is."
    )


def _header(results: dict[str, Any]) -> str:
    m, a = results["machine"], results["args"]
    (before, _, _), (after, _, _) = m["load_average"]
    threads = results["variants"][0]["threads"][0] if results["variants"] else "?"
    busy = " (more than the cores: other jobs shared the machine)" if before > m["cores"] else ""
    return (
        f"### Run on {m['device']}\n\nWritten by `python -m bench.bench_loop` on "
        f"{m['date']}; device **{m['device']}**; CPU {m['cpu']}, {m['cores']} cores; torch "
        f"{m['torch']}, Lightning {m['lightning']}, Python {m['python']}. 1-minute load "
        f"average {before:.1f} at the start and {after:.1f} at the end{busy}. Whole run "
        f"{results['wall_s'] / 60:.1f} min. Arguments: `--steps {a['steps']} --turns "
        f"{a['turns']} --warmup {a['warmup']} --threads {a['threads']} "
        f"--{'' if a['pin_malloc'] else 'no-'}pin-malloc` ({threads} torch thread(s) per "
        "worker). Method and limits: `bench/README.md`."
    )


def _variants_part(results: dict[str, Any], basis: str) -> str:
    device = results["machine"]["device"]
    peak = "`torch.cuda.max_memory_allocated`" if device != "cpu" else "CPU tensor bytes"
    tiny = {r["name"]: r for r in results.get("overhead", [])}
    lines = [
        f"#### gan_zoo vs the raw-PyTorch reference, per generator step ({device})",
        "",
        "DCGAN 28 px nets of `configs/net/mnist_subset.yaml` (width 64, latent 64), batch 64, "
        "paper optimizers. One generator step = `n_critic` critic steps + 1 generator step. "
        f"Peak memory ratio: {peak} (see below). Targets: time ≤ 1.05×, peak memory ≤ 1.01×.",
        "",
        *_variant_table(results["variants"], tiny, results["control"], basis),
        "",
        "Memory detail, gan_zoo / reference, MiB (page faults: minor faults per timed "
        "generator step, i.e. fresh pages the kernel zero-fills):",
        "",
        *_memory_table(results["variants"]),
    ]
    return "\n".join(lines)


def _gp_part(gp: dict[str, Any]) -> str:
    lines = [
        "#### WGAN-GP critic step vs the same critic step without the penalty",
        "",
        "Same nets (critic without norm), same Adam, same batch; target ≤ 3×.",
        "",
        "| GP critic step ms | no-penalty critic step ms | ratio (wall), median [min–max] | "
        "CPU-time ratio | ≤ 3×? |",
        "|---|---|---|---|---|",
        f"| {gp['a_ms']:.1f} | {gp['b_ms']:.1f} | {_ratio(gp)} | {_ratio(gp['cpu'])} | "
        f"{_verdict(gp['ratio'], TARGET_GP)} |",
    ]
    return "\n".join(lines)


def _overhead_part(rows: list[dict], basis: str) -> str:
    clock = "CPU time (steadier than wall-clock here)." if basis == "cpu" else "Wall-clock."
    lines = [
        "#### Fixed cost of the loop (width-8 nets, where compute is small)",
        "",
        "Extra time of gan_zoo over the reference, split at `training_step`: *outside* is "
        "Lightning's loop between batches (hooks, batch fetch and transfer, result "
        "bookkeeping) minus the reference's own batch fetch; *inside* is gan_zoo's "
        "`training_step` minus the reference's compute. *`self.log`*: gan_zoo against a "
        f"third worker whose `self.log`/`self.log_dict` are no-ops (paired the same way). {clock}"
        " Each cell is a median, so the parts need not add up exactly.",
        "",
        *_overhead_table(rows, basis),
    ]
    return "\n".join(lines)


def _ddp_part(rows: list[dict]) -> str:
    lines = [
        "#### DDP on CPU: 1 process vs 2 (`GANDDPStrategy`, gloo)",
        "",
        "gan_zoo through `Trainer(accelerator='cpu', devices=N)`; 64 images per rank and "
        "critic step (the global batch grows with N). Real images/s = 64 × n_critic × N "
        "× generator steps/s. 1 process: the default single-device strategy.",
        "",
        *_ddp_table(rows),
    ]
    return "\n".join(lines)


def _check_part(rows: list[dict]) -> str:
    lines = [
        "#### Equivalence check",
        "",
        "Same seed, nets, data order and noise stream; every critic and generator loss, and "
        "every weight and buffer of G and D after the last step, gan_zoo vs reference.",
        "",
        "| variant | generator steps | losses compared | max abs loss diff | "
        "max abs weight diff | tolerance | ok |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {c['variant']} | {c['steps']} | {c['losses']} | {c['loss_diff']:.2e} | "
        f"{c['weight_diff']:.2e} | {c['tolerance']:.0e} | {'yes' if c['ok'] else 'NO'} |"
        for c in rows
    ]
    return "\n".join(lines)


def section(results: dict[str, Any]) -> str:
    """The markdown of this benchmark's section of RESULTS.md."""
    basis = "cpu" if results["machine"]["device"] == "cpu" else "wall"
    parts = [_header(results), _variants_part(results, basis), _gp_part(results["gp"])]
    if results.get("overhead"):
        parts.append(_overhead_part(results["overhead"], basis))
    if results["ddp"]:
        parts.append(_ddp_part(results["ddp"]))
    parts.append(_check_part(results["check"]))
    misses = [_noise_floor(results["control"]), "", *_misses(results, basis)]
    parts.append("#### Targets missed in this run\n\n" + "\n".join(misses))
    return "\n\n".join(parts) + "\n"


def write_section(path: Path, device: str, text: str) -> None:
    """Put ``text`` in ``path`` as the ``device`` block of this benchmark's ``##`` section.

    A CPU run and a GPU run each keep their own block (between HTML-comment markers); other
    sections of the file (other benchmarks) are left as they are.
    """
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    begin, end = f"<!-- bench_loop: {device} -->", f"<!-- /bench_loop: {device} -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    if begin in old:  # replace this device's block
        start, stop = old.index(begin), old.index(end) + len(end)
        new = old[:start] + block + old[stop:]
    else:
        start = old.find(SECTION + "\n")
        if start < 0:  # no section yet: append it
            new = f"{old.rstrip()}\n\n{SECTION}\n\n{block}\n"
        else:  # add the block at the end of the section (before the next "## ")
            stop = old.find("\n## ", start + len(SECTION))
            stop = len(old) if stop < 0 else stop + 1
            body = old[start:stop]
            keep = body if "<!-- bench_loop: " in body else SECTION  # drop an unmarked old body
            new = f"{old[:start]}{keep.rstrip()}\n\n{block}\n\n{old[stop:]}"
    path.write_text(new.rstrip("\n") + "\n")


# ------------------------------------------------------------------------------------ CLI
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = ",".join(VARIANTS)
    parser.add_argument("--variants", default=names, help=f"comma list (default {names})")
    steps = "timed generator steps per configuration (default 40 on CPU, 300 on GPU)"
    parser.add_argument("--steps", type=int, help=steps)
    turns = "timed chunks per configuration, taken in turns (default: min(steps, 40))"
    parser.add_argument("--turns", type=int, help=turns)
    parser.add_argument("--warmup", type=int, default=3, help="untimed generator steps")
    threads = (
        "torch threads per worker (default 1 on CPU: robust on a shared machine; GPU: torch's)"
    )
    parser.add_argument("--threads", type=int, help=threads)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--ddp", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--ddp-variants", default="ns_gan,wgan_gp")
    parser.add_argument("--ddp-steps", type=int, help="default: half of --steps")
    fixed_cost = "also time width-8 nets, where the loop's fixed cost shows"
    parser.add_argument(
        "--overhead", action=argparse.BooleanOptionalAction, default=True, help=fixed_cost
    )
    pin = "fix glibc's mmap/trim thresholds in the workers (steadier; see README)"
    parser.add_argument(
        "--pin-malloc", action=argparse.BooleanOptionalAction, default=True, help=pin
    )
    parser.add_argument("--check", action="store_true", help="run only the equivalence check")
    parser.add_argument("--check-steps", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.steps = args.steps or (300 if args.device == "cuda" else 40)
    args.turns = args.turns or min(args.steps, 40)
    args.threads = args.threads if args.threads is not None else int(args.device == "cpu")
    args.ddp_steps = args.ddp_steps or max(2, args.steps // 2)
    args.variants, args.ddp_variants = args.variants.split(","), args.ddp_variants.split(",")
    if min(args.steps, args.warmup, args.turns, args.ddp_steps) < 1:
        parser.error("--steps, --warmup, --turns and --ddp-steps must be >= 1")
    for name in args.variants + args.ddp_variants:
        if name not in VARIANTS:
            parser.error(f"unknown variant {name!r}; valid: {names}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet()
    if args.threads:
        torch.set_num_threads(args.threads)
    # Read by the fork server's fresh interpreter, inherited by every worker: silence the
    # profiler's and runpy's notes (workers re-run this module as __mp_main__).
    os.environ.update(KINETO_LOG_LEVEL="5", TORCH_CPP_LOG_LEVEL="ERROR")
    os.environ["PYTHONWARNINGS"] = "ignore::RuntimeWarning:runpy"
    if args.pin_malloc:  # see bench/README.md: glibc's adaptive thresholds are a coin toss
        os.environ.update(MALLOC_MMAP_THRESHOLD_=str(32 * 2**20), MALLOC_TRIM_THRESHOLD_=str(2**30))
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["bench.bench_loop"])
    started, load_before = time.perf_counter(), os.getloadavg()
    if not args.check:  # import in the fork server while the check runs here
        mp.forkserver.ensure_running()  # type: ignore[attr-defined]
    checked = check(args.variants, args.check_steps, args.device)
    ok = all(row["ok"] for row in checked)
    print(f"equivalence check: {'passed' if ok else 'FAILED'}", flush=True)
    if args.check or not ok:
        return 0 if ok else 1
    results = {"check": checked, "machine": machine(args.device), "args": vars(args)}
    results["variants"] = bench_variants(ctx, args, width=64, steps=args.steps)
    results["control"] = bench_control(ctx, args)
    results["gp"] = bench_gp(ctx, args)
    if args.overhead:
        results["overhead"] = bench_variants(ctx, args, width=8, steps=args.steps, without_log=True)
    results["ddp"] = bench_ddp(ctx, args) if args.ddp else []
    results["machine"]["load_average"] = [load_before, os.getloadavg()]
    results["wall_s"] = time.perf_counter() - started
    write_section(args.out, args.device, section(results))
    print(f"wrote {args.out} in {results['wall_s']:.0f} s")
    return 0


def machine(device: str) -> dict[str, Any]:
    cpu = re.findall(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text() or "")
    info = {
        "cpu": cpu[0] if cpu else platform.processor(),
        "cores": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return info


if __name__ == "__main__":
    # Call main() of the importable module, so that worker functions pickle as
    # bench.bench_loop.* (preloaded in the fork server) rather than __main__.*.
    from bench import bench_loop

    raise SystemExit(bench_loop.main())
