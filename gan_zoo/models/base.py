"""The n_critic training loop shared by every GAN variant, and nothing else.

A variant is a subclass that overrides some of four hooks:

- ``discriminator_loss(real_scores, fake_scores)``
- ``generator_loss(fake_scores)``
- ``discriminator_penalty(real, fake)`` (zero by default)
- ``after_discriminator_step()`` (no-op by default)

and, to log what its discriminator measures, ``divergence_estimates(real_scores, fake_scores)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor, nn

from gan_zoo import loop_options
from gan_zoo.distributed import (
    GANDDPStrategy,
    all_reduce_,
    check_strategy,
    reseed_for_rank,
    uncounted,
)
from gan_zoo.ema import ema_update, make_ema
from gan_zoo.errors import check
from gan_zoo.loop_options import check_int
from gan_zoo.replay import ReplayBuffer

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class GAN(pl.LightningModule):
    """Manual-optimization GAN: ``n_critic`` discriminator steps, then one generator step.

    Each training batch feeds exactly one critic step, so every critic step sees a fresh real
    batch (Arjovsky et al. 2017, Algorithm 1). ``trainer.global_step`` counts *generator* steps
    only, so ``Trainer(max_steps=N)`` trains N generator steps and every log's step axis is the
    generator step, as in the papers.

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
        replay_ratio: fraction of each fake batch drawn from the buffer.
        ema_decay: if > 0, keep an exponential moving average of the generator, used by
            :meth:`sample` (and so by metrics); 0 disables it.
        penalty_every: compute ``discriminator_penalty`` on every k-th critic step only, scaled
            by k (lazy regularization, Karras et al. 2020, StyleGAN2 Sec. 3.1).
        lr_decay_steps: if set, decay both learning rates linearly to 0 over this many
            generator steps (the WGAN-GP and SN-GAN CIFAR-10 schedules).
        compile: run G and D forwards through ``torch.compile``. The gradient penalty keeps
            the eager discriminator, since double backward through compiled graphs is unsafe.

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

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        latent_dim: int,
        n_critic: int | None = None,
        generator_optimizer: OptimizerFactory | None = None,
        discriminator_optimizer: OptimizerFactory | None = None,
        replay_size: int = 0,
        replay_ratio: float = 0.5,
        ema_decay: float = 0.0,
        penalty_every: int = 1,
        lr_decay_steps: int | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        n_critic = self.default_n_critic if n_critic is None else n_critic
        check_int(n_critic, "n_critic", 1)
        check_int(latent_dim, "latent_dim", 1)
        check_int(replay_size, "replay_size", 0)
        check_int(penalty_every, "penalty_every", 1)
        if lr_decay_steps is not None:
            check_int(lr_decay_steps, "lr_decay_steps", 1)
        check(0.0 <= ema_decay < 1.0, "ema_decay", ema_decay, "a number in [0, 1)")
        net_latent = getattr(generator, "latent_dim", latent_dim)
        valid = f"{net_latent}, the generator's (configs: set net.latent_dim, which sets both)"
        check(net_latent == latent_dim, "latent_dim", latent_dim, valid)
        self.automatic_optimization = False
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim, self.n_critic = latent_dim, n_critic
        self.generator_optimizer = generator_optimizer or self.default_optimizer
        self.discriminator_optimizer = discriminator_optimizer or self.default_optimizer
        self.replay = ReplayBuffer(replay_size, replay_ratio) if replay_size else None
        self.ema_decay, self.penalty_every = ema_decay, penalty_every
        self.lr_decay_steps = lr_decay_steps
        self.generator_ema = make_ema(generator) if ema_decay > 0 else None
        self.compile_nets = compile  # not `self.compile`: that is nn.Module.compile()
        self._compiled: dict[str, Callable[[Tensor], Tensor]] = {}  # a dict: not submodules
        # Position inside the n_critic cycle: critic steps taken since the last generator step.
        self.critic_steps_in_cycle = 0
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

        Computed from the scores of the last critic step before each logged generator step:
        ``(B,)`` real scores and the ``(B - n_old,)`` scores of the current generator's fakes
        (with replay on, the ``n_old`` pooled fakes are left out, so the estimate is against
        P_G, not a mixture of past generators).
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
        return optimizers, loop_options.linear_lr_decay(optimizers, self.lr_decay_steps)

    def on_fit_start(self) -> None:
        # Python users build their own Trainer: a wrapping strategy would skip our all-reduce.
        check_strategy(self.trainer.strategy, "Trainer(strategy=...)")
        loop_options.log_every_generator_steps(self.trainer, self.n_critic)
        reseed_for_rank(self.trainer.global_rank)
        if self.compile_nets:
            self._compiled = loop_options.compile_nets(self.generator, self.discriminator)

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        """One critic step on ``batch``; every ``n_critic``-th call also one generator step.

        Returns the detached losses of this call (``d_loss``, ``penalty``, and ``g_loss`` on
        generator steps), which callbacks receive as ``outputs``.
        """
        real = batch[0] if isinstance(batch, (list, tuple)) else batch  # (B, *S)
        d_opt, g_opt = self.optimizers()  # type: ignore[misc, attr-defined]
        # Log only the cycles whose logs Lightning flushes: each `self.log` key costs ~0.3-0.5 ms
        # of host time (Lightning's result collection), and other steps' values never reach it.
        log_now = self.critic_steps_in_cycle + 1 == self.n_critic
        log_now = log_now and loop_options.logs_flushed(self._trainer, self.global_step + 1)
        d_loss, penalty, estimates = self._discriminator_step(real, d_opt, log_now)
        self.critic_steps_in_cycle += 1
        if self.critic_steps_in_cycle < self.n_critic:
            return {"d_loss": d_loss, "penalty": penalty}
        self.critic_steps_in_cycle = 0
        g_loss = self._generator_step(real.shape[0], g_opt)
        if log_now:
            # `step` sets the logger's x-axis; after the optimizer step global_step == generator
            # steps. Tensors are logged as they are: Lightning converts them when it flushes.
            self.log("step", float(self.global_step))
            losses = {"train/d_loss": d_loss, "train/g_loss": g_loss, "train/penalty": penalty}
            self.log_dict(losses)
            self.log_dict({f"divergence/{k}": v for k, v in estimates.items()})
        return {"d_loss": d_loss, "penalty": penalty, "g_loss": g_loss}

    def _discriminator_step(
        self, real: Tensor, opt: LightningOptimizer, estimate: bool = True
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        with torch.no_grad():
            fake = self._run("generator", self._noise(real.shape[0], real.device))
        n_old = 0  # the first n_old rows of `fake` are replayed past fakes
        if self.replay is not None:
            fake, n_old = self.replay.mix(fake)
        real_scores = self._run("discriminator", real)
        fake_scores = self._run("discriminator", fake)
        loss = self.discriminator_loss(real_scores, fake_scores)
        penalty = self._penalty(real, fake)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss + penalty)
        self._sync(self.discriminator)
        with uncounted(opt):
            opt.step()
        self.after_discriminator_step()
        estimates: dict[str, Tensor] = {}
        # Only the critic step before a logged generator step needs them. They are against P_G,
        # so from the current fakes only (none are left when every row was replayed).
        if estimate and n_old < fake.shape[0]:
            current = fake_scores.detach()[n_old:]  # (B - n_old,)
            with torch.no_grad():
                estimates = self.divergence_estimates(real_scores.detach(), current)
        return loss.detach(), self._last_penalty_or(penalty), estimates

    def _penalty(self, real: Tensor, fake: Tensor) -> Tensor:
        """The hook's penalty, on every ``penalty_every``-th critic step only, scaled by k."""
        critic_step = self.global_step * self.n_critic + self.critic_steps_in_cycle
        if critic_step % self.penalty_every:
            return real.new_zeros(())
        penalty = self.penalty_every * self.discriminator_penalty(real, fake)
        self._last_penalty = penalty.detach()
        return penalty

    def _last_penalty_or(self, penalty: Tensor) -> Tensor:
        return self._last_penalty if self._last_penalty is not None else penalty.detach()

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
        if self._trainer is not None and isinstance(self.trainer.strategy, GANDDPStrategy):
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
        checkpoint["critic_steps_in_cycle"] = self.critic_steps_in_cycle
        if self.replay is not None:
            checkpoint["replay_buffer"] = self.replay.state_dict_of_every_rank()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.critic_steps_in_cycle = int(checkpoint.get("critic_steps_in_cycle", 0))
        if self.replay is not None and "replay_buffer" in checkpoint:
            self.replay.load_rank_state(checkpoint["replay_buffer"], device=self.device)
