"""Cost of gan_zoo's FID/IS against the bare InceptionV3 forward on the same images.

    python -m bench.bench_metrics --num-images 1000                 # official weights
    python -m bench.bench_metrics --num-images 200 --random-weights --matrix-sqrt  # offline CPU

Times, on the same images and in one run: (1) torch-fidelity's InceptionV3 forward alone on
uint8 batches; (2) ``FidelityMetrics.update`` on the float [-1, 1] images (conversion, forward,
float64 running sums, IS logits); (3) ``compute()`` once (FID against a reference, IS splits),
a fixed cost per evaluation that does not grow with N. Reports seconds per 1,000 images and the
ratio (2)/(1), and writes the "Metrics" section of bench/RESULTS.md (other sections untouched).
Timings do not depend on the weight values, so ``--random-weights`` measures the real cost.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from threadpoolctl import threadpool_limits

from bench.loop_report import cpu_model
from gan_zoo.metrics import FidelityMetrics, write_random_weights
from gan_zoo.metrics.functional import psd_sqrt, to_uint8_rgb, trace_sqrt_product
from gan_zoo.metrics.inception import resolve_weights

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
SECTION = "## Metrics (issue 3)"


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random float images ``(n, 3, size, size)`` in [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=gen) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def bench(args: argparse.Namespace) -> dict[str, float | str]:
    """Time bare forward and ``update`` on the same chunks, alternating which goes first.

    A B | B A | A B ...: slow phases of a shared machine hit both sides; the ratio is the median
    of the per-chunk ratios.
    """
    device = torch.device(args.device)
    weights = resolve_weights(args.weights)
    metric = FidelityMetrics(inception_weights=weights, batch_size=args.batch_size)
    metric = metric.to(device)
    chunks = images(args.num_images, args.size).split(args.chunk)
    with torch.no_grad():
        metric.extractor(to_uint8_rgb(chunks[0][:2]).to(device))  # warm-up, not measured

    # The bare side gets its uint8 batches ready-made (on the device), so it times the forward
    # alone; `update` takes the float images as users pass them and converts them itself.
    uint8_chunks = [[to_uint8_rgb(b).to(device) for b in c.split(args.batch_size)] for c in chunks]
    float_chunks = [[b.to(device) for b in c.split(args.batch_size)] for c in chunks]

    def bare(i: int) -> None:
        with torch.no_grad():
            for batch in uint8_chunks[i]:
                metric.extractor(batch)

    def update(i: int) -> None:
        for batch in float_chunks[i]:
            metric.update(batch, real=False)

    metric.update(images(max(2, args.batch_size), args.size, seed=1).to(device), real=True)
    bare_times: list[float] = []
    update_times: list[float] = []
    for i in range(len(chunks)):
        order = [(bare, bare_times), (update, update_times)]
        for fn, times in order if i % 2 == 0 else order[::-1]:
            times.append(timed(functools.partial(fn, i), device))
    compute_s = timed(metric.compute, device)
    per_k = 1000 / args.num_images
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "images": args.num_images,
        "size": args.size,
        "batch": args.batch_size,
        "bare_per_1k": sum(bare_times) * per_k,
        "metric_per_1k": sum(update_times) * per_k,
        "ratio": float(np.median(np.array(update_times) / np.array(bare_times))),
        "compute": compute_s,
    }


def cpu_name() -> str:
    return f"CPU ({cpu_model()})"


def matrix_sqrt_costs(dim: int = 2048) -> dict[str, float]:
    """Seconds for tr((S1 S2)^½) at 2048-d: ours, torch-fidelity's eigvals, scipy's sqrtm."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((dim, 3000)), rng.standard_normal((dim, 3000))
    s1, s2 = a @ a.T / 3000, b @ b.T / 3000
    costs = {}
    start = time.perf_counter()
    trace_sqrt_product(psd_sqrt(s1), s2)
    costs["gan_zoo eigh + eigvalsh"] = time.perf_counter() - start
    with threadpool_limits(limits=1, user_api="blas"):
        start = time.perf_counter()
        np.linalg.eigvals(s1 @ s2)
        costs["torch-fidelity eigvals (1 thread)"] = time.perf_counter() - start
        start = time.perf_counter()
        scipy.linalg.sqrtm(s1 @ s2)
        costs["pytorch-fid scipy sqrtm (1 thread)"] = time.perf_counter() - start
    return costs


def compose_train(overrides: list[str], run_dir: Path) -> DictConfig:
    """The real configs/train.yaml with ``overrides``, as ``python train.py`` composes it."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):  # ${hydra:...} only resolves inside a Hydra run
        cfg.paths.output_dir, cfg.run_name = str(run_dir), "bench"
    return cfg


class _EvalSeconds(logging.Handler):
    """Collects the callback's "FID/IS at generator step S took X s" log lines."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = re.search(r"FID/IS at generator step \d+ took ([\d.]+) s", record.getMessage())
        if match:
            self.seconds.append(float(match.group(1)))


