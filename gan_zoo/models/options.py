"""The parts of the loop's options that are not the loop itself (see ``gan_zoo.models.GAN``).

Each function serves one option: splitting a training batch (n_critic, packing, labels), the
zero-centered penalties, augmentation bookkeeping and the labels of a conditional GAN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import annotated_types as at
import torch
import torch.distributed as dist
from pydantic import Strict
from torch import Tensor, nn

from gan_zoo import penalties
from gan_zoo.errors import ConfigValueError, check
from gan_zoo.penalties import Critic
from gan_zoo.validation import Expect

# The loop's validated argument types (``GAN.__init__``).
Decay = Annotated[float, Strict(), at.Ge(0), at.Lt(1)]  # an EMA decay


# From the CLI an augmentation is a config group, so a name is the one likely mistake.
Augmentation = Annotated[
    nn.Module | None,
    Expect(
        "an augmentation module or null; choose one with augment=diffaugment|ada|instance_noise"
    ),
]


def check_nets(
    generator: nn.Module, discriminator: nn.Module, latent_dim: int, pack: int, num_classes: int
) -> None:
    """Refuse nets built for another latent size, pack or number of classes than the model's.

    The configs set each once (``net.latent_dim``; ``model.pack`` and ``model.num_classes``,
    which the net configs follow), so a mismatch means nets built by hand differently. A net
    without the attribute is taken to have the model's latent size, pack 1 and no classes.
    """
    defaults = {"latent_dim": latent_dim, "pack": 1, "num_classes": 0}
    for key, role, net, value in (
        ("latent_dim", "generator", generator, latent_dim),
        ("pack", "discriminator", discriminator, pack),
        ("num_classes", "generator", generator, num_classes),
        ("num_classes", "discriminator", discriminator, num_classes),
    ):
        own = getattr(net, key, defaults[key])
        source = "net.latent_dim sets both" if key == "latent_dim" else f"nets follow model.{key}"
        check(own == value, key, value, f"{own}, the {role}'s (configs: {source})")
    if pack > 1 and num_classes > 0:
        raise ConfigValueError("pack", pack, "1 with num_classes > 0 (a pack has no one label)")


def split_batch(
    batch: Any, n_critic: int, pack: int, num_classes: int
) -> list[tuple[Tensor, Tensor | None]]:
    """``n_critic`` pairs ``(real (B, *S), labels (B,) or None)`` from a training batch.

    The batch is a ``(n_critic * B, *S)`` tensor, or an ``(x, y)`` pair; labels are kept only
    for a conditional GAN (``num_classes > 0``), which needs them.
    """
    real, labels = batch, None
    if isinstance(batch, (list, tuple)):  # (x,) from a TensorDataset, or (x, y)
        real, labels = batch[0], (batch[1] if len(batch) > 1 else None)
    if num_classes and (labels is None or labels.dim() != 1):
        raise ConfigValueError(
            "batch",
            "unlabelled samples",
            f"(x, y) batches with class labels for num_classes="
            f"{num_classes} (gan_zoo's labelled DataModules serve them to a conditional model)",
        )
    rows = real.shape[0]
    if rows % (n_critic * pack):
        raise ConfigValueError(
            "batch",
            f"{rows} samples",
            f"n_critic x B samples ({n_critic} critic batches of equal size, B a multiple of "
            f"pack={pack}; gan_zoo's DataModules size their loader so, a loader of yours must too)",
        )
    reals = real.split(rows // n_critic)
    if not num_classes or labels is None:  # labels were checked above for a conditional GAN
        return [(r, None) for r in reals]
    return list(zip(reals, labels.split(rows // n_critic)))


def zero_centered(
    real_critic: Critic,
    fake_critic: Critic,
    real: Tensor,
    fake: Tensor,
    r1_gamma: float,
    r2_gamma: float,
    grad_scale: Any,
) -> Tensor:
    """``r1_gamma / 2 * R1 + r2_gamma / 2 * R2`` (Mescheder et al. 2018, Eq. 9-10); 0 if off."""
    total = real.new_zeros(())
    for gamma, critic, x in ((r1_gamma, real_critic, real), (r2_gamma, fake_critic, fake)):
        if gamma:
            scale = grad_scale(x.device)
            total = total + 0.5 * gamma * penalties.zero_centered_penalty(critic, x, scale)
    return total


def current_fakes(
    real: Tensor,
    fake: Tensor,
    real_scores: Tensor,
    fake_scores: Tensor,
    labels: Tensor | None,
    n_old: int,
    pack: int,
) -> tuple[dict[str, Tensor], Tensor | None]:
    """What the divergence estimates see of a critic step, and its labels: the fakes of the
    current generator only (the first ``n_old`` rows were replayed; whole packs are dropped),
    and the real rows in the same places, which share their labels (fakes are drawn for the
    real batch's classes)."""
    packs = -(-n_old // pack)  # packs holding any replayed row
    rows = packs * pack
    seen = {
        "real_scores": real_scores.detach()[packs:],
        "fake_scores": fake_scores.detach()[packs:],
        "real": real.detach()[rows:],
        "fake": fake.detach()[rows:],
    }
    return seen, None if labels is None else labels[rows:]


def observe_augmentation(augment: nn.Module | None, real_scores: Tensor) -> None:
    """Feed an adaptive augmentation (ADA's ``observe``) the critic's real scores, summing its
    statistics over DDP ranks so every rank keeps the same ``p``."""
    observe = getattr(augment, "observe", None)
    if observe is None:
        return
    many = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    observe(real_scores.detach(), reduce=dist.all_reduce if many else None)


def augmentation_state(augment: nn.Module | None) -> dict[str, Tensor]:
    """``augment/p`` and ``augment/rt`` of an adaptive augmentation, to log; else nothing."""
    found = {name: getattr(augment, name, None) for name in ("p", "rt")}
    return {f"augment/{k}": v.detach() for k, v in found.items() if isinstance(v, Tensor)}


def random_labels(n: int, num_classes: int, device: torch.device) -> Tensor | None:
    """``(n,)`` classes drawn uniformly for a conditional GAN's generator step (None if
    unconditional)."""
    return torch.randint(num_classes, (n,), device=device) if num_classes else None


def sample_labels(
    n: int, labels: Tensor | Sequence[int] | int | None, num_classes: int, device: torch.device
) -> Tensor | None:
    """The ``(n,)`` classes ``sample`` draws: the ones asked for, else uniform over the classes."""
    check(isinstance(n, int) and n >= 1, "n", n, "an integer >= 1")
    if not num_classes:
        check(labels is None, "labels", labels, "None: the model is not class-conditional")
        return None
    if labels is None:
        return random_labels(n, num_classes, device)
    classes = torch.as_tensor(labels, dtype=torch.long, device=device).reshape(-1)
    classes = classes.expand(n) if classes.numel() == 1 else classes
    valid = f"one class or {n} classes, each in [0, {num_classes - 1}]"
    in_range = bool(((classes >= 0) & (classes < num_classes)).all())
    check(classes.numel() == n and in_range, "labels", labels, valid)
    return classes
