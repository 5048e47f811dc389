"""``FidelityMetrics`` and the FID reference cache with torch-fidelity's real InceptionV3.

The weights are a seeded random-weight state dict written to a temp file and loaded through
torch-fidelity's own ``FeatureExtractorInceptionV3``: every computation is the real one, only
the weight values differ from the official file. One forward costs ~0.1-0.3 s on a 2-core CPU,
so each test uses a handful of small images.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch
import torch_fidelity
from hydra.utils import instantiate
from threadpoolctl import threadpool_limits
from torch.utils.data import Dataset

from gan_zoo.data.base import GANDataModule, UInt8ImageDataset
from gan_zoo.errors import ConfigValueError
from gan_zoo.metrics import BiasedFIDWarning, FidelityMetrics, reference, write_random_weights
from gan_zoo.metrics.reference import prepare_reference, reference_key
from tests.helpers import compose_train


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "inception_random_seed0.pth"
    return path if path.exists() else write_random_weights(path, seed=0)


def smooth_images(n: int, size: int, channels: int, seed: int) -> torch.Tensor:
    """Float images ``(n, channels, size, size)`` in [-1, 1]: blurry blobs plus a little noise."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, channels, 4, 4, generator=gen) * 2 - 1
    images = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")
    return (images + 0.2 * torch.randn(images.shape, generator=gen)).clamp(-1, 1)


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    return ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


