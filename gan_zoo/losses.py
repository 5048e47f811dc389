"""GAN objectives as pure functions of discriminator scores.

Every function takes raw scores (logits for the GAN family, critic values for WGANs) of shape
``(B,)`` and returns a scalar tensor to be *minimized*. Logit-space formulas go through
``softplus`` so that ``log D`` and ``log(1 - D)`` never underflow: with ``D = sigmoid(s)``,
``-log D = softplus(-s)`` and ``-log(1 - D) = softplus(s)``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def minimax_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Negated value function of Goodfellow et al. 2014, Eq. 1.

    D maximizes ``V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))]``; we minimize ``-V``.

    Args:
        real_scores: ``(B,)`` logits on data.
        fake_scores: ``(B,)`` logits on generated samples.

    >>> import torch
    >>> minimax_discriminator_loss(torch.zeros(4), torch.zeros(4))  # D = 1/2 everywhere: 2 log 2
    tensor(1.3863)
    """
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()


def minimax_generator_loss(fake_scores: Tensor) -> Tensor:
    """The saturating generator objective of Goodfellow et al. 2014, Eq. 1: ``E[log(1 - D(G(z)))]``.

    Its gradient vanishes when D confidently rejects fakes (D(G(z)) -> 0), which is the
    saturation the paper warns about in Sec. 3. It is implemented as stated, on purpose.

    Args:
        fake_scores: ``(B,)`` logits on generated samples.
    """
    return -F.softplus(fake_scores).mean()


def nonsaturating_generator_loss(fake_scores: Tensor) -> Tensor:
    """The non-saturating heuristic of Goodfellow et al. 2014, Sec. 3: minimize ``-E[log D(G(z))]``.

    Args:
        fake_scores: ``(B,)`` logits on generated samples.
    """
    return F.softplus(-fake_scores).mean()


def wasserstein_critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Critic loss of Arjovsky et al. 2017, Algorithm 1 (dual of Eq. 2): ``E[f(G(z))] - E[f(x)]``.

    Its negation is the critic's estimate of W1 (up to the Lipschitz constant).

    Args:
        real_scores: ``(B,)`` critic values on data.
        fake_scores: ``(B,)`` critic values on generated samples.
    """
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: Tensor) -> Tensor:
    """Generator loss of Arjovsky et al. 2017, Algorithm 1: ``-E[f(G(z))]``.

    Also the generator loss used with the hinge discriminator loss (Miyato et al. 2018, Eq. 17).

    Args:
        fake_scores: ``(B,)`` critic values on generated samples.
    """
    return -fake_scores.mean()


def hinge_discriminator_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Hinge loss of Lim & Ye 2017, as used by SN-GAN (Miyato et al. 2018, Eq. 16).

    ``E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]``.

    Args:
        real_scores: ``(B,)`` scores on data.
        fake_scores: ``(B,)`` scores on generated samples.
    """
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()
