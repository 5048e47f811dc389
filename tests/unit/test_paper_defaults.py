"""Every model config builds the optimizers, n_critic and constants of its paper (issue table)."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from tests.helpers import compose_train

# config name: (class, optimizer class, lr, betas or None, n_critic, extra attributes)
PAPER = {
    "minimax_gan": ("MinimaxGAN", torch.optim.Adam, 2e-4, (0.5, 0.999), 1, {}),
    "ns_gan": ("NonSaturatingGAN", torch.optim.Adam, 2e-4, (0.5, 0.999), 1, {}),
    "wgan_clip": ("WGANClip", torch.optim.RMSprop, 5e-5, None, 5, {"clip_value": 0.01}),
    "wgan_gp": ("WGANGP", torch.optim.Adam, 1e-4, (0.0, 0.9), 5, {"gp_weight": 10.0}),
    "sngan": ("SNGAN", torch.optim.Adam, 2e-4, (0.0, 0.9), 5, {}),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_model_config_has_the_paper_defaults(name: str) -> None:
    cls, opt_cls, lr, betas, n_critic, extra = PAPER[name]
    cfg = compose_train([f"model={name}"])
    model = instantiate(
        cfg.model,
        generator=instantiate(cfg.net.generator),
        discriminator=instantiate(cfg.net.discriminator),
    )
    assert type(model).__name__ == cls and model.n_critic == n_critic
    for key, value in extra.items():
        assert getattr(model, key) == pytest.approx(value), key
    # configure_optimizers returns (discriminator, generator): both follow the paper
    for optimizer in model.configure_optimizers():
        assert type(optimizer) is opt_cls
        group = optimizer.param_groups[0]
        assert group["lr"] == pytest.approx(lr)
        if betas is not None:
            assert tuple(group["betas"]) == pytest.approx(betas)


def test_the_minimax_config_trains_the_saturating_generator() -> None:
    """G minimizes E[log(1 - D(G(z)))]: at logit 0 that is log(1/2), and its gradient wrt the
    logit is -sigmoid(v) = -1/2, not the non-saturating -(1 - sigmoid(v)) of ns_gan (equal at
    v = 0, so a logit of -3 is used: -sigmoid(-3) vs -(1 - sigmoid(-3)))."""
    cfg = compose_train(["model=minimax_gan"])
    model = instantiate(
        cfg.model,
        generator=instantiate(cfg.net.generator),
        discriminator=instantiate(cfg.net.discriminator),
    )
    logits = torch.full((4,), -3.0, requires_grad=True)
    loss = model.generator_loss(logits)
    (grad,) = torch.autograd.grad(loss, logits)
    assert loss.item() == pytest.approx(torch.log1p(-torch.sigmoid(torch.tensor(-3.0))).item())
    assert grad[0].item() == pytest.approx(-torch.sigmoid(torch.tensor(-3.0)).item() / 4)
