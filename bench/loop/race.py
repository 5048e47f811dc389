"""The parent: compared workers run in turns (A B | B A | ...), and each benchmark's jobs.

Two workers that are compared (gan_zoo vs reference, 1 vs 2 DDP processes, ...) are alive
together: both warm up, then take turns timing chunks of generator steps in the order
A B | B A | A B ..., so slow phases of a shared machine hit both; a ratio is the median over
adjacent pairs of chunks (``bench.loop.summary``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import socket
import time
from multiprocessing.connection import Connection
from typing import Any

from bench.loop.jobs import BATCH, CRITIC_STEPS, Job
from bench.loop.summary import ddp_row, pair_row
from bench.loop.workers import worker
from bench.reference_loop import VARIANTS


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
    procs: list[list[tuple[Any, Connection, Job]]] = []
    for group in groups:
        procs.append([])
        for job in group:
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(child_end, job), daemon=True)
            proc.start()
            child_end.close()
            procs[-1].append((proc, parent_end, job))
    out: list[dict[str, Any]] = [{} for _ in groups]
    for g, running in enumerate(procs):
        out[g]["threads"] = [_receive(c, j, "ready")["threads"] for _, c, j in running]
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
