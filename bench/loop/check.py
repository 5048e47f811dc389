"""The equivalence check: gan_zoo and the reference give the same losses and weights."""

from __future__ import annotations

import json
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from bench.loop.jobs import Job, endless, gan_zoo_model, make_loader, reference_loop, trainer
from bench.reference_loop import VARIANTS


class _Recorder(pl.Callback):
    """Reseeds at the start of training (as the reference does) and records every loss."""

    def __init__(self, seed: int) -> None:
        self.seed, self.losses = seed, list[Tensor]()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        torch.manual_seed(self.seed)

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, outputs: Any, *_: Any) -> None:
        self.losses += [outputs["d_loss"]] + ([outputs["g_loss"]] if "g_loss" in outputs else [])


def check(variants: list[str], steps: int, device: str) -> list[dict]:
    """Same seed, data order and noise: every loss and every weight after ``steps`` cycles."""
    rows = []
    for variant in variants:
        model, recorder = gan_zoo_model(variant), _Recorder(seed=1)
        job = Job("gan_zoo", variant, device, 0, ())
        trainer(job, steps, [recorder]).fit(model, make_loader(device, 0))
        loop = reference_loop(VARIANTS[variant], torch.device(device))
        torch.manual_seed(1)
        batches, ref_losses = endless(make_loader(device, 0), torch.device(device)), []
        for _ in range(steps):
            d_losses, g_loss = loop.train_cycle(batches)
            ref_losses += d_losses + [g_loss]
        gz = torch.stack(recorder.losses).cpu()
        ref = torch.stack(ref_losses).cpu()
        ours = {**_prefixed(model.generator, "G"), **_prefixed(model.discriminator, "D")}
        theirs = {**_prefixed(loop.generator, "G"), **_prefixed(loop.discriminator, "D")}
        common = set(ours) & set(theirs)
        weight_diff = max((ours[k] - theirs[k]).abs().max().item() for k in common)
        tol = 1e-5 if device == "cpu" else 1e-3
        loss_diff = (gz - ref).abs().max().item() if gz.shape == ref.shape else float("inf")
        ok = set(ours) == set(theirs) and loss_diff <= tol and weight_diff <= tol
        rows.append(dict(variant=variant, losses=len(ref), loss_diff=loss_diff))
        rows[-1].update(weight_diff=weight_diff, tolerance=tol, ok=ok, steps=steps)
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _prefixed(module: nn.Module, prefix: str) -> dict[str, Tensor]:
    return {f"{prefix}.{k}": v.detach().float().cpu() for k, v in module.state_dict().items()}
