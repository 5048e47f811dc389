"""``callbacks.fidelity`` across a resume, with an EMA generator, in one pass.

Real training runs composed from ``configs/train.yaml`` (4 generator steps, 4 fakes per
evaluation); InceptionV3 is torch-fidelity's real extractor with seeded random weights, whose
forward is only wrapped to count the images that go through it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hydra.utils import instantiate
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from gan_zoo.checkpointing import load_model, read_checkpoint
from gan_zoo.metrics import FidelityMetrics, write_random_weights
from gan_zoo.metrics.protocol import score_generator
from gan_zoo.metrics.reference import prepare_reference
from gan_zoo.training import train
from tests.helpers import FAST_WITH_METRICS, compose_train
from tests.integration.test_metrics_callback import logged, metric_overrides, read_metrics

FID, IS = "val/fid_4_train", "val/is_4"


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "inception_random_seed0.pth"
    return path if path.exists() else write_random_weights(path, seed=0)


@pytest.mark.slow  # two training runs of 10 and 10 WGAN-GP batches, plus 12 InceptionV3 images
def test_a_resumed_run_does_not_evaluate_its_checkpoint_step_again(
    inception_weights: Path, tmp_path: Path
) -> None:
    # WGAN-GP: 5 critic batches per generator step, all in one training step, so the first
    # batch after a resume from step 2 is step 3, and step 2 is not scored again.
    overrides = [
        *FAST_WITH_METRICS,
        *metric_overrides(inception_weights, tmp_path / "cache"),
        "model=wgan_gp",
    ]
    first = tmp_path / "first"
    train(compose_train([*overrides, "trainer.max_steps=2"], run_dir=first))
    assert sorted(logged(read_metrics(first), FID)) == [2]
    saved = read_checkpoint(first / "checkpoints" / "last.ckpt")
    assert saved["global_step"] == 2

    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copy(first / "checkpoints" / "last.ckpt", resumed / "checkpoints" / "last.ckpt")
    train(compose_train([*overrides, "ckpt_path=last"], run_dir=resumed))  # steps 3 and 4
    rows = read_metrics(resumed)
    assert sorted(logged(rows, FID)) == [4] and sorted(logged(rows, IS)) == [4]


@pytest.fixture(scope="module")
def ema_run(inception_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A run with ``model.ema_decay=0.9``, counting the images InceptionV3 sees."""
    run_dir = tmp_path_factory.mktemp("ema")
    overrides = [*FAST_WITH_METRICS, *metric_overrides(inception_weights, run_dir / "cache")]
    overrides.append("model.ema_decay=0.9")
    seen: list[int] = []
    forward = FeatureExtractorInceptionV3.forward

    def counting_forward(self: FeatureExtractorInceptionV3, x: torch.Tensor) -> Any:
        seen.append(x.shape[0])  # (B, 3, H, W) uint8
        return forward(self, x)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FeatureExtractorInceptionV3, "forward", counting_forward)
        train(compose_train(overrides, run_dir=run_dir))
    return {"run_dir": run_dir, "images": sum(seen), "overrides": overrides}


def test_fid_and_is_share_one_inception_pass_per_image(ema_run: dict[str, Any]) -> None:
    rows = read_metrics(ema_run["run_dir"])
    assert sorted(logged(rows, FID)) == [2, 4] and sorted(logged(rows, IS)) == [2, 4]
    # 4 reals once (then cached in memory), 4 fakes at each of 2 evaluations; a pass per
    # metric would be 4 + 2 * 2 * 4 = 20.
    assert ema_run["images"] == 4 + 2 * 4


def test_with_ema_the_metrics_score_the_ema_generator(
    ema_run: dict[str, Any], inception_weights: Path
) -> None:
    run_dir: Path = ema_run["run_dir"]
    hparams = yaml.safe_load((run_dir / "csv" / "version_0" / "hparams.yaml").read_text())
    assert hparams["metric_protocol"][FID]["generator"] == "ema"
    assert hparams["metric_protocol"][IS]["generator"] == "ema"
    rows = read_metrics(run_dir)
    fid, is_mean = logged(rows, FID)[4], logged(rows, IS)[4]

    # Score the step-4 checkpoint's two generators the way the callback does.
    model = load_model(run_dir / "checkpoints" / "last.ckpt")
    assert model.generator_ema is not None
    metric = FidelityMetrics(inception_weights=inception_weights, isc_splits=2, batch_size=64)
    data = instantiate(compose_train(ema_run["overrides"]).data)
    assert prepare_reference(metric, data, 4, run_dir / "cache").source == "cache"

    def score(generator: torch.nn.Module) -> dict[str, float]:
        with torch.no_grad():
            return score_generator(metric, generator, model.latent_dim, 4, seed=4321, batch_size=64)

    ema, raw = score(model.generator_ema), score(model.generator)
    assert ema["fid"] == pytest.approx(fid, rel=1e-6)
    assert ema["is_mean"] == pytest.approx(is_mean, rel=1e-6)
    assert raw["fid"] != pytest.approx(fid, rel=1e-3)  # the raw generator scores differently
