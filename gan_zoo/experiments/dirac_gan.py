"""The Dirac-GAN of Mescheder et al. 2018 ("Which Training Methods for GANs Actually Converge?",
Sec. 2-4): which training methods reach the equilibrium.

P_data = delta_0 on the line, the generator is ``G(z) = theta`` (it ignores z) and the
discriminator ``D(x) = psi * x`` (no bias). The unique equilibrium is ``(theta, psi) = (0, 0)``.
Every method is a real variant class trained by the real loop through a Lightning ``Trainer`` on
a DataModule of zeros, with plain SGD at the same learning rate for both nets and every method
(the paper analyses gradient descent; the variants' paper optimizers are overridden). A callback
records ``(theta, psi)`` after every generator step.

Defaults are those of the authors' Dirac-GAN notebook (GAN_stability, ``notebooks/DiracGAN.ipynb``:
step size 0.2, 500 steps, start (1, 1), clip 1, WGAN-GP ``reg`` 0.7 on a target norm 1, instance
noise std 0.7, gradient penalty 0.3); ``--help`` lists the knobs, docs/theory.md what they change.

Sign convention: gan_zoo's discriminators score data *high* (D minimizes
``softplus(-D(x)) + softplus(D(G(z)))``), the paper's score it low (its Eq. 1 with
``f(t) = -log(1 + exp(-t))``), so ``psi`` here is minus the paper's ``psi``, and the default start
``(1, -1)`` is the paper's ``(1, 1)``: the same dynamics, mirrored in ``psi``.

    python -m gan_zoo.experiments.dirac_gan --out docs/img
"""

from __future__ import annotations

import argparse
import functools
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from gan_zoo import losses
from gan_zoo.augment import InstanceNoise
from gan_zoo.experiments import common
from gan_zoo.models import GAN, R1GAN, WGANGP, MinimaxGAN, NonSaturatingGAN, WGANClip
from gan_zoo.plotting import new_figure

COLUMNS = ("method", "step", "theta", "psi")


class DiracGenerator(nn.Module):
    """``G(z) = theta`` for every z: ``(B, 1)`` noise to ``(B, 1)`` copies of one parameter."""

    def __init__(self, theta: float) -> None:
        super().__init__()
        self.latent_dim, self.output_shape = 1, (1,)  # what gan_zoo's nets declare
        self.theta = nn.Parameter(torch.tensor([theta]))

    def forward(self, z: Tensor) -> Tensor:
        return self.theta.expand(z.shape[0], 1)  # (B, 1); its gradient sums over the batch


class LinearDiscriminator(nn.Module):
    """``D(x) = psi * x``: ``(B, 1)`` points to ``(B,)`` scores; ``grad_x D = psi`` everywhere."""

    def __init__(self, psi: float) -> None:
        super().__init__()
        self.input_shape, self.pack = (1,), 1
        self.psi = nn.Parameter(torch.tensor([psi]))

    def forward(self, x: Tensor) -> Tensor:
        return (x * self.psi).sum(dim=1)  # (B,)


class _ZeroBatches(Dataset[Tensor]):
    """``steps`` training batches of ``rows`` zeros, ``(rows, 1)`` each: samples of delta_0."""

    def __init__(self, steps: int, rows: int) -> None:
        self.steps, self.rows = steps, rows

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> Tensor:
        return torch.zeros(self.rows, 1)


class DiracDataModule(pl.LightningDataModule):
    """P_data = delta_0: one ``(n_critic * B, 1)`` batch of zeros per generator step, as the
    loop expects (it splits the batch into ``n_critic`` critic batches of ``B``)."""

    def __init__(self, steps: int, n_critic: int, batch_size: int) -> None:
        super().__init__()
        self.steps, self.rows = steps, n_critic * batch_size

    def train_dataloader(self) -> DataLoader[Tensor]:
        return DataLoader(_ZeroBatches(self.steps, self.rows), batch_size=None)


