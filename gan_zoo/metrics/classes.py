"""Mode coverage of generated digits, judged by a classifier: the stacked-MNIST protocol on MNIST.

VEEGAN (Srivastava et al. 2017, Sec. 5.2) and PacGAN (Lin et al. 2018, Sec. 5.1, Table 2) classify
each generated sample with a pre-trained MNIST classifier and report (a) the number of modes
captured and (b) the KL divergence between the generated class distribution and the uniform
distribution of the data. In PacGAN's evaluation code (``stacked_MNIST_experiments/
VEEGAN_experiment/model.py``, ``log_metrics``) a mode is captured when at least one sample is
assigned to it by the classifier's argmax, without a confidence threshold, and the KL is
``sum_c p_c log(p_c / q_c)`` (natural log, empty classes contribute 0) of the argmax histogram ``p``
against uniform ``q``. gan_zoo uses exactly these definitions on plain MNIST's 10 classes (the
stacked version has 1,000), plus the mean confidence (mean max-softmax probability), which drops
when samples look like no digit in particular.

With 10 classes and thousands of samples, "at least one sample" is a weak test: a generator
that makes a class 1% of the time still covers it. The KL measures the imbalance; 0 is perfect
balance, ``log 10 = 2.30`` is total collapse onto one class.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def class_metrics(logits: Tensor) -> dict[str, float]:
    """Classes covered, KL(class histogram || uniform) and mean confidence of logits ``(N, K)``.

    >>> import torch
    >>> logits = torch.tensor([[4.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])  # 3 vs 1
    >>> values = class_metrics(logits)
    >>> values["classes_covered"], round(values["class_kl"], 4)  # 0.75 log 1.5 + 0.25 log 0.5
    (2.0, 0.1308)
    """
    if logits.ndim != 2 or logits.shape[0] < 1:
        raise ValueError(f"class metrics need logits (N >= 1, K), got {tuple(logits.shape)}")
    n, num_classes = logits.shape
    probabilities = logits.double().softmax(dim=1)
    histogram = probabilities.argmax(dim=1).bincount(minlength=num_classes).double() / n  # (K,)
    present = histogram[histogram > 0]
    kl = (present * (present * num_classes).log()).sum().item()  # q_c = 1/K
    return {
        "classes_covered": float((histogram > 0).sum().item()),
        "class_kl": max(kl, 0.0),
        "mean_confidence": probabilities.max(dim=1).values.mean().item(),
    }


def class_histogram(logits: Tensor) -> list[int]:
    """How many of the ``(N, K)`` logits' rows each class wins (argmax), as a list of ``K``."""
    return logits.argmax(dim=1).bincount(minlength=logits.shape[1]).tolist()


def conditional_accuracy(logits: Tensor, labels: Tensor) -> dict[str, Any]:
    """How often a conditional generator made the class it was asked for.

    ``logits`` ``(N, K)`` are a classifier's (trained on real data) for samples generated with
    ``labels`` ``(N,)``. Returns ``class_accuracy`` (the fraction whose argmax is the requested
    class) and ``per_class_accuracy``, a list of ``K`` (NaN for a class never requested): the
    "classification accuracy" of conditional GAN papers (e.g. AC-GAN's ImageNet accuracy,
    Odena et al. 2017, Sec. 4.1, judged by an Inception network; here the MNIST network).

    >>> import torch
    >>> logits = torch.tensor([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0], [0.0, 3.0]])
    >>> values = conditional_accuracy(logits, torch.tensor([0, 1, 1, 1]))
    >>> values["class_accuracy"], values["per_class_accuracy"]
    (0.75, [1.0, 0.6666666666666666])
    """
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"conditional accuracy needs logits (N, K) and labels (N,), got "
            f"{tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    num_classes = logits.shape[1]
    correct = (logits.argmax(dim=1) == labels).double()
    hits = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, labels, correct)
    asked = labels.bincount(minlength=num_classes).double()
    per_class = torch.where(asked > 0, hits / asked.clamp_min(1), torch.nan)
    return {"class_accuracy": correct.mean().item(), "per_class_accuracy": per_class.tolist()}
