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
import json
import multiprocessing as mp
import os
import socket
import statistics
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from bench.loop_report import header, report, write_section
from bench.loop_workers import GAN_ZOO, Job, worker
from bench.reference_loop import VARIANTS


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
    ctx.set_forkserver_preload(["bench.loop_workers"])
    started, load = time.perf_counter(), os.getloadavg()[0]
    results = benchmarks(ctx, args)
    minutes = (time.perf_counter() - started) / 60
    text = report(results, args, header(args, (load, os.getloadavg()[0]), minutes))
    write_section(args.out, args.device, text)
    print(text, f"wrote {args.out}", sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
