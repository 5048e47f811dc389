"""Three ways to a 1-Lipschitz critic: weight clipping, gradient penalty, spectral norm.

The data are ring8 (8 Gaussians on the unit circle, std 0.01, as ``data=toy2d``); the
"generator" is held fixed at the data plus unit Gaussian noise, the setting of Gulrajani et al.
2017, Fig. 1. Each critic is trained to near-optimum with its variant's own hooks:

- ``clip``: :class:`~gan_zoo.models.WGANClip`, c = 0.01 (Arjovsky et al. 2017);
- ``gp``: :class:`~gan_zoo.models.WGANGP`, lambda = 10 (Gulrajani et al. 2017);
- ``sn_hinge``: :class:`~gan_zoo.models.SNGAN` as shipped, hinge loss (Miyato et al. 2018);
- ``sn_wgan``: the WGAN loss on a spectral-normalized critic (``WGANGP`` with lambda = 0 and
  ``apply_spectral_norm``), to separate the constraint from the loss.

For each, the dual gap ``E_P[f] - E_Q[f]`` (the variant's ``divergence/w1``) is compared with the
exact W1 between the same held-out samples (``ot.emd2``), alongside the monitor's statistics
(:func:`gan_zoo.callbacks.lipschitz.critic_report`).

    python -m gan_zoo.experiments.lipschitz --out docs/img
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import ot
import torch
from torch import Tensor

from gan_zoo.callbacks.lipschitz import critic_report, eval_mode
from gan_zoo.data.toy import MIXTURES, sample_mixture
from gan_zoo.experiments import common
from gan_zoo.models import GAN, SNGAN, WGANGP, WGANClip, apply_spectral_norm
from gan_zoo.plotting import new_figure

COLUMNS = (
    "critic",
    "w1_estimate",
    "w1_exact",
    "grad_norm_mean",
    "grad_norm_std",
    "grad_norm_max",
    "frac_grad_above_1",
    "weights_abs_max",
    "sigma_product",
)
CLIP_VALUE = 0.01


def build_critics(args: argparse.Namespace) -> dict[str, GAN]:
    """The four critics, each a real variant around the same MLP architecture."""
    build = {"in_dim": 2, "hidden": args.hidden, "depth": 3, "lr": args.lr}
    sn_wgan = common.critic_model(WGANGP, gp_weight=0.0, **build)
    apply_spectral_norm(sn_wgan.discriminator)
    return {
        "clip": common.critic_model(WGANClip, clip_value=CLIP_VALUE, **build),
        "gp": common.critic_model(WGANGP, gp_weight=10.0, **build),
        "sn_hinge": common.critic_model(SNGAN, loss="hinge", **build),
        "sn_wgan": sn_wgan,
    }


def exact_w1(real: Tensor, fake: Tensor) -> float:
    """W1 between the two empirical measures ``(N, 2)``, ``(M, 2)``: exact OT with POT."""
    cost = ot.dist(real.double().numpy(), fake.double().numpy(), metric="euclidean")
    return float(
        ot.emd2(np.full(len(real), 1 / len(real)), np.full(len(fake), 1 / len(fake)), cost)
    )


def measure(name: str, model: GAN, real: Tensor, fake: Tensor, w1: float) -> dict[str, Any]:
    """One CSV row, plus the raw gradient norms and weights for the plot."""
    estimate = common.divergence_estimates(model, real, fake)["w1"]
    clip = getattr(model, "clip_value", None)
    scalars, raw = critic_report(model.discriminator, real, fake, clip)
    return {
        "critic": name,
        "w1_estimate": estimate,
        "w1_exact": w1,
        "grad_norm_mean": scalars["grad_norm/interpolated/mean"],
        "grad_norm_std": scalars["grad_norm/interpolated/std"],
        "grad_norm_max": scalars["grad_norm/interpolated/max"],
        "frac_grad_above_1": scalars["grad_norm/interpolated/frac_above_1"],
        "weights_abs_max": scalars["weights/abs_max"],
        "sigma_product": scalars["sigma_product"],
        "sigmas": [v for k, v in scalars.items() if k.startswith("sigma_max/")],
        "raw": raw,
        "model": model,
    }


def _surface(ax: Any, model: GAN, real: Tensor, title: str, lim: float = 2.5) -> None:
    grid = torch.linspace(-lim, lim, 120)
    xx, yy = torch.meshgrid(grid, grid, indexing="xy")
    points = torch.stack([xx.flatten(), yy.flatten()], dim=1)  # (120*120, 2)
    with torch.no_grad(), eval_mode(model.discriminator) as critic:
        values = critic(points).reshape(xx.shape)
    ax.contourf(xx.numpy(), yy.numpy(), values.numpy(), levels=30, cmap="viridis")
    ax.scatter(real[:500, 0], real[:500, 1], s=2, c="white")
    ax.set(title=title, aspect="equal", xticks=[], yticks=[])


def plot(rows: Sequence[dict[str, Any]], real: Tensor, path: Path) -> Path:
    """Critic value surfaces (top); gradient norms, W1, weights and singular values (bottom)."""
    fig = new_figure(figsize=(4 * len(rows), 8))
    axes = fig.subplots(2, len(rows))
    for ax, row in zip(axes[0], rows):
        _surface(ax, row["model"], real, f"{row['critic']}: critic values")
    ax_grad, ax_w1, ax_w, ax_sigma = axes[1]
    bins = np.logspace(-4, 1, 61)  # the critics' gradient scales differ by orders of magnitude
    for row in rows:
        norms = row["raw"]["grad_norm/interpolated"].clamp(1e-4, 10).numpy()
        ax_grad.hist(norms, bins=bins, alpha=0.5, label=row["critic"])
        ax_sigma.plot(row["sigmas"], "o-", label=row["critic"])
    ax_grad.axvline(1.0, ls=":", color="gray")
    ax_grad.set(title="‖∇ₓD‖ on interpolates", xlabel="gradient norm", xscale="log")
    clip = next(r for r in rows if r["critic"] == "clip")
    ax_w.hist(clip["raw"]["weights"].numpy(), bins=60, log=True, label="clip")
    for c in (-CLIP_VALUE, CLIP_VALUE):
        ax_w.axvline(c, ls=":", color="gray")
    ax_w.set(title=f"clipped critic's weights (c = {CLIP_VALUE})", xlabel="weight value")
    x = np.arange(len(rows))
    bars = ax_w1.bar(x, [r["w1_estimate"] for r in rows], 0.6, label="dual gap E_P[f] - E_Q[f]")
    ax_w1.bar_label(bars, fmt="%.3g")
    ax_w1.axhline(rows[0]["w1_exact"], color="k", ls="--", label="exact W1 (ot.emd2)")
    ax_w1.set(title="W1 estimates", xticks=x, xticklabels=[r["critic"] for r in rows])
    ax_sigma.set(title="largest singular value per layer", xlabel="layer", yscale="log")
    for ax in (ax_grad, ax_w1, ax_w, ax_sigma):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    cli = common.parser("lipschitz", __doc__.splitlines()[0])
    cli.add_argument("--steps", type=int, default=2000, help="critic steps per critic")
    cli.add_argument("--batch-size", type=int, default=256)
    cli.add_argument("--lr", type=float, default=1e-3, help="critic learning rate")
    cli.add_argument("--hidden", type=int, default=128, help="critic width (3 hidden layers)")
    cli.add_argument("--eval-samples", type=int, default=2000, help="held-out points (OT is N^2)")
    args = cli.parse_args(argv)
    if args.quick:
        args.steps, args.eval_samples = 20, 200
    common.setup(args)
    start = time.perf_counter()
    modes, std = MIXTURES["ring8"]
    rng = np.random.default_rng(args.seed)

    def sample_real(n: int) -> Tensor:
        return sample_mixture(modes, std, n, rng)[0]  # (n, 2)

    def sample_fake(n: int) -> Tensor:
        return sample_real(n) + torch.randn(n, 2)  # data + N(0, I), Gulrajani et al. Fig. 1

    real, fake = sample_real(args.eval_samples), sample_fake(args.eval_samples)
    w1 = exact_w1(real, fake)
    rows = []
    for name, model in build_critics(args).items():
        common.train_critic(model, sample_real, sample_fake, args.steps, args.batch_size)
        rows.append(measure(name, model, real, fake, w1))
        print(", ".join(f"{k}={rows[-1][k]:.4g}" for k in COLUMNS[1:]), name, flush=True)
    common.write_csv(rows, args.out / "lipschitz.csv", COLUMNS)
    plot(rows, real, args.out / "lipschitz.png")
    print(f"wrote {args.out}/lipschitz.{{csv,png}} in {time.perf_counter() - start:.0f} s")
    return rows


if __name__ == "__main__":
    main()
