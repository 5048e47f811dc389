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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor, nn

from gan_zoo.errors import check
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
    ) -> None:
        super().__init__()
        n_critic = self.default_n_critic if n_critic is None else n_critic
        check(isinstance(n_critic, int) and n_critic >= 1, "n_critic", n_critic, "an integer >= 1")
        check(
            isinstance(latent_dim, int) and latent_dim >= 1,
            "latent_dim",
            latent_dim,
            "an integer >= 1",
        )
        net_latent = getattr(generator, "latent_dim", latent_dim)
        check(net_latent == latent_dim, "latent_dim", latent_dim, f"{net_latent} (the generator's)")
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.n_critic = n_critic
        self.generator_optimizer = generator_optimizer or self.default_optimizer
        self.discriminator_optimizer = discriminator_optimizer or self.default_optimizer
        # Position inside the n_critic cycle: critic steps taken since the last generator step.
        self.critic_steps_in_cycle = 0
        check(
            isinstance(replay_size, int) and replay_size >= 0,
            "replay_size",
            replay_size,
            "an integer >= 0",
        )
        self.replay = ReplayBuffer(replay_size, replay_ratio) if replay_size else None

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

        Computed from the ``(B,)`` scores of the last critic step before each generator step.
        """
        return {}

    # ----------------------------------------------------------------------- the loop
    def forward(self, z: Tensor) -> Tensor:
        """``(B, latent_dim)`` noise to ``(B, *S)`` samples."""
        return self.generator(z)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [
            self.discriminator_optimizer(self.discriminator.parameters()),
            self.generator_optimizer(self.generator.parameters()),
        ]

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        """One critic step on ``batch``; every ``n_critic``-th call also one generator step.

        Returns the detached losses of this call (``d_loss``, ``penalty``, and ``g_loss`` on
        generator steps), which callbacks receive as ``outputs``.
        """
        real = batch[0] if isinstance(batch, (list, tuple)) else batch  # (B, *S)
        d_opt, g_opt = self.optimizers()  # type: ignore[misc]
        d_loss, penalty, estimates = self._discriminator_step(real, d_opt)
        self.critic_steps_in_cycle += 1
        if self.critic_steps_in_cycle < self.n_critic:
            return {"d_loss": d_loss, "penalty": penalty}
        self.critic_steps_in_cycle = 0
        g_loss = self._generator_step(real.shape[0], g_opt)
        # `step` sets the logger's x-axis; after the optimizer step global_step == generator steps.
        self.log("step", float(self.global_step), prog_bar=True)
        self.log_dict({"train/d_loss": d_loss, "train/g_loss": g_loss}, prog_bar=True)
        self.log("train/penalty", penalty)
        self.log_dict({f"divergence/{k}": v for k, v in estimates.items()})
        return {"d_loss": d_loss, "penalty": penalty, "g_loss": g_loss}

    def _discriminator_step(
        self, real: Tensor, opt: LightningOptimizer
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        with torch.no_grad():
            fake = self.generator(self._noise(real.shape[0], real.device))
        if self.replay is not None:
            fake = self.replay.mix(fake)
        real_scores, fake_scores = self.discriminator(real), self.discriminator(fake)
        loss = self.discriminator_loss(real_scores, fake_scores)
        penalty = self.discriminator_penalty(real, fake)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss + penalty)
        with _uncounted(opt):
            opt.step()
        self.after_discriminator_step()
        with torch.no_grad():
            estimates = self.divergence_estimates(real_scores.detach(), fake_scores.detach())
        return loss.detach(), penalty.detach(), estimates

    def _generator_step(self, batch_size: int, opt: LightningOptimizer) -> Tensor:
        # Toggling freezes D's parameters, so the generator's backward skips their weight grads.
        with self.toggled_optimizer(opt):
            fake = self.generator(self._noise(batch_size, self.device))
            loss = self.generator_loss(self.discriminator(fake))
            opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            opt.step()
        return loss.detach()

    def _noise(self, n: int, device: torch.device) -> Tensor:
        return torch.randn(n, self.latent_dim, device=device)  # (n, latent_dim)

    @torch.no_grad()
    def sample(self, n: int, batch_size: int = 256, z: Tensor | None = None) -> Tensor:
        """Draw ``n`` samples in data space (images in [-1, 1]) without grad, in batches.

        The generator runs in eval mode (BatchNorm uses running statistics) and its mode is
        restored afterwards. Returns a CPU tensor of shape ``(n, *S)``; pass ``z`` of shape
        ``(n, latent_dim)`` to choose the noise.
        """
        check(isinstance(n, int) and n >= 1, "n", n, "an integer >= 1")
        was_training = self.generator.training
        self.generator.eval()
        try:
            chunks = []
            for start in range(0, n, batch_size):
                count = min(batch_size, n - start)
                noise = (
                    self._noise(count, self.device)
                    if z is None
                    else z[start : start + count].to(self.device)
                )
                chunks.append(self.generator(noise).float().cpu())
            return torch.cat(chunks)
        finally:
            self.generator.train(was_training)

    def on_fit_start(self) -> None:
        # Lightning flushes logs every `log_every_n_steps` *batches*; one generator step spans
        # n_critic batches, so count the interval in generator steps. That also makes every flush
        # land on a batch that just logged fresh generator-step values.
        trainer = self.trainer
        if getattr(trainer, "_gan_zoo_log_every", None) is None:
            trainer._gan_zoo_log_every = trainer.log_every_n_steps  # type: ignore[attr-defined]
        trainer.log_every_n_steps = trainer._gan_zoo_log_every * self.n_critic  # type: ignore

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["critic_steps_in_cycle"] = self.critic_steps_in_cycle
        if self.replay is not None:
            checkpoint["replay_buffer"] = self.replay.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.critic_steps_in_cycle = int(checkpoint.get("critic_steps_in_cycle", 0))
        if self.replay is not None and "replay_buffer" in checkpoint:
            self.replay.load_state_dict(checkpoint["replay_buffer"], device=self.device)


@contextmanager
def _uncounted(opt: LightningOptimizer) -> Iterator[None]:
    """Step ``opt`` without advancing ``trainer.global_step``.

    In manual optimization Lightning counts every ``optimizer.step()`` as a global step
    (Lightning issue 17958), so with n_critic=5 ``max_steps`` would stop after N/6 generator
    steps. The counting lives in the two callbacks Lightning injects into each optimizer for
    the duration of one training step; the discriminator's are silenced here.
    """
    before, after = opt._on_before_step, opt._on_after_step
    opt._on_before_step = opt._on_after_step = _do_nothing
    try:
        yield
    finally:
        opt._on_before_step, opt._on_after_step = before, after


def _do_nothing() -> None:
    return None
