"""The n_critic training loop shared by every GAN variant, and nothing else.

One Lightning ``training_step`` is one generator step: ``n_critic`` critic steps, each on its
own fresh real batch, then one generator step (Arjovsky et al. 2017, Algorithm 1). So
``batch_idx``, ``trainer.global_step``, ``max_steps``, ``log_every_n_steps``, checkpoint intervals,
the progress bar and every callback's ``on_train_batch_end`` count generator steps, as papers do.

A variant is a subclass that overrides some of four hooks:

- ``discriminator_loss(real_scores, fake_scores)``
- ``generator_loss(fake_scores)``
- ``discriminator_penalty(real, fake)`` (zero by default; call ``self.critic``)
- ``after_discriminator_step()`` (no-op by default)

and, to log what its discriminator measures, ``divergence_estimates``. The options every
variant gets (packing, augmentation, zero-centered penalties, class conditioning, replay, EMA)
live in the loop; their parts in ``gan_zoo.models.options``. How the loop calls G and D (compiled
or not, conditional or not, augmented) is ``gan_zoo.models.net_calls``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor, nn

from gan_zoo import losses
from gan_zoo.compat import logs_flushed_this_step
from gan_zoo.compiled import compile_nets
from gan_zoo.distributed import check_strategy, reseed_for_rank
from gan_zoo.ema import ema_update, make_ema
from gan_zoo.models import options
from gan_zoo.models.critic import Critic
from gan_zoo.models.net_calls import NetCalls
from gan_zoo.models.options import Augmentation, Decay
from gan_zoo.optim import OptimizerFactory, check_optimizer, linear_lr_decay, step_schedulers
from gan_zoo.replay import ReplayBuffer
from gan_zoo.validation import (
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    StrictBool,
    validated,
)


class GAN(NetCalls, pl.LightningModule):
    """Manual-optimization GAN: per training step, ``n_critic`` critic steps then one G step.

    A training batch holds ``n_critic * B`` real samples (gan_zoo's DataModules size their loader
    so; ``data.batch_size`` is ``B``), with ``(n_critic * B,)`` labels when conditional; it is
    split into ``n_critic`` batches of ``B``, one per critic step. Critic steps go through the
    strategy's ``optimizer_step`` (precision plugin, gradient clipping and
    ``on_before_optimizer_step`` hooks included) but not through ``LightningOptimizer.step``,
    which would count each of them as a global step (Lightning issue 17958).

    Args:
        generator: ``(B, latent_dim)`` noise (and ``(B,)`` labels) to ``(B, *S)`` samples.
        discriminator: ``(B, *S)`` samples (and labels) to ``(B / pack,)`` scores.
        latent_dim: size of the noise vector.
        n_critic: critic steps per generator step (the variant's paper default if None).
        generator_optimizer: ``params -> Optimizer`` (a ``functools.partial``); the variant's
            paper default when omitted. discriminator_optimizer: likewise for D.
        replay_size: > 0 trains D on a mix of current fakes and this many past ones
            (Shrivastava et al. 2017); replay_ratio: their share of each fake batch.
        ema_decay: > 0 keeps an exponential moving average of G for :meth:`sample` and metrics.
        penalty_every: penalties on every k-th critic step only, scaled by k (lazy
            regularization, Karras et al. 2020, StyleGAN2 Sec. 3.1).
        lr_decay_steps: decay both learning rates linearly to 0 over this many generator steps.
        compile: run G and D through ``torch.compile`` (see ``gan_zoo.compiled``).
        pack: D scores packs of this many samples concatenated, real with real and fake with
            fake (PacGAN, Lin et al. 2018); the net is built with the same ``pack``.
        augment: a differentiable augmentation (``gan_zoo.augment``) of real and fake samples
            before D, in D's and G's steps (DiffAugment, ADA, instance noise).
        r1_gamma, r2_gamma: ``gamma`` of ``gamma / 2 E[||grad_x D||^2]`` on real (R1) and fake
            (R2) samples (Mescheder et al. 2018, Eq. 9-10); 0 turns each off.
        num_classes: > 0 trains a class-conditional GAN; batches carry labels, nets take them.
        ac_weight: weight of the auxiliary-classifier loss when D has a classification head
            (AC-GAN, Odena et al. 2017, Eq. 2-3).

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
        pack: PositiveInt = 1,
        augment: Augmentation = None,
        r1_gamma: NonNegativeFloat = 0.0,
        r2_gamma: NonNegativeFloat = 0.0,
        num_classes: NonNegativeInt = 0,
        ac_weight: NonNegativeFloat = 1.0,
    ) -> None:
        super().__init__()
        options.check_nets(generator, discriminator, latent_dim, pack, num_classes)
        self.automatic_optimization = False
        self.generator, self.discriminator, self.augment = generator, discriminator, augment
        self.latent_dim, self.pack, self.num_classes = latent_dim, pack, num_classes
        self.n_critic = self.default_n_critic if n_critic is None else n_critic
        self.generator_optimizer = generator_optimizer or self.default_optimizer
        self.discriminator_optimizer = discriminator_optimizer or self.default_optimizer
        check_optimizer(self.generator_optimizer, "generator_optimizer")
        check_optimizer(self.discriminator_optimizer, "discriminator_optimizer")
        self.replay = ReplayBuffer(replay_size, replay_ratio) if replay_size else None
        self.ema_decay, self.penalty_every = ema_decay, penalty_every
        self.r1_gamma, self.r2_gamma, self.ac_weight = r1_gamma, r2_gamma, ac_weight
        self.lr_decay_steps = lr_decay_steps
        self.generator_ema = make_ema(generator) if ema_decay > 0 else None
        self.compile_nets = compile  # not `self.compile`: that is nn.Module.compile()
        self._compiled: dict[str, Callable[..., Any]] = {}  # a dict: not submodules
        self._last_penalty: Tensor | None = None
        self.critic = Critic(discriminator, pack=pack)  # labels bound per critic step

    # ----------------------------------------------------------------- hooks for variants
    def discriminator_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        """Scalar loss the discriminator minimizes; scores are ``(B / pack,)``."""
        raise NotImplementedError(f"{type(self).__name__} must define discriminator_loss")

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        """Scalar loss the generator minimizes; scores are ``(B / pack,)``."""
        raise NotImplementedError(f"{type(self).__name__} must define generator_loss")

    def discriminator_penalty(self, real: Tensor, fake: Tensor) -> Tensor:
        """Regularizer added to the discriminator loss; ``real``/``fake`` are the ``(B, *S)``
        inputs D saw (augmented if augmentation is on). Score them with ``self.critic``."""
        return real.new_zeros(())

    def after_discriminator_step(self) -> None:
        """Runs after every discriminator optimizer step (e.g. weight clipping)."""

    def divergence_estimates(
        self,
        real_scores: Tensor,
        fake_scores: Tensor,
        real: Tensor | None = None,
        fake: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Divergences implied by the discriminator's objective, logged as ``divergence/<name>``.

        From the last critic step of a logged generator step: real scores and inputs, and those
        of the current generator's fakes only (replayed fakes are left out, so the estimate is
        against P_G, not a mixture of past generators). Inputs are ``(B, *S)`` as D saw them.
        """
        return {}

    # ----------------------------------------------------------------------- the loop
    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """``(B, latent_dim)`` noise (and ``(B,)`` labels) to ``(B, *S)`` samples."""
        return self._generate(self.generator, z, labels)

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

    def critic_batches(self, batch: Any) -> list[tuple[Tensor, Tensor | None]]:
        """Split a training batch of ``n_critic * B`` samples (and labels) into ``n_critic``
        ``(real, labels)`` pairs of ``(B, *S)`` and ``(B,)`` (labels None if unconditional)."""
        return options.split_batch(batch, self.n_critic, self.pack, self.num_classes)

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        """One generator step: ``n_critic`` critic steps, each on its own real batch, then G.

        Returns the detached losses (``d_loss`` and ``penalty`` of the last critic step,
        ``g_loss``), which callbacks receive as ``outputs``. On the steps whose logs Lightning
        flushes (``log_every_n_steps``) they are logged, with the divergence estimates, on the
        generator-step axis (``step`` = ``global_step`` after the update).
        """
        d_opt, g_opt = self.optimizers()  # type: ignore[misc, attr-defined]
        batches = self.critic_batches(batch)
        for index, (real, labels) in enumerate(batches):
            d_loss, penalty, seen = self._discriminator_step(real, labels, d_opt, index)
        g_loss = self._generator_step(batches[-1][0].shape[0], g_opt)
        losses_ = {"d_loss": d_loss, "penalty": penalty, "g_loss": g_loss}
        if logs_flushed_this_step(self.trainer):  # other steps' values would reach no logger
            self._log_step(losses_, seen)
        return losses_

    def _discriminator_step(
        self, real: Tensor, labels: Tensor | None, opt: LightningOptimizer, index: int
    ) -> tuple[Tensor, Tensor, tuple[dict[str, Tensor], Tensor | None]]:
        """One critic step on ``real`` ``(B, *S)``; returns its detached loss and penalty, and
        what D saw of it and the labels (for the divergence estimates)."""
        with torch.no_grad():  # fakes of the real batch's classes, so penalties share labels
            fake = self._run_generator(self._noise(real.shape[0], real.device), labels)
        fake_labels, n_old = labels, 0  # the first n_old rows are replayed past fakes
        if self.replay is not None:
            fake, fake_labels, n_old = self.replay.mix(fake, labels)
        real, fake = self._augmented(real), self._augmented(fake)
        self.critic.labels = labels
        real_scores, real_logits = self._score(real, labels)
        fake_scores, fake_logits = self._score(fake, fake_labels)
        loss = self.discriminator_loss(real_scores, fake_scores)
        if real_logits is not None and fake_logits is not None:
            assert labels is not None and fake_labels is not None  # a head implies labels
            loss = loss + self.ac_weight * (
                losses.auxiliary_classifier_loss(real_logits, labels)
                + losses.auxiliary_classifier_loss(fake_logits, fake_labels)
            )
        penalty = self._penalty(real, fake, fake_labels, self.global_step * self.n_critic + index)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss + penalty)
        self._sync(self.discriminator)
        # Through the strategy, not opt.step(): only generator steps count as global steps.
        self.trainer.strategy.optimizer_step(opt.optimizer, closure=_no_closure)
        self.after_discriminator_step()
        options.observe_augmentation(self.augment, real_scores)
        penalty = self._last_penalty if self._last_penalty is not None else penalty.detach()
        seen = options.current_fakes(real, fake, real_scores, fake_scores, labels, n_old, self.pack)
        return loss.detach(), penalty, seen

    def _penalty(
        self, real: Tensor, fake: Tensor, fake_labels: Tensor | None, critic_step: int
    ) -> Tensor:
        """The hook's penalty plus R1/R2, on every ``penalty_every``-th critic step only, scaled
        by k (the last computed one is reported on the others)."""
        if critic_step % self.penalty_every:
            return real.new_zeros(())
        penalty = self.discriminator_penalty(real, fake)
        fake_critic = Critic(self._discriminator_fn(), fake_labels, self.pack)
        penalty = penalty + options.zero_centered(
            self.critic, fake_critic, real, fake, self.r1_gamma, self.r2_gamma, self.grad_scale
        )
        penalty = self.penalty_every * penalty
        self._last_penalty = penalty.detach()
        return penalty

    def _generator_step(self, batch_size: int, opt: LightningOptimizer) -> Tensor:
        labels = options.random_labels(batch_size, self.num_classes, self.device)
        # Toggling freezes D's parameters, so the generator's backward skips their weight grads.
        with self.toggled_optimizer(opt):
            fake = self._run_generator(self._noise(batch_size, self.device), labels)
            scores, logits = self._score(self._augmented(fake), labels)
            loss = self.generator_loss(scores)
            if logits is not None and labels is not None:
                loss = loss + self.ac_weight * losses.auxiliary_classifier_loss(logits, labels)
            opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            self._sync(self.generator)
            opt.step()
        if self.generator_ema is not None:
            ema_update(self.generator_ema, self.generator, self.ema_decay)
        step_schedulers(self.lr_schedulers())
        return loss.detach()

    def _log_step(
        self, values: dict[str, Tensor], seen: tuple[dict[str, Tensor], Tensor | None]
    ) -> None:
        logged: dict[str, Tensor | float] = {"step": float(self.global_step)}  # the x-axis
        logged.update({f"train/{k}": v for k, v in values.items()})
        inputs, self.critic.labels = seen
        if len(inputs["fake_scores"]):  # none when every fake was replayed
            with torch.no_grad():
                estimates = self.divergence_estimates(**inputs)
                logged.update({f"divergence/{k}": v for k, v in estimates.items()})
        logged.update(options.augmentation_state(self.augment))
        self.log_dict(logged)  # converted at flush

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.replay is not None:
            checkpoint["replay_buffer"] = self.replay.state_dict_of_every_rank()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.replay is not None and "replay_buffer" in checkpoint:
            self.replay.load_rank_state(checkpoint["replay_buffer"], device=self.device)


def _no_closure() -> None:
    """The closure a manual-optimization step passes: the backward already ran."""
    return None
