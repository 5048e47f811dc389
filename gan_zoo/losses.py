"""GAN objectives as pure functions of discriminator scores.

Every function takes raw scores (logits for the GAN family, critic values for WGANs) of shape
``(B,)`` and returns a scalar tensor to be *minimized*. Logit-space formulas go through
``softplus`` so that ``log D`` and ``log(1 - D)`` never underflow: with ``D = sigmoid(s)``,
``-log D = softplus(-s)`` and ``-log(1 - D) = softplus(s)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
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


def auxiliary_classifier_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """The class term of AC-GAN, Odena et al. 2017, Eq. 2-3: ``-L_C = -E[log P(C = c | X)]``.

    Both D and G maximize ``L_C`` (on real and fake samples for D, on fakes for G), so both
    minimize this cross-entropy of the auxiliary classifier's logits against the labels.

    Args:
        logits: ``(B, K)`` class logits of D's auxiliary head.
        labels: ``(B,)`` classes, real ones for data and the conditioning ones for fakes.

    >>> auxiliary_classifier_loss(torch.zeros(2, 4), torch.tensor([0, 3]))  # uniform: log 4
    tensor(1.3863)
    """
    return F.cross_entropy(logits.float(), labels)


# --------------------------------------------------------------------------------- f-GAN
# Nowozin et al. 2016, "f-GAN: Training Generative Neural Samplers using Variational Divergence
# Minimization", Table 2. The critic outputs an unconstrained V(x); the output activation g_f maps
# it into the domain of the conjugate f*. Each `*_conjugate(v)` returns f*(g_f(v)), simplified in
# v: composing the two naively overflows (e.g. JS: log 2 - softplus(-v) rounds to log 2 once
# v > 17 in float32, where f*(t) = -log(2 - e^t) is infinite).


def kl_activation(v: Tensor) -> Tensor:
    """Kullback-Leibler: ``g_f(v) = v`` (Nowozin et al. 2016, Table 2)."""
    return v


def kl_conjugate(v: Tensor) -> Tensor:
    """Kullback-Leibler: ``f*(t) = exp(t - 1)`` at ``t = g_f(v) = v``."""
    return torch.exp(v - 1.0)


def reverse_kl_activation(v: Tensor) -> Tensor:
    """Reverse KL: ``g_f(v) = -exp(-v)`` (Nowozin et al. 2016, Table 2)."""
    return -torch.exp(-v)


def reverse_kl_conjugate(v: Tensor) -> Tensor:
    """Reverse KL: ``f*(t) = -1 - log(-t)`` at ``t = -exp(-v)``, i.e. ``v - 1``."""
    return v - 1.0


def pearson_activation(v: Tensor) -> Tensor:
    """Pearson chi^2: ``g_f(v) = v`` (Nowozin et al. 2016, Table 2)."""
    return v


def pearson_conjugate(v: Tensor) -> Tensor:
    """Pearson chi^2: ``f*(t) = t^2 / 4 + t`` at ``t = v``."""
    return 0.25 * v**2 + v


def squared_hellinger_activation(v: Tensor) -> Tensor:
    """Squared Hellinger: ``g_f(v) = 1 - exp(-v)`` (Nowozin et al. 2016, Table 2)."""
    return -torch.expm1(-v)


def squared_hellinger_conjugate(v: Tensor) -> Tensor:
    """Squared Hellinger: ``f*(t) = t / (1 - t)`` at ``t = 1 - exp(-v)``, i.e. ``exp(v) - 1``."""
    return torch.expm1(v)


def js_activation(v: Tensor) -> Tensor:
    """Jensen-Shannon: ``g_f(v) = log 2 - log(1 + exp(-v))`` (Nowozin et al. 2016, Table 2)."""
    return math.log(2.0) - F.softplus(-v)


def js_conjugate(v: Tensor) -> Tensor:
    """Jensen-Shannon: ``f*(t) = -log(2 - exp(t))`` at ``t = g_f(v)``: ``softplus(v) - log 2``.

    ``2 - exp(g_f(v)) = 2 (1 - sigmoid(v))``, and ``-log(1 - sigmoid(v)) = softplus(v)``.
    """
    return F.softplus(v) - math.log(2.0)


def gan_activation(v: Tensor) -> Tensor:
    """GAN: ``g_f(v) = -log(1 + exp(-v)) = log sigmoid(v)`` (Nowozin et al. 2016, Table 2)."""
    return -F.softplus(-v)


def gan_conjugate(v: Tensor) -> Tensor:
    """GAN: ``f*(t) = -log(1 - exp(t))`` at ``t = log sigmoid(v)``, i.e. ``softplus(v)``."""
    return F.softplus(v)


class FDivergence(NamedTuple):
    """One row of Nowozin et al. 2016, Table 2, as functions of the raw critic output ``v``.

    ``activation(v)`` is ``g_f(v)``; ``conjugate(v)`` is ``f*(g_f(v))``.
    """

    activation: Callable[[Tensor], Tensor]
    conjugate: Callable[[Tensor], Tensor]


# The divergences D_f(P || Q) with the generator functions f of Nowozin et al. 2016, Table 1.
# Careful: Table 1's f for "Jensen-Shannon" gives 2 * JSD (its "1/2" prefactor disagrees with its
# f), and the "GAN" row gives 2 * JSD - log 4; the Table 2 functions used here follow those f.
F_DIVERGENCES: dict[str, FDivergence] = {
    "kl": FDivergence(kl_activation, kl_conjugate),
    "reverse_kl": FDivergence(reverse_kl_activation, reverse_kl_conjugate),
    "pearson": FDivergence(pearson_activation, pearson_conjugate),
    "squared_hellinger": FDivergence(squared_hellinger_activation, squared_hellinger_conjugate),
    "js": FDivergence(js_activation, js_conjugate),
    "gan": FDivergence(gan_activation, gan_conjugate),
}


def fgan_bound(real_scores: Tensor, fake_scores: Tensor, divergence: str) -> Tensor:
    """The variational lower bound of Nowozin et al. 2016, Eq. 6-7, estimated on a batch.

    ``F = E_P[g_f(V(x))] - E_Q[f*(g_f(V(G(z))))] <= D_f(P || Q)``, with equality at the optimal
    ``T*(x) = g_f(V*(x)) = f'(p(x) / q(x))`` (their Sec. 2.2).

    Args:
        real_scores: ``(B,)`` raw critic outputs ``V(x)`` on data (``P``).
        fake_scores: ``(B,)`` raw critic outputs on generated samples (``Q``).
        divergence: a key of :data:`F_DIVERGENCES`.

    >>> fgan_bound(torch.zeros(3), torch.zeros(3), "kl")  # 0 - exp(-1)
    tensor(-0.3679)
    """
    pair = F_DIVERGENCES[divergence]
    return pair.activation(real_scores).mean() - pair.conjugate(fake_scores).mean()


def fgan_discriminator_loss(real_scores: Tensor, fake_scores: Tensor, divergence: str) -> Tensor:
    """The critic maximizes the bound ``F`` (Nowozin et al. 2016, Eq. 7); we minimize ``-F``.

    Shapes as in :func:`fgan_bound`.
    """
    return -fgan_bound(real_scores, fake_scores, divergence)


def fgan_generator_loss(fake_scores: Tensor, divergence: str) -> Tensor:
    """Non-saturating f-GAN generator loss, ``-E_Q[g_f(V(G(z)))]`` (Nowozin et al. 2016, Sec. 3.2).

    The paper's alternative to minimizing ``F`` directly, used in all its experiments; for the
    "gan" divergence it is the ``-log D`` trick of Goodfellow et al. 2014.

    Args:
        fake_scores: ``(B,)`` raw critic outputs on generated samples.
        divergence: a key of :data:`F_DIVERGENCES`.
    """
    return -F_DIVERGENCES[divergence].activation(fake_scores).mean()


# ------------------------------------------------------------------------ least squares
def least_squares_discriminator_loss(
    real_scores: Tensor, fake_scores: Tensor, real_label: float = 1.0, fake_label: float = 0.0
) -> Tensor:
    """LSGAN discriminator loss of Mao et al. 2017, Eq. 2.

    ``1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]`` with ``b = real_label``, ``a = fake_label``.

    Args:
        real_scores: ``(B,)`` raw (linear) outputs on data.
        fake_scores: ``(B,)`` raw outputs on generated samples.

    >>> least_squares_discriminator_loss(torch.tensor([1.0]), torch.tensor([1.0]))  # 0 + 1/2
    tensor(0.5000)
    """
    real_term = 0.5 * ((real_scores - real_label) ** 2).mean()
    return real_term + 0.5 * ((fake_scores - fake_label) ** 2).mean()


def least_squares_generator_loss(fake_scores: Tensor, target: float = 1.0) -> Tensor:
    """LSGAN generator loss of Mao et al. 2017, Eq. 2: ``1/2 E[(D(G(z)) - c)^2]``, ``c = target``.

    Args:
        fake_scores: ``(B,)`` raw outputs on generated samples.
    """
    return 0.5 * ((fake_scores - target) ** 2).mean()