class TrajectoryRecorder(pl.Callback):
    """``(step, theta, psi)`` at the start and after every generator step."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float, float]] = []

    def _record(self, trainer: pl.Trainer, model: pl.LightningModule) -> None:
        theta = model.get_parameter("generator.theta").item()
        psi = model.get_parameter("discriminator.psi").item()
        self.points.append((trainer.global_step, theta, psi))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:  # fmt: skip
        self._record(trainer, pl_module)


@dataclass
class Method:
    """A CSV label, the variant class, and the constructor arguments it gets beyond the nets."""

    name: str
    variant: type[GAN]
    kwargs: dict[str, Any] = field(default_factory=dict)


def methods(args: argparse.Namespace) -> list[Method]:
    """The methods compared; each is named by its model config (``configs/model/<name>.yaml``),
    with a suffix where the setting differs from the config's (instance noise, n_critic)."""
    noise = {"augment": InstanceNoise(args.noise_std)}
    found = [
        Method("minimax_gan", MinimaxGAN),  # the paper's unregularized GAN (its Eq. 1)
        Method("ns_gan", NonSaturatingGAN),
        Method("r1_gan", R1GAN, {"r1_gamma": args.r1_gamma}),
        Method("ns_gan_instance_noise", NonSaturatingGAN, noise),
    ]
    for n_critic in args.n_critic:
        clip = {"clip_value": args.clip_value, "n_critic": n_critic}
        found.append(Method(f"wgan_clip_ncritic{n_critic}", WGANClip, clip))
    for n_critic in args.n_critic:
        gp = {"gp_weight": args.gp_weight, "n_critic": n_critic}
        found.append(Method(f"wgan_gp_ncritic{n_critic}", WGANGP, gp))
    return found