class _Images(Dataset):
    """uint8 RGB images for torch-fidelity, which takes a Dataset of (3, H, W) uint8 tensors."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


class TinyImages(GANDataModule):
    """An in-memory image data module: ``n`` random uint8 images of shape (3, size, size)."""

    def __init__(self, n: int = 6, size: int = 8, seed: int = 0, batch_size: int = 2) -> None:
        super().__init__(batch_size=batch_size)
        self.n, self.size, self.seed = n, size, seed
        self.sample_shape = (3, size, size)

    def build_dataset(self) -> Dataset:
        return UInt8ImageDataset(as_uint8(smooth_images(self.n, self.size, 3, self.seed)))


# ---------------------------------------------------------------------- agreement
@pytest.mark.parametrize(
    ("size", "channels", "dtype"),
    [
        pytest.param(28, 1, "float", marks=pytest.mark.slow, id="28px-gray-float"),
        pytest.param(32, 3, "uint8", id="32px-rgb-uint8"),
        pytest.param(64, 3, "float", marks=pytest.mark.slow, id="64px-rgb-float"),
    ],
)
def test_values_equal_torch_fidelity(inception_weights, size, channels, dtype) -> None:
    real, fake = smooth_images(4, size, channels, 1), smooth_images(6, size, channels, 2) * 0.6
    metric = FidelityMetrics(inception_weights=inception_weights, isc_splits=3, batch_size=4)
    for images, is_real in ((real, True), (fake, False)):
        metric.update(as_uint8(images) if dtype == "uint8" else images, real=is_real)
    with pytest.warns(BiasedFIDWarning, match="4 real and 6 generated"):
        ours = metric.compute()
    rgb = [as_uint8(x).expand(-1, 3, -1, -1).contiguous() for x in (fake, real)]
    with threadpool_limits(limits=1, user_api="blas"):  # its eigvals: 7 s, not 40 s, under load
        theirs = _torch_fidelity(rgb[0], rgb[1], inception_weights)
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-3)
    assert ours["is_mean"] == pytest.approx(theirs["inception_score_mean"], abs=1e-3)
    assert ours["is_std"] == pytest.approx(theirs["inception_score_std"], abs=1e-3)
    assert ours["fid"] > 1 and ours["is_mean"] > 1.05  # the weights make non-trivial values


def _torch_fidelity(fake: torch.Tensor, real: torch.Tensor, weights: Path) -> dict[str, float]:
    return torch_fidelity.calculate_metrics(
        input1=_Images(fake),  # IS is computed on input1
        input2=_Images(real),
        fid=True,
        isc=True,
        isc_splits=3,
        feature_extractor_weights_path=str(weights),
        cuda=False,
        cache=False,
        save_cpu_ram=True,
        verbose=False,
    )


def test_one_inception_pass_per_image_feeds_both_metrics(inception_weights) -> None:
    metric = FidelityMetrics(inception_weights=inception_weights, isc_splits=2, batch_size=3)
    seen = []
    metric.extractor.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[0]))
    metric.update(smooth_images(4, 16, 3, 3), real=True)
    metric.update(smooth_images(5, 16, 3, 4), real=False)
    assert sum(seen) == 9  # each image once, although the fakes feed FID and IS
    with pytest.warns(BiasedFIDWarning):
        values = metric.compute()
    assert set(values) == {"fid", "is_mean", "is_std"}
    metric.reset()
    with pytest.raises(ValueError, match="at least 2 real and 2 generated images, got 0 real"):
        metric.compute()


def test_fewer_than_two_samples_is_a_clear_error(inception_weights) -> None:
    metric = FidelityMetrics(inception_weights=inception_weights, isc=False)
    metric.update(smooth_images(1, 8, 3, 5), real=True)
    metric.update(smooth_images(3, 8, 3, 6), real=False)
    with pytest.raises(ValueError, match="got 1 real and 3 generated"):
        metric.compute()


def test_bad_arguments_are_refused(inception_weights) -> None:
    with pytest.raises(ConfigValueError, match="at least one metric"):
        FidelityMetrics(fid=False, isc=False, inception_weights=inception_weights)
    metric = FidelityMetrics(fid=False, inception_weights=inception_weights)
    with pytest.raises(ConfigValueError, match="real images only serve FID"):
        metric.update(smooth_images(2, 8, 3, 0), real=True)
    with pytest.raises(ConfigValueError, match=r"floats in \[-1, 1\]"):
        metric.update(torch.rand(2, 3, 8, 8) * 255, real=False)


# ---------------------------------------------------------------------- reference and cache
def test_reference_is_the_fixed_real_sample_set_and_is_cached(
    inception_weights, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gan_zoo.metrics.reference")
    data = TinyImages(n=6)
    metric = FidelityMetrics(inception_weights=inception_weights, isc=False, batch_size=4)
    first = prepare_reference(metric, data, 3, tmp_path, batch_size=2)
    assert first.source == "computed" and first.path.is_file()
    assert first.path.parent == tmp_path / "fid_stats"
    computed = metric.real_statistics()
    # The reference is exactly data.real_samples(3), the images sample grids compare against.
    direct = FidelityMetrics(inception_weights=inception_weights, isc=False)
    direct.update(data.real_samples(3), real=True)
    expected = direct.real_statistics()
    assert computed.count == 3
    torch.testing.assert_close(computed.feature_sum, expected.feature_sum, rtol=1e-5, atol=1e-6)

    again = prepare_reference(metric, TinyImages(n=6), 3, tmp_path)
    assert again.source == "cache" and again.key == first.key
    assert torch.equal(metric.real_statistics().outer_sum, computed.outer_sum)
    assert f"cache key: {first.key}" in caplog.text
    for part in ("TinyImages", "split=train", "n=3", "inception-v3-compat", "tf1x-bilinear-299"):
        assert part in first.key


def test_corrupt_or_mismatched_cache_files_are_recomputed(inception_weights, tmp_path) -> None:
    data = TinyImages(n=5)
    metric = FidelityMetrics(inception_weights=inception_weights, isc=False)
    good = prepare_reference(metric, data, 2, tmp_path)
    stats = metric.real_statistics()
    saved = good.path.read_bytes()

    good.path.write_bytes(saved[: len(saved) // 2])  # truncated, as by a crash mid-write
    assert prepare_reference(metric, data, 2, tmp_path).source == "computed"
    assert torch.equal(metric.real_statistics().feature_sum, stats.feature_sum)
    assert prepare_reference(metric, data, 2, tmp_path).source == "cache"  # rewritten whole

    other = prepare_reference(metric, data, 3, tmp_path)  # another N: another key and file
    assert other.path != good.path and other.key != good.key
    shutil.copy(other.path, good.path)  # a valid file for the wrong key
    assert prepare_reference(metric, data, 2, tmp_path).source == "computed"
    assert torch.equal(metric.real_statistics().feature_sum, stats.feature_sum)


def test_cache_key_changes_with_data_settings_content_and_weights(inception_weights, tmp_path):
    metric = FidelityMetrics(inception_weights=inception_weights, isc=False)
    key = reference_key(TinyImages(n=5), 2, metric.extractor_id())
    assert key == reference_key(TinyImages(n=5, batch_size=5), 2, metric.extractor_id())
    assert key != reference_key(TinyImages(n=6), 2, metric.extractor_id())  # settings, size
    assert key != reference_key(TinyImages(n=5, seed=1), 2, metric.extractor_id())  # content
    state = torch.load(inception_weights, weights_only=True)
    state["fc.bias"][0] += 1  # other weights, same architecture
    torch.save(state, tmp_path / "other.pth")
    other = FidelityMetrics(inception_weights=tmp_path / "other.pth", isc=False)
    assert key != reference_key(TinyImages(n=5), 2, other.extractor_id())


def test_cache_key_is_the_same_for_every_run_seed_but_not_for_another_split_or_n(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extractor = "inception-v3-compat:sha256=0123456789abcdef"
    keys = set()
    for seed in (0, 1, 1234):
        cfg = compose_train([f"seed={seed}", "data.batch_size=32"])
        data = instantiate(cfg.data)  # the shipped data module (mnist_subset)
        data.shuffle_seed = cfg.seed  # as train.py does: the run's seed orders the batches
        keys.add(reference_key(data, 128, extractor))
    key = keys.pop()
    assert not keys  # one reference for every seed, and for evaluate.py (shuffle_seed 0)
    data = instantiate(compose_train([]).data)
    assert reference_key(data, 256, extractor) != key  # N
    monkeypatch.setattr(reference, "SPLIT", "test")
    assert reference_key(data, 128, extractor) != key  # split
    assert "split=test" in reference_key(data, 128, extractor)


def test_reference_larger_than_the_train_set_is_refused(inception_weights, tmp_path) -> None:
    metric = FidelityMetrics(inception_weights=inception_weights, isc=False)
    with pytest.raises(
        RuntimeError, match=r"num_real=7 is invalid: expected an integer in \[2, 5\]"
    ):
        prepare_reference(metric, TinyImages(n=5), 7, tmp_path)
