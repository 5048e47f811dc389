"""The n_critic training loop shared by every GAN variant, and nothing else.

One Lightning ``training_step`` is one generator step: ``n_critic`` critic steps, each on its
own fresh real batch, then one generator step (Arjovsky et al. 2017, Algorithm 1). So
``batch_idx``, ``trainer.global_step``, ``max_steps``, ``log_every_n_steps``, checkpoint intervals,
the progress bar and every callback's ``on_train_batch_end`` count generator steps, as papers do.

A variant is a subclass that overrides some of four hooks:

- ``discriminator_loss(real_scores, fake_scores)``
- ``generator_loss(fake_scores)``
- ``discriminator_penalty(real, fake)`` (zero by default)
- ``after_discriminator_step()`` (no-op by default)

and, to log what its discriminator measures, ``divergence_estimates(real_scores, fake_scores)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import annotated_types as at
import lightning.pytorch as pl
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from pydantic import Strict
from torch import Tensor, nn

from gan_zoo.compat import logs_flushed_this_step
from gan_zoo.compiled import compile_nets
from gan_zoo.distributed import GANDDPStrategy, all_reduce_, check_strategy, reseed_for_rank
from gan_zoo.ema import ema_update, make_ema
from gan_zoo.errors import ConfigValueError, check
from gan_zoo.optim import OptimizerFactory, check_optimizer, linear_lr_decay
from gan_zoo.replay import ReplayBuffer
from gan_zoo.validation import Fraction, NonNegativeInt, PositiveInt, StrictBool, validated

Decay = Annotated[float, Strict(), at.Ge(0), at.Lt(1)]


class GAN(pl.LightningModule):
    """Manual-optimization GAN: per training step, ``n_critic`` critic steps then one G step.

    A training batch holds ``n_critic * B`` real samples (gan_zoo's DataModules size their loader
    so; ``data.batch_size`` is ``B``); it is split into ``n_critic`` batches of ``B``, one per
    critic step. Critic steps go through the strategy's ``optimizer_step`` (precision plugin,
    gradient clipping and ``on_before_optimizer_step`` hooks included) but not through
    ``LightningOptimizer.step``, which would count each of them as a global step (Lightning
    issue 17958); only the generator's step counts.

    Args:
        generator: maps ``(B, latent_dim)`` noise to ``(B, *S)`` samples.
        discriminator: maps ``(B, *S)`` samples to ``(B,)`` scores.
        latent_dim: size of the noise vector.
        n_critic: discriminator steps per generator step (the variant's paper default if None).
        generator_optimizer: ``params -> Optimizer`` (e.g. a ``functools.partial``); the
            variant's paper default when omitted.
        discriminator_optimizer: likewise for the discriminator.
        replay_size: if > 0, keep this many past fakes and train D on a mix of current and past
            fakes (Shrivastava et al. 2017); 0 disables the buffer.
        replay_ratio: fraction of each fake batch drawn from the buffer (see ``ReplayBuffer``).
        ema_decay: if > 0, keep an exponential moving average of the generator, used by
            :meth:`sample` (and so by metrics); 0 disables it.
        penalty_every: compute ``discriminator_penalty`` on every k-th critic step only, scaled
            by k (lazy regularization, Karras et al. 2020, StyleGAN2 Sec. 3.1).
        lr_decay_steps: if set, decay both learning rates linearly to 0 over this many
            generator steps (the WGAN-GP and SN-GAN CIFAR-10 schedules).
        compile: run G and D forwards through ``torch.compile`` (see ``gan_zoo.compiled``).

    >>> from gan_zoo.nets import MLPGenerator, MLPDiscriminator
    >>> from gan_zoo.models import NonSaturatingGAN
    >>> gan = NonSaturatingGAN(MLPGenerator(latent_dim=2), MLPDiscriminator(), latent_dim=2)
    >>> gan.sample(5).shape
    torch.Size([5, 2])
    """

    # Paper defaults; a variant overrides these class attributes.
    default_optimizer: OptimizerFactory = functools.partial(
        torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999)
    )
    default_n_critic: int = 1

    @validated
    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        latent_dim: PositiveInt,
        n_critic: PositiveInt | None = None,
        generator_optimizer: OptimizerFactory | None = None,
        discriminator_optimizer: OptimizerFactory | None = None,
        replay_size: NonNegativeInt = 0,
        replay_ratio: Fraction = 0.5,
        ema_decay: Decay = 0.0,
        penalty_every: PositiveInt = 1,
        lr_decay_steps: PositiveInt | None = None,
        compile: StrictBool = False,
    ) -> None:
        super().__init__()
        net_latent = getattr(generator, "latent_dim", latent_dim)
        valid = f"{net_latent}, the generator's (configs: set net.latent_dim, which sets both)"
        check(net_latent == latent_dim, "latent_dim", latent_dim, valid)
        self.automatic_optimization = False
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim = latent_dim
        self.n_critic = self.default_n_critic if n_critic is None else n_critic
        self.generator_optimizer = generator_optimizer or self.default_optimizer
        self.discriminator_optimizer = discriminator_optimizer or self.default_optimizer
        check_optimizer(self.generator_optimizer, "generator_optimizer")
        check_optimizer(self.discriminator_optimizer, "discriminator_optimizer")
        self.replay = ReplayBuffer(replay_size, replay_ratio) if replay_size else None
        self.ema_decay, self.penalty_every = ema_decay, penalty_every
        self.lr_decay_steps = lr_decay_steps
        self.generator_ema = make_ema(generator) if ema_decay > 0 else None
        self.compile_nets = compile  # not `self.compile`: that is nn.Module.compile()
        self._compiled: dict[str, Callable[[Tensor], Tensor]] = {}  # a dict: not submodules
        self._last_penalty: Tensor | None = None

    # ----------------------------------------------------------------- hooks for variants
    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        """Scalar loss the discriminator minimizes; scores are ``(B,)``."""
        raise NotImplementedError(f"{type(self).__name__} must define discriminator_loss")

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        """Scalar loss the generator minimizes; scores are ``(B,)``."""
        raise NotImplementedError(f"{type(self).__name__} must define generator_loss")

    def discriminator_penalty(self, real: Tensor, fake: Tensor) -> Tensor:
        """Regularizer added to the discriminator loss; ``real``/``fake`` are ``(B, *S)``."""
        return real.new_zeros(())

    def after_discriminator_step(self) -> None:
        """Runs after every discriminator optimizer step (e.g. weight clipping)."""

    def divergence_estimates(self, real_scores: Tensor, fake_scores: Tensor) -> dict[str, Tensor]:
        """Divergences implied by the discriminator's objective, logged as ``divergence/<name>``.

        Computed from the scores of the last critic step of each generator step: ``(B,)`` real
        scores and the ``(B - n_old,)`` scores of the current generator's fakes (with replay on,
        the ``n_old`` pooled fakes are left out, so the estimate is against P_G, not a mixture of
        past generators).
        """
        return {}

    # ----------------------------------------------------------------------- the loop
    def forward(self, z: Tensor) -> Tensor:
        """``(B, latent_dim)`` noise to ``(B, *S)`` samples."""
        return self.generator(z)

    def configure_optimizers(self) -> Any:
        optimizers = [
            self.discriminator_optimizer(self.discriminator.parameters()),
            self.generator_optimizer(self.generator.parameters()),
        ]
        if self.lr_decay_steps is None:
            return optimizers
        return optimizers, linear_lr_decay(optimizers, self.lr_decay_steps)

    def on_fit_start(self) -> None:
        # Python users build their own Trainer: a wrapping strategy would skip our all-reduce.
        check_strategy(self.trainer.strategy)
        reseed_for_rank(self.trainer.global_rank)
        if self.compile_nets:
            self._compiled = compile_nets(self.generator, self.discriminator)

    def critic_batches(self, batch: Tensor | Sequence[Tensor]) -> list[Tensor]:
        """Split a training batch ``(n_critic * B, *S)`` into ``n_critic`` batches ``(B, *S)``.

        A ``(x, y)`` batch is split on ``x`` (labels are not used by unconditional variants).
        """
        real = batch[0] if isinstance(batch, (list, tuple)) else batch
        assert isinstance(real, Tensor)
        rows = real.shape[0]
        if rows % self.n_critic:
            raise ConfigValueError(
                "batch",
                f"{rows} samples",
                f"n_critic x B samples, {self.n_critic} critic batches of equal size (gan_zoo's "
                "DataModules size their loader so; a loader of your own must too)",
            )
        return list(real.split(rows // self.n_critic))

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        """One generator step: ``n_critic`` critic steps, each on its own real batch, then G.

        Returns the detached losses (``d_loss`` and ``penalty`` of the last critic step,
        ``g_loss``), which callbacks receive as ``outputs``. On the steps whose logs Lightning
        flushes (``log_every_n_steps``) they are logged, with the divergence estimates, on the
        generator-step axis (``step`` = ``global_step`` after the update).
        """
        d_opt, g_opt = self.optimizers()  # type: ignore[misc, attr-defined]
        reals = self.critic_batches(batch)
        for index, real in enumerate(reals):
            d_loss, penalty, real_scores, fake_scores = self._discriminator_step(real, d_opt, index)
        g_loss = self._generator_step(reals[-1].shape[0], g_opt)
        losses = {"d_loss": d_loss, "penalty": penalty, "g_loss": g_loss}
        if logs_flushed_this_step(self.trainer):  # other steps' values would reach no logger
            logged: dict[str, Tensor | float] = {"step": float(self.global_step)}  # the axis
            logged |= {f"train/{k}": v for k, v in losses.items()}
            if len(fake_scores):  # the last critic step's, against P_G (see the hook)
                with torch.no_grad():
                    estimates = self.divergence_estimates(real_scores, fake_scores)
                logged |= {f"divergence/{k}": v for k, v in estimates.items()}
            self.log_dict(logged)  # tensors as they are: Lightning converts them when it flushes
        return losses

    def _discriminator_step(
        self, real: Tensor, opt: LightningOptimizer, index: int
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One critic step on ``real`` ``(B, *S)``; returns its detached loss and penalty, and the
        ``(B,)`` real scores and the current (not replayed) fakes' scores."""
        with torch.no_grad():
            fake = self._run("generator", self._noise(real.shape[0], real.device))
        n_old = 0  # the first n_old rows of `fake` are replayed past fakes
        if self.replay is not None:
            fake, n_old = self.replay.mix(fake)
        real_scores = self._run("discriminator", real)
        fake_scores = self._run("discriminator", fake)
        loss = self.discriminator_loss(real_scores, fake_scores)
        penalty = self._penalty(real, fake, self.global_step * self.n_critic + index)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss + penalty)
        self._sync(self.discriminator)
        # Through the strategy, not opt.step(): only generator steps count as global steps.
        self.trainer.strategy.optimizer_step(opt.optimizer, closure=_no_closure)
        self.after_discriminator_step()
        penalty = self._last_penalty if self._last_penalty is not None else penalty.detach()
        return loss.detach(), penalty, real_scores.detach(), fake_scores.detach()[n_old:]

    def _penalty(self, real: Tensor, fake: Tensor, critic_step: int) -> Tensor:
        """The hook's penalty, on every ``penalty_every``-th critic step only, scaled by k."""
        if critic_step % self.penalty_every:
            return real.new_zeros(())
        penalty = self.penalty_every * self.discriminator_penalty(real, fake)
        self._last_penalty = penalty.detach()
        return penalty

    def _generator_step(self, batch_size: int, opt: LightningOptimizer) -> Tensor:
        # Toggling freezes D's parameters, so the generator's backward skips their weight grads.
        with self.toggled_optimizer(opt):
            fake = self._run("generator", self._noise(batch_size, self.device))
            loss = self.generator_loss(self._run("discriminator", fake))
            opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            self._sync(self.generator)
            opt.step()
        if self.generator_ema is not None:
            ema_update(self.generator_ema, self.generator, self.ema_decay)
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if scheduler is not None:
                scheduler.step()
        return loss.detach()

    def _run(self, net: str, x: Tensor) -> Tensor:
        return self._compiled.get(net, getattr(self, net))(x)

    def _sync(self, module: nn.Module) -> None:
        if isinstance(self.trainer.strategy, GANDDPStrategy):
            all_reduce_(module)

    def grad_scale(self, device: torch.device) -> Tensor | None:
        """The loss scale of fp16 mixed precision (a device tensor), or None when unscaled.

        A penalty built from ``torch.autograd.grad`` must scale its outputs and unscale the
        gradients (PyTorch AMP recipe, "Gradient penalty"), see ``penalties.gradient_penalty``.
        """
        scaler = getattr(self.trainer.precision_plugin, "scaler", None) if self._trainer else None
        if scaler is None or not scaler.is_enabled():
            return None
        return scaler.scale(torch.ones((), device=device))

    def _noise(self, n: int, device: torch.device) -> Tensor:
        return torch.randn(n, self.latent_dim, device=device)  # (n, latent_dim)

    @torch.no_grad()
    def sample(self, n: int, batch_size: int = 256, z: Tensor | None = None) -> Tensor:
        """Draw ``n`` samples in data space (images in [-1, 1]) without grad, in batches.

        Uses the EMA generator when ``ema_decay > 0``. The generator runs in eval mode (BatchNorm
        uses running statistics) and its mode is restored afterwards. Returns a CPU tensor of
        shape ``(n, *S)``; pass ``z`` of shape ``(n, latent_dim)`` to choose the noise.
        """
        check(isinstance(n, int) and n >= 1, "n", n, "an integer >= 1")
        generator = self.generator_ema if self.generator_ema is not None else self.generator
        was_training = generator.training
        generator.eval()
        try:
            chunks = []
            for start in range(0, n, batch_size):
                count = min(batch_size, n - start)
                noise = self._noise(count, self.device) if z is None else z[start : start + count]
                chunks.append(generator(noise.to(self.device)).float().cpu())
            return torch.cat(chunks)
        finally:
            generator.train(was_training)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.replay is not None:
            checkpoint["replay_buffer"] = self.replay.state_dict_of_every_rank()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.replay is not None and "replay_buffer" in checkpoint:
            self.replay.load_rank_state(checkpoint["replay_buffer"], device=self.device)


def _no_closure() -> None:
    """The closure a manual-optimization step passes: the backward already ran."""
    return None
