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

The parts live in ``bench/loop/``: jobs and loaders (``jobs``), the clock and memory readings
(``clock``), worker processes (``workers``), the turn-taking scheduler and each benchmark's jobs
(``race``), medians and ratios (``summary``), the equivalence check (``check``) and the markdown
section (``tables``, ``report``). This module is the CLI.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing as mp
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

import lightning
import torch

from bench.loop.check import check
from bench.loop.race import bench_control, bench_ddp, bench_gp, bench_variants
from bench.loop.report import section, write_section
from bench.loop.workers import quiet
from bench.reference_loop import VARIANTS


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
    results: dict[str, Any] = {
        "check": checked,
        "machine": machine(args.device),
        "args": vars(args),
    }
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
    # The workers' functions and Job live in bench.loop.*, so they pickle by those names (which
    # the fork server has preloaded) even though this module runs as __main__.
    raise SystemExit(main())
