"""Watch the critic's Lipschitz constant: input-gradient norms, weights and singular values.

The Kantorovich-Rubinstein dual behind WGAN needs a 1-Lipschitz critic (Arjovsky et al. 2017,
Eq. 2). Weight clipping, the gradient penalty (Gulrajani et al. 2017) and spectral norm
(Miyato et al. 2018) enforce it in different ways, and this monitor shows how well each does:

- ``||grad_x D(x)||`` on real, fake and interpolated points: the penalty targets 1 on the
  interpolates; values above 1 violate the constraint.
- the critic's weights: clipping piles them up at ``+-c`` (Gulrajani et al. 2017, Fig. 1b).
- every layer's operator norm, the largest singular value of the linear map the layer computes
  on its actual input (:mod:`gan_zoo.operator_norms`); their product bounds the Lipschitz
  constant of a plain feed-forward Linear/Conv stack with 1-Lipschitz activations.
- every layer's weight reshaped to a matrix and its largest singular value: what spectral norm
  divides by and holds at 1. For a conv it is not the layer's operator norm, which can be up to
  ``sqrt(kh * kw)`` times larger (Sedghi et al. 2019; Tsuzuku et al. 2018).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch import Tensor, nn

from gan_zoo.compat import ConvTransposeNd
from gan_zoo.operator_norms import WEIGHTED, operator_norms, recorded_input_shapes
from gan_zoo.penalties import eval_mode, input_gradient_norms, interpolate, pack_of
from gan_zoo.validation import NonNegativeInt, PositiveInt, validated


def weight_matrices(module: nn.Module) -> dict[str, Tensor]:
    """Each Linear/Conv layer's weight as the forward pass uses it, reshaped to a matrix.

    Spectral-normalized layers give the normalized weight (call this in eval mode, or reading it
    runs a power iteration). A conv kernel ``(out, in, kh, kw)`` becomes ``(out, in * kh * kw)``
    (a ConvTranspose kernel is reshaped along its output channels), the matrix SN-GAN normalizes
    (Miyato et al. 2018, Sec. 2.1); its norm is not the operator norm of the convolution itself
    (Sedghi et al. 2019), see :func:`gan_zoo.operator_norms.operator_norms`.
    """
    matrices = {}
    for name, layer in module.named_modules():
        if isinstance(layer, WEIGHTED):
            weight = layer.weight.detach()
            if isinstance(layer, ConvTransposeNd):
                weight = weight.transpose(0, 1)  # (in, out, ...) -> (out, in, ...)
            matrices[name or type(layer).__name__] = weight.flatten(start_dim=1)
    return matrices


def reshaped_spectral_norms(module: nn.Module) -> dict[str, float]:
    """Largest singular value (exact SVD) of every matrix in :func:`weight_matrices`.

    What spectral normalization divides by; the operator norm for Linear layers, not for convs.
    """
    return {
        name: torch.linalg.matrix_norm(w.float(), ord=2).item()
        for name, w in weight_matrices(module).items()
    }


def summarize(values: Tensor, prefix: str) -> dict[str, float]:
    """Mean, std, min, max and the fraction above 1 of ``(N,)`` gradient norms."""
    values = values.detach().float()
    return {
        f"{prefix}/mean": values.mean().item(),
        f"{prefix}/std": values.std(unbiased=False).item(),
        f"{prefix}/min": values.min().item(),
        f"{prefix}/max": values.max().item(),
        f"{prefix}/frac_above_1": (values > 1.0).float().mean().item(),
    }


def weight_summary(weights: Tensor, clip_value: float | None = None) -> dict[str, float]:
    """Summary of flattened weights ``(N,)``; with ``clip_value`` the fraction at ``+-c``.

    "At ``+-c``" means within 0.1% of it, so clamped weights count and free ones do not.
    """
    stats = {"std": weights.std(unbiased=False).item(), "abs_max": weights.abs().max().item()}
    if clip_value is not None:
        at_clip = weights.abs() >= clip_value * (1 - 1e-3)
        stats["frac_at_clip"] = at_clip.float().mean().item()
    return stats


def critic_report(
    discriminator: nn.Module,
    real: Tensor,
    fake: Tensor,
    clip_value: float | None = None,
    norm_iterations: int = 50,
) -> tuple[dict[str, float], dict[str, Tensor]]:
    """Everything the monitor logs, measured in eval mode on ``(B, *S)`` real and fake points.

    Returns the scalars and the raw per-point gradient norms and flat weights. The scalars are
    ``grad_norm/{real,fake,interpolated}/*``, ``weights/*``, and per Linear/Conv layer:

    - ``sigma_max/<layer>``: the layer's operator norm at the input shape the forward on
      ``real`` gave it (exact for Linear, ``norm_iterations`` Lanczos steps for convs), and
      ``sigma_product``, their product: an upper bound on the Lipschitz constant of a
      feed-forward stack of these layers and 1-Lipschitz activations (no normalization layers
      or skip connections, each layer run once);
    - ``sigma_reshaped_weight/<layer>``: the reshaped weight's norm, what spectral norm divides
      by; no bound follows from it for convs.
    """
    with eval_mode(discriminator):
        with recorded_input_shapes(discriminator) as shapes:
            real_norms = input_gradient_norms(discriminator, real)
        norms = {
            "real": real_norms,
            "fake": input_gradient_norms(discriminator, fake),
            "interpolated": input_gradient_norms(
                discriminator, interpolate(real, fake, pack=pack_of(discriminator))
            ),
        }
        sigmas = operator_norms(discriminator, shapes, norm_iterations)
        reshaped = reshaped_spectral_norms(discriminator)
        weights = torch.cat([w.flatten() for w in weight_matrices(discriminator).values()])
    scalars: dict[str, float] = {}
    for kind, values in norms.items():
        scalars.update(summarize(values, f"grad_norm/{kind}"))
    scalars.update({f"sigma_max/{name}": s for name, s in sigmas.items()})
    scalars["sigma_product"] = float(torch.tensor(list(sigmas.values())).prod())
    scalars.update({f"sigma_reshaped_weight/{name}": s for name, s in reshaped.items()})
    scalars.update({f"weights/{k}": v for k, v in weight_summary(weights, clip_value).items()})
    return scalars, {**{f"grad_norm/{k}": v for k, v in norms.items()}, "weights": weights}


class LipschitzMonitor(pl.Callback):
    """Every ``every_n_steps`` generator steps, log :func:`critic_report` under ``lipschitz/``.

    The real points are the current training batch (its first ``num_points`` rows), the fakes
    are fresh samples of the generator being trained (not its EMA copy). Scalars go to every
    logger (CSV included, with ``weights/frac_at_clip`` for critics that have a ``clip_value``);
    the gradient norms and weights also go out as histograms to W&B (``wandb.Histogram``) and
    TensorBoard (``add_histogram``).

    Measuring changes nothing in training: eval mode (see :func:`eval_mode`) and a forked RNG
    leave a run with the monitor identical to one without.

    DDP: it measures and logs on global rank 0 only, and what it runs there needs no collective:
    the critic is called as a plain module (gan_zoo's DDP strategy has no wrapper; Lightning's
    DDP wrapper is bypassed), in eval mode (no SyncBatchNorm all-reduce), and only input
    gradients are taken (no parameter gradient for an all-reduce or a DDP hook to act on). The
    other ranks return at once, so no rank waits on another.

    Args:
        every_n_steps: interval in generator steps (``trainer.global_step``); 0 disables it.
        num_points: at most this many real (and as many fake) points per measurement.
        norm_iterations: iteration steps for each conv layer's operator norm (Lanczos, see
            :func:`gan_zoo.operator_norms.top_singular_value`).
    """

    @validated
    def __init__(
        self,
        every_n_steps: NonNegativeInt = 100,
        num_points: PositiveInt = 256,
        norm_iterations: PositiveInt = 50,
    ) -> None:
        self.every_n_steps, self.num_points = every_n_steps, num_points
        self.norm_iterations = norm_iterations
        self.last_scalars: dict[str, float] = {}

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if not (self.every_n_steps and step % self.every_n_steps == 0 and trainer.is_global_zero):
            return
        real = batch[0] if isinstance(batch, (list, tuple)) else batch  # (n_critic * B, *S)
        real = real[: self.num_points]
        cuda = [real.device] if real.device.type == "cuda" else []
        # A private RNG stream: with or without the monitor, training draws the same numbers.
        with torch.random.fork_rng(devices=cuda):
            fake = _training_fakes(pl_module, real)  # (n, *S)
            clip_value = getattr(pl_module, "clip_value", None)
            critic = pl_module.discriminator
            scalars, raw = critic_report(critic, real, fake, clip_value, self.norm_iterations)
        self.last_scalars = scalars
        _log(trainer, {f"lipschitz/{k}": v for k, v in scalars.items()}, raw, step)


@torch.no_grad()
def _training_fakes(pl_module: Any, real: Tensor) -> Tensor:
    """As many fakes as ``real`` rows from the generator D trains against (not the EMA copy).

    Eval mode, so that BatchNorm in the generator keeps its running statistics.
    """
    z = torch.randn(real.shape[0], pl_module.latent_dim, device=real.device)  # the loop's noise
    with eval_mode(pl_module.generator) as generator:
        return generator(z).to(real.dtype)


def _log(trainer: pl.Trainer, scalars: dict[str, float], raw: dict[str, Tensor], step: int) -> None:
    for logger in trainer.loggers:
        logger.log_metrics(scalars, step=step)
        if isinstance(logger, WandbLogger):
            import wandb

            # numpy, not .tolist(): a conv critic has millions of weights (wandb bins either)
            hists = {
                f"lipschitz/{k}": wandb.Histogram(v.cpu().numpy())  # type: ignore[arg-type]
                for k, v in raw.items()
            }
            logger.experiment.log({**hists, "trainer/global_step": step})
        elif isinstance(logger, TensorBoardLogger):
            for key, values in raw.items():
                logger.experiment.add_histogram(f"lipschitz/{key}", values.cpu(), step)