def default_job_cost(steps: int, weights: Path) -> dict[str, float]:
    """Fraction of the default job's time (``python train.py``: its ``trainer.max_steps`` on CPU)
    the default ("auto": 128 fakes vs 128 training images, at the end) FID/IS costs.

    Runs the real ``train()`` with and without the metric callbacks (the second metric run
    reuses the cached reference) and extrapolates the training time to the job's length.
    """
    from gan_zoo.training import train

    tmp = Path(tempfile.mkdtemp())
    common = [
        "logger=none",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "~callbacks.model_checkpoint",
        "~callbacks.sample_grid",
    ]
    metrics = [
        f"metrics.inception_weights={weights}",
        f"callbacks.fid.cache_dir={tmp}",
    ]
    handler = _EvalSeconds()
    logging.getLogger("lightning.pytorch").addHandler(handler)
    logging.getLogger("lightning.pytorch").setLevel(logging.INFO)
    # Runs alternate so load changes hit both sides; training time per step is the difference
    # between a 2*steps and a steps run, which cancels the fixed start-up cost of a run.
    plan = [(steps, False), (steps, True), (2 * steps, False), (steps, True)]
    plain: dict[int, float] = {}
    for i, (n, with_metrics) in enumerate(plan):
        extra = metrics if with_metrics else ["~callbacks.fid", "~callbacks.is"]
        cfg = compose_train(common + extra + [f"trainer.max_steps={n}"], tmp / f"run{i}")
        start = time.perf_counter()
        train(cfg)
        if not with_metrics:
            plain[n] = time.perf_counter() - start
    first, cached = handler.seconds[-2:]
    per_step = (plain[2 * steps] - plain[steps]) / steps
    job_steps = int(compose_train([], tmp / "probe").trainer.max_steps)
    job = job_steps * per_step
    return {
        "steps_timed": steps,
        "job_steps": job_steps,
        "train_s_per_step": per_step,
        "eval_first_s": first,
        "eval_cached_s": cached,
        "fraction_first": first / (job + first),
        "fraction_cached": cached / (job + cached),
        "load": os.getloadavg()[0],
    }


def write_section(
    result: dict[str, float | str],
    sqrt_costs: dict[str, float] | None,
    job: dict[str, float] | None,
) -> None:
    lines = [
        SECTION,
        "",
        "`python -m bench.bench_metrics` (see its docstring). Per 1,000 images at "
        f"{result['size']}x{result['size']} px, batch {result['batch']}, "
        f"{result['images']} images timed, {result['threads']} threads:",
        "",
        "| device | bare InceptionV3 forward | FidelityMetrics.update | ratio (median of "
        "chunks) | compute() once |",
        "|---|---|---|---|---|",
        f"| {result['device']} | {result['bare_per_1k']:.1f} s | {result['metric_per_1k']:.1f} s "
        f"| {result['ratio']:.3f} | {result['compute']:.1f} s |",
        "",
        "`update` adds the uint8 conversion, the float64 running sums and the IS logits to the "
        "forward; `compute()` (FID's eigendecompositions and the IS splits) is paid once per "
        "evaluation, independent of the number of images.",
    ]
    if sqrt_costs:
        lines += ["", "tr((S1 S2)^1/2) on 2048x2048 covariances, seconds:", ""]
        lines += [f"- {name}: {seconds:.1f} s" for name, seconds in sqrt_costs.items()]
    if job:
        lines += [
            "",
            f"Default job (`python train.py`, {job['job_steps']:,} steps on this CPU; "
            f"{job['steps_timed']} "
            f"steps timed, load average {job['load']:.1f}): training "
            f"{job['train_s_per_step']:.3f} s/step; the default CPU FID/IS (128 fakes vs 128 "
            f"training images, at the end) took {job['eval_first_s']:.0f} s on a first run "
            f"(reference computed: {100 * job['fraction_first']:.1f}% of the job) and "
            f"{job['eval_cached_s']:.0f} s with the cached reference "
            f"({100 * job['fraction_cached']:.1f}%).",
        ]
    section = "\n".join(lines) + "\n"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = (
        pattern.sub(section + "\n", text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section
    )
    RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=32, help="image side before the resize")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--chunk", type=int, default=100, help="images per timed A/B chunk")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--weights", default=None, help="InceptionV3 weights file")
    parser.add_argument("--random-weights", action="store_true", help="offline: seeded random")
    parser.add_argument("--matrix-sqrt", action="store_true", help="also time the 2048-d sqrt")
    parser.add_argument(
        "--default-job",
        type=int,
        default=0,
        metavar="STEPS",
        help="also time the default job's metric cost over STEPS steps per run",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.random_weights:
        args.weights = write_random_weights(Path(tempfile.mkdtemp()) / "random.pth", seed=0)
    result = bench(args)
    sqrt_costs = matrix_sqrt_costs() if args.matrix_sqrt else None
    job = (
        default_job_cost(args.default_job, resolve_weights(args.weights))
        if args.default_job
        else None
    )
    print(result, sqrt_costs, job)
    if not args.no_write:
        write_section(result, sqrt_costs, job)


if __name__ == "__main__":
    main()
