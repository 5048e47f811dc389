"""The README's "Adding a variant" example runs as written, trains, and does what it says."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from gan_zoo.models import WGANGP
from gan_zoo.nets import MLPDiscriminator, MLPGenerator

README = Path(__file__).resolve().parents[2] / "README.md"


def _example_module() -> types.ModuleType:
    text = README.read_text()
    block = re.search(
        r"<!-- readme-example: start -->\s*```python\n(.*?)```\s*<!-- readme-example: end -->",
        text,
        re.S,
    )
    assert block, "README lost its example block"
    module = types.ModuleType("my_gans")
    exec(compile(block.group(1), "README.md", "exec"), module.__dict__)
    sys.modules["my_gans"] = module
    return module


def test_readme_variant_trains() -> None:
    cls = _example_module().WGANLP
    torch.manual_seed(0)
    model = cls(MLPGenerator(latent_dim=2, hidden=16), MLPDiscriminator(hidden=16), latent_dim=2)
    assert isinstance(model, WGANGP) and model.n_critic == 5  # inherits the paper defaults
    pl.Trainer(
        accelerator="cpu",
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(model, DataLoader(TensorDataset(torch.randn(160, 2)), batch_size=5 * 16))  # n_critic 5
    assert model.global_step == 2


def test_readme_variant_penalizes_only_norms_above_one() -> None:
    cls = _example_module().WGANLP

    class Scaled(torch.nn.Module):  # D(x) = a * x[:, 0]: ||grad|| = |a| everywhere
        def __init__(self, a: float) -> None:
            super().__init__()
            self.a = a

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.a * x[:, 0]

    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    for a, expected in ((0.5, 0.0), (1.5, 10 * 0.25)):
        model = cls(MLPGenerator(latent_dim=2), Scaled(a), latent_dim=2)
        assert model.discriminator_penalty(real, fake).item() == expected


def test_readme_variant_trains_through_the_cli(run_cli, tmp_path: Path) -> None:
    module_dir = tmp_path / "mods"
    module_dir.mkdir()
    text = README.read_text()
    code = text.split("<!-- readme-example: start -->")[1].split("```python\n")[1].split("```")[0]
    (module_dir / "my_gans.py").write_text(code)
    result = run_cli(
        "train.py",
        "model=wgan_gp",
        "model._target_=my_gans.WGANLP",
        "data=toy2d",
        "debug=fast",
        "logger=csv",
        "trainer.max_steps=2",
        f"hydra.run.dir={tmp_path / 'run'}",
        env={"PYTHONPATH": str(module_dir)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    import gan_zoo

    sys.path.insert(0, str(module_dir))
    try:
        model = gan_zoo.load_model(tmp_path / "run" / "checkpoints" / "last.ckpt")
    finally:
        sys.path.remove(str(module_dir))
    assert type(model).__name__ == "WGANLP"