def train(method: Method, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train ``method`` for ``args.steps`` generator steps; one CSV row per recorded step."""
    pl.seed_everything(args.seed, verbose=False)  # the same instance noise for every run
    sgd = functools.partial(torch.optim.SGD, lr=args.lr)
    model = method.variant(
        DiracGenerator(args.theta0),
        LinearDiscriminator(args.psi0),
        latent_dim=1,
        generator_optimizer=sgd,
        discriminator_optimizer=sgd,
        **method.kwargs,
    )
    recorder = TrajectoryRecorder()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=args.steps, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[recorder])  # fmt: skip
    with warnings.catch_warnings():  # "few dataloader workers": the batches are zeros
        warnings.simplefilter("ignore", PossibleUserWarning)
        trainer.fit(model, datamodule=DiracDataModule(args.steps, model.n_critic, args.batch_size))
    return [{"method": method.name, "step": s, "theta": t, "psi": p} for s, t, p in recorder.points]


def unregularized_field(theta: Tensor, psi: Tensor) -> tuple[Tensor, Tensor]:
    """The gradient vector field ``(-dL_G/dtheta, -dL_D/dpsi)`` of the unregularized game
    (``MinimaxGAN``'s losses, the paper's Eq. 1) at every point of a ``(H, W)`` grid, computed
    with autograd through ``gan_zoo.losses``. Its only zero is (0, 0), where its Jacobian has
    eigenvalues ``+-i/2``: a pure rotation (Mescheder et al. 2018, Sec. 2)."""
    theta, psi = theta.detach().requires_grad_(True), psi.detach().requires_grad_(True)
    fake, real = (psi * theta).flatten(), (psi * 0.0).flatten()  # D(G(z)) and D(0)
    count = fake.numel()  # the losses average over the grid; each point wants its own gradient
    d_loss = count * losses.minimax_discriminator_loss(real, fake)
    g_loss = count * losses.minimax_generator_loss(fake)
    (d_psi,) = torch.autograd.grad(d_loss, psi, retain_graph=True)  # the graphs share `fake`
    (d_theta,) = torch.autograd.grad(g_loss, theta)
    return -d_theta, -d_psi


def distances(rows: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Each method's distance to the equilibrium ``sqrt(theta^2 + psi^2)`` over its steps."""
    found: dict[str, list[float]] = {}
    for row in rows:
        found.setdefault(row["method"], []).append(math.hypot(row["theta"], row["psi"]))
    return {name: np.array(values) for name, values in found.items()}


def summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method: start and final distance, the largest over the last fifth of the steps (a
    cycle shows there) and the final ``|theta|`` (the generator's own error)."""
    final = {row["method"]: row for row in rows}  # the last row of each method
    table = []
    for name, dist in distances(rows).items():
        tail = dist[-max(1, len(dist) // 5) :]
        theta = abs(final[name]["theta"])
        table.append({"method": name, "start": dist[0], "final": dist[-1],
                      "max_last_fifth": tail.max(), "final_abs_theta": theta})  # fmt: skip
    return table


def settings(args: argparse.Namespace) -> str:
    """The run's settings, one per line, for the figure."""
    return "\n".join([
        f"SGD lr {args.lr:g} (both nets)",
        f"start (θ, ψ) = ({args.theta0:g}, {args.psi0:g})",
        f"B = {args.batch_size} samples per batch",
        f"R1 γ = {args.r1_gamma:g}",
        f"instance noise std {args.noise_std:g}",
        f"WGAN clip c = {args.clip_value:g}",
        f"WGAN-GP λ = {args.gp_weight:g}",
        "vector field: minimax_gan",
    ])  # fmt: skip


def plot(rows: Sequence[dict[str, Any]], path: Path, args: argparse.Namespace) -> Path:
    """One panel per method, its trajectory over the unregularized game's vector field, and the
    distance to (0, 0) against generator steps for every method."""
    names = list(dict.fromkeys(row["method"] for row in rows))
    cols, lim = 3, args.plot_limit
    panels = -(-len(names) // cols)
    fig = new_figure(figsize=(4 * cols, 3.6 * panels + 4.5), constrained_layout=True)
    grid = fig.add_gridspec(panels + 1, cols, height_ratios=[1.0] * panels + [1.25])
    axis = torch.linspace(-lim, lim, 25)
    psi_grid, theta_grid = torch.meshgrid(axis, axis, indexing="ij")  # (25, 25): rows are psi
    v_theta, v_psi = unregularized_field(theta_grid, psi_grid)
    dist = distances(rows)
    for index, name in enumerate(names):
        ax = fig.add_subplot(grid[index // cols, index % cols])
        ax.streamplot(axis.numpy(), axis.numpy(), v_theta.numpy(), v_psi.numpy(),
                      color="0.75", density=0.8, linewidth=0.7, arrowsize=0.8)  # fmt: skip
        path_rows = [row for row in rows if row["method"] == name]
        ax.plot([r["theta"] for r in path_rows], [r["psi"] for r in path_rows], lw=0.9, color="C0")
        ax.plot(args.theta0, args.psi0, "o", color="C2", label="start")
        ax.plot(0.0, 0.0, "*", color="C3", ms=10, label="equilibrium")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="θ", ylabel="ψ", aspect="equal")
        ax.set_title(f"{name}\nfinal distance {dist[name][-1]:.3g}", fontsize=9)
    if len(names) % cols:  # a free panel: the settings
        ax = fig.add_subplot(grid[panels - 1, cols - 1])
        ax.axis("off")
        ax.text(0.0, 0.5, settings(args), va="center", family="monospace", fontsize=9)
    ax_dist = fig.add_subplot(grid[panels, :])
    for name in names:
        ax_dist.semilogy(np.arange(len(dist[name])), dist[name], lw=1.1, label=name)
    title = "distance to the equilibrium (0, 0), log scale"
    ax_dist.set(xlabel="generator step", ylabel="sqrt(θ² + ψ²)", title=title)
    ax_dist.grid(alpha=0.3, which="both")
    ax_dist.legend(fontsize=8, ncol=2)
    fig.suptitle("Dirac-GAN (Mescheder et al. 2018, Sec. 2-4): trajectories over the vector "
                 "field of the unregularized GAN")  # fmt: skip
    fig.savefig(path, dpi=100)
    return path


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    cli = common.parser("dirac_gan", __doc__.splitlines()[0])
    cli.add_argument("--steps", type=int, default=500, help="generator steps per method")
    cli.add_argument("--lr", type=float, default=0.2, help="SGD step of both nets, all methods")
    cli.add_argument("--theta0", type=float, default=1.0, help="start of the generator")
    cli.add_argument("--psi0", type=float, default=-1.0, help="start of D (the paper's -psi)")
    cli.add_argument("--batch-size", type=int, default=256, help="B: samples per critic batch")
    cli.add_argument("--n-critic", type=int, nargs="+", default=[1, 5], help="of the WGANs")
    cli.add_argument("--clip-value", type=float, default=1.0, help="WGAN clip c")
    cli.add_argument("--gp-weight", type=float, default=0.35, help="WGAN-GP lambda")
    cli.add_argument("--r1-gamma", type=float, default=0.3, help="R1 gamma")
    cli.add_argument("--noise-std", type=float, default=0.7, help="instance noise std")
    cli.add_argument("--plot-limit", type=float, default=2.0, help="half-width of the plane")
    cli.add_argument("--methods", nargs="+", help="run only these (names as in the CSV)")
    args = cli.parse_args(argv)
    if args.quick:
        args.steps = 100
    names = [m.name for m in methods(args)]
    unknown = sorted(set(args.methods or []) - set(names))
    if unknown:
        cli.error(f"--methods {' '.join(unknown)} is invalid: expected some of {', '.join(names)}")
    chosen = [m for m in methods(args) if args.methods is None or m.name in args.methods]
    common.setup(args)
    start = time.perf_counter()
    rows = [row for method in chosen for row in train(method, args)]
    common.write_csv(rows, args.out / "dirac_gan.csv", COLUMNS)
    plot(rows, args.out / "dirac_gan.png", args)
    print(common.markdown_table(summary(rows), ["method", "start", "final", "max_last_fifth",
                                                "final_abs_theta"]))  # fmt: skip
    print(f"wrote {args.out}/dirac_gan.{{csv,png}} in {time.perf_counter() - start:.0f} s")
    return rows


if __name__ == "__main__":
    main()
