"""What makes the default job's generator step cheaper on a CPU? Levers timed side by side.

    python -m bench.default_job                      # ~3 min on a 2-core CPU
    python -m bench.default_job --rounds 30 --levers baseline,channels_last,width48

Issue 10 §6. The default job (``python train.py``: NS-GAN, the DCGAN pair of
``configs/net/mnist_subset.yaml``, batch 64) spends 96% of its time in G's and D's compute
(bench/RESULTS.md, "Where the default job's time goes"), so each lever here changes that
compute and nothing else. Each lever is one :class:`bench.reference_loop.ReferenceLoop` (the
same nets, losses, optimizers and order of draws as gan_zoo's loop, which times within 1.05× of
it) on a synthetic batch, all alive in one process with the job's thread count. After warm-up
they take turns in rotating order, one chunk of ``--chunk`` generator steps each per round, so
a slow phase of a shared machine hits every lever. A lever's ratio is the median over rounds of
its chunk time over the baseline's chunk time in the same round, with the min–max.

Levers: ``baseline``; ``channels_last`` (the DCGAN nets' ``channels_last=True``: NHWC weights and
inputs, oneDNN's preferred layout);
``width48``/``width32`` (leaner nets: fewer channels in every layer); ``compile``
(``torch.compile`` of G and D, inductor's C++ backend). Fewer steps is a lever too, but a
budget, not a speed: it is measured by the sample-quality benchmark (bench/sample_quality.py).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.loop_report import cpu_model
from bench.reference_loop import LATENT_DIM, VARIANTS, ReferenceLoop, build_nets
from gan_zoo.nets import DCGANDiscriminator, DCGANGenerator

BATCH = 64  # configs/data/mnist_subset.yaml
LEVERS: dict[str, dict[str, int | bool]] = {
    "baseline": {},
    "channels_last": {"channels_last": True},
    "width48": {"width": 48},
    "width32": {"width": 32},
    "compile": {"compile": True},
}


def make_loop(name: str, seed: int = 0) -> tuple[ReferenceLoop, torch.Tensor]:
    """One lever's NS-GAN loop and its real batch ``(B, 1, 28, 28)``; a generator step is
    ``loop.train_cycle(iter([real]))`` (one critic step, one generator step)."""
    options = LEVERS[name]
    variant = VARIANTS["ns_gan"]
    generator, discriminator = build_nets(variant, width=int(options.get("width", 64)), seed=seed)
    real = torch.rand(BATCH, 1, 28, 28) * 2 - 1  # (B, 1, 28, 28) in [-1, 1], NCHW as loaded
    if options.get("channels_last"):  # the nets' own switch (configs/net/mnist_subset.yaml)
        nhwc_g = DCGANGenerator(latent_dim=LATENT_DIM, image_size=28, channels_last=True)
        nhwc_d = DCGANDiscriminator(channels=1, image_size=28, norm="none", channels_last=True)
        nhwc_g.load_state_dict(generator.state_dict())  # the same seeded weights, stored NHWC
        nhwc_d.load_state_dict(discriminator.state_dict())
        generator, discriminator = nhwc_g, nhwc_d
    loop = ReferenceLoop(variant, generator, discriminator)
    if options.get("compile"):
        loop.generator = torch.compile(generator)  # type: ignore[assignment]
        loop.discriminator = torch.compile(discriminator)  # type: ignore[assignment]
    return loop, real


def measure(levers: list[str], rounds: int, chunk: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per generator step of each lever, one entry per round (rotating order)."""
    loops = {name: make_loop(name) for name in levers}
    for loop, real in loops.values():
        for _ in range(warmup):
            loop.train_cycle(iter([real]))
    times: dict[str, list[float]] = {name: [] for name in levers}
    for r in range(rounds):
        order = levers[r % len(levers) :] + levers[: r % len(levers)]
        for name in order:
            loop, real = loops[name]
            start = time.perf_counter()
            for _ in range(chunk):
                loop.train_cycle(iter([real]))
            times[name].append((time.perf_counter() - start) / chunk)
    return times


def report(times: dict[str, list[float]], args: argparse.Namespace) -> str:
    """A Markdown table: ms per step, and the ratio to the baseline's chunk in the same round."""
    base = times["baseline"]
    lines = [
        f"`python -m bench.default_job --rounds {args.rounds} --chunk {args.chunk} "
        f"--levers {','.join(times)}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"CPU {cpu_model()}, {torch.get_num_threads()} torch "
        f"threads; torch {torch.__version__}. NS-GAN generator steps, batch {BATCH}, latent "
        f"{LATENT_DIM}.",
        "",
        "| lever | ms per generator step (median) | time / baseline, median [min–max] |",
        "|---|---|---|",
    ]
    for name, values in times.items():
        ratios = [v / b for v, b in zip(values, base, strict=True)]
        lines.append(
            f"| {name} | {1000 * statistics.median(values):.1f} | "
            f"{statistics.median(ratios):.3f}× [{min(ratios):.3f}–{max(ratios):.3f}] |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Time the levers and print the table (bench/RESULTS.md keeps a copy by hand)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levers", default="baseline,channels_last,width48,width32")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=5, help="generator steps per timed chunk")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    levers = args.levers.split(",")
    unknown = [name for name in levers if name not in LEVERS]
    if unknown or "baseline" not in levers:
        parser.error(f"--levers {args.levers!r}: needs baseline; valid: {', '.join(LEVERS)}")
    print(report(measure(levers, args.rounds, args.chunk, args.warmup), args))


if __name__ == "__main__":
    main()
