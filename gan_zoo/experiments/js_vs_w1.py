"""JS saturates, W1 keeps measuring: the argument of Arjovsky et al. 2017 (Sec. 2, Example 1).

For each separation theta, the discriminator of :class:`~gan_zoo.models.MinimaxGAN` and the
critic of :class:`~gan_zoo.models.WGANGP` are trained to near-optimum (with their own hooks,
continuing from the previous theta) between a fixed "generator" distribution at 0 and the data
at theta, and each variant's
``divergence_estimates`` is compared with the exact value:

- ``gaussians``: P_data = N(theta, s^2), P_G = N(0, s^2) in 1-D. JS is integrated numerically,
  W1 = theta in closed form (a translation).
- ``lines``: Example 1 of Arjovsky et al. 2017, P_data = (theta, U[0, 1]) and P_G = (0, U[0, 1])
  in 2-D: JS = log 2 for every theta != 0, W1 = |theta|.

    python -m gan_zoo.experiments.js_vs_w1 --out docs/img
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import integrate, stats

from gan_zoo.experiments import common
from gan_zoo.models import GAN, WGANGP, MinimaxGAN
from gan_zoo.plotting import new_figure

COLUMNS = ("separation", "js_estimate", "js_exact", "w1_estimate", "w1_exact")


def gaussian_js(theta: float, std: float) -> float:
    """JSD(N(theta, std^2) || N(0, std^2)) in nats by adaptive quadrature; in [0, log 2]."""

    def integrand(x: float) -> float:
        log_p, log_q = stats.norm.logpdf(x, theta, std), stats.norm.logpdf(x, 0.0, std)
        log_m = np.logaddexp(log_p, log_q) - math.log(2.0)
        return 0.5 * (math.exp(log_p) * (log_p - log_m) + math.exp(log_q) * (log_q - log_m))

    lo, hi = min(0.0, theta) - 12 * std, max(0.0, theta) + 12 * std
    value, _ = integrate.quad(integrand, lo, hi, points=sorted({0.0, theta}), limit=500)
    return value


def exact_values(geometry: str, theta: float, std: float) -> tuple[float, float]:
    """``(js_exact, w1_exact)`` for the pair at separation ``theta``."""
    if geometry == "lines":
        return (math.log(2.0) if theta != 0 else 0.0), abs(theta)
    return gaussian_js(theta, std), abs(theta)


def sampler(geometry: str, offset: float, std: float) -> common.Sampler:
    """``n -> (n, 1)`` draws of N(offset, std^2), or ``(n, 2)`` points of the line x = offset."""
    if geometry == "lines":
        return lambda n: torch.stack([torch.full((n,), offset), torch.rand(n)], dim=1)
    return lambda n: offset + std * torch.randn(n, 1)


def critics(args: argparse.Namespace) -> dict[str, GAN]:
    """The discriminator of MinimaxGAN (estimates ``js``) and the critic of WGANGP (``w1``)."""
    in_dim = 2 if args.geometry == "lines" else 1
    return {
        "js": common.critic_model(MinimaxGAN, in_dim, args.hidden, 2, args.lr),
        "w1": common.critic_model(
            WGANGP, in_dim, args.hidden, 2, args.lr, gp_weight=args.gp_weight
        ),
    }


def measure(args: argparse.Namespace, theta: float, models: dict[str, GAN]) -> dict[str, float]:
    """Train both critics at separation ``theta`` and return one CSV row.

    The critics carry over from the previous (smaller) separation. Without this continuation the
    GP critic can settle in a spurious optimum: for a linear critic of slope s the objective
    ``theta * s - lambda * (|s| - 1)^2`` also has a local maximum at ``s = theta / (2 lambda) - 1``
    (negative for theta < 2 lambda), which a critic initialized with the wrong sign climbs.
    """
    real, fake = sampler(args.geometry, theta, args.std), sampler(args.geometry, 0.0, args.std)
    held_out = real(args.eval_samples), fake(args.eval_samples)
    row = {"separation": theta}
    for key, model in models.items():
        common.train_critic(model, real, fake, args.steps, args.batch_size)
        row[f"{key}_estimate"] = common.divergence_estimates(model, *held_out)[key]
    row["js_exact"], row["w1_exact"] = exact_values(args.geometry, theta, args.std)
    return row


def plot(rows: Sequence[dict[str, Any]], path: Path, args: argparse.Namespace) -> Path:
    """JS (left) saturating at log 2 and W1 (right) growing with the separation."""
    theta = np.array([r["separation"] for r in rows])
    fine = np.linspace(theta.min(), theta.max(), 200)
    fig = new_figure(figsize=(10, 4))
    (ax_js, ax_w1) = fig.subplots(1, 2)
    exact = "exact (numeric)" if args.geometry == "gaussians" else "exact (log 2 for θ ≠ 0)"
    ax_js.plot(theta, [r["js_exact"] for r in rows], "-", color="C0", label=exact)
    ax_js.plot(theta, [r["js_estimate"] for r in rows], "o", color="C0", label="MinimaxGAN D")
    ax_js.axhline(math.log(2.0), ls=":", color="gray", label="log 2")
    ax_js.set(xlabel="separation θ", ylabel="JS divergence (nats)", title="Jensen-Shannon")
    ax_w1.plot(theta, [r["w1_exact"] for r in rows], "-", color="C1", label="exact |θ|")
    ax_w1.plot(theta, [r["w1_estimate"] for r in rows], "o", color="C1", label="WGAN-GP critic")
    # For a linear critic of slope s the GP costs lambda (s - 1)^2 and the dual gap is s * theta,
    # so the penalized optimum has s = 1 + theta / (2 lambda): the estimate overshoots W1.
    gp = args.gp_weight
    if gp > 0:
        ax_w1.plot(fine, fine * (1 + fine / (2 * gp)), "--", color="C1", alpha=0.5,
                   label=f"GP optimum θ(1 + θ/2λ), λ={gp:g}")  # fmt: skip
    ax_w1.set(xlabel="separation θ", ylabel="W1", title="Wasserstein-1")
    kind = f"1-D Gaussians, std {args.std:g}" if args.geometry == "gaussians" else "parallel lines"
    fig.suptitle(f"Divergence estimates of trained critics vs exact values ({kind})")
    for ax in (ax_js, ax_w1):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(argv: Sequence[str] | None = None) -> list[dict[str, float]]:
    cli = common.parser("js_vs_w1", __doc__.splitlines()[0])
    cli.add_argument("--geometry", choices=("gaussians", "lines"), default="gaussians")
    cli.add_argument("--std", type=float, default=0.5, help="std of the Gaussians")
    cli.add_argument("--num-separations", type=int, default=21, help="thetas in [0, --max]")
    cli.add_argument("--max", type=float, default=10.0, help="largest separation")
    cli.add_argument("--steps", type=int, default=600, help="critic steps per theta and model")
    cli.add_argument("--batch-size", type=int, default=256)
    cli.add_argument("--lr", type=float, default=1e-3, help="critic learning rate")
    cli.add_argument("--hidden", type=int, default=64, help="critic width (2 hidden layers)")
    cli.add_argument("--gp-weight", type=float, default=10.0, help="WGAN-GP lambda")
    cli.add_argument("--eval-samples", type=int, default=20_000)
    args = cli.parse_args(argv)
    if args.quick:
        args.num_separations, args.steps, args.eval_samples = 3, 20, 1000
    common.setup(args)
    start = time.perf_counter()
    rows, models = [], critics(args)
    for theta in np.linspace(0.0, args.max, args.num_separations):
        rows.append(measure(args, float(theta), models))
        print(", ".join(f"{k}={v:.4f}" for k, v in rows[-1].items()), flush=True)
    common.write_csv(rows, args.out / "js_vs_w1.csv", COLUMNS)
    plot(rows, args.out / "js_vs_w1.png", args)
    print(f"wrote {args.out}/js_vs_w1.{{csv,png}} in {time.perf_counter() - start:.0f} s")
    return rows


if __name__ == "__main__":
    main()
