"""gan_zoo.data: every DataModule loads real-format files offline and keeps the shared contract."""

from __future__ import annotations

import gzip
import inspect
import pickle
import struct
from pathlib import Path

import hydra.utils
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from gan_zoo.data import (
    CIFAR10DataModule,
    GANDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    MNISTSubsetDataModule,
    Toy1DDataModule,
    Toy2DDataModule,
)
from gan_zoo.errors import ConfigValueError
from tests.helpers import write_image_folder

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "data"


def expected_pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 images -> the float32 [-1, 1] values the DataModules must produce."""
    return torch.from_numpy(images.astype(np.float32)) / 127.5 - 1.0


def first_batch(dm: GANDataModule) -> torch.Tensor:
    return next(iter(dm.train_dataloader()))


# --- MNIST -------------------------------------------------------------------------------------


def test_mnist_subset_loads_the_bundled_digits() -> None:
    dm = MNISTSubsetDataModule(batch_size=32)
    assert dm.sample_shape == (1, 28, 28)
    dm.setup("fit")
    assert dm.dataset is not None and len(dm.dataset) == 5000  # type: ignore[arg-type]
    images = dm.dataset.images  # type: ignore[attr-defined]
    pixels = torch.stack([dm.dataset[i] for i in range(0, 5000, 50)])
    assert pixels.min() >= -1 and pixels.max() <= 1
    assert images.min() == 0 and images.max() == 255  # so the float range hits -1 and 1 exactly
    assert pixels.min() == -1 and pixels.max() == 1
    assert dm.labels is not None and torch.bincount(dm.labels).tolist() == [500] * 10

    batch = first_batch(dm)
    assert isinstance(batch, torch.Tensor)
    assert batch.shape == (32, 1, 28, 28) and batch.dtype == torch.float32


def test_subset_is_a_fixed_labelled_choice_served_in_whole_batches() -> None:
    full = MNISTSubsetDataModule()
    full.setup("fit")
    small = MNISTSubsetDataModule(batch_size=50, subset=500)
    again = MNISTSubsetDataModule(subset=500)
    small.setup("fit")
    again.setup("fit")
    assert len(small.dataset) == 500  # type: ignore[arg-type]
    indices = small.dataset.indices  # type: ignore[union-attr]
    assert torch.equal(indices, again.dataset.indices)  # type: ignore[union-attr]
    assert indices.unique().numel() == 500 and int(indices.max()) < 5000
    # Labels follow their samples, and a labelled batch is the same rows as the full set's.
    assert full.labels is not None
    assert torch.equal(small.dataset.labels, full.labels[indices])  # type: ignore[union-attr]
    assert small.num_classes == 10 and small.real_samples(500).shape == (500, 1, 28, 28)
    rows = small.dataset.rows([0, 7])  # type: ignore[union-attr]
    assert torch.equal(rows, torch.stack([full.dataset[int(indices[i])] for i in (0, 7)]))  # type: ignore[index]
    epoch = torch.cat(list(small.train_dataloader()))
    assert epoch.shape == (500, 1, 28, 28)  # every subset digit once per epoch, no others
    kept = {tuple(full.dataset[int(i)].flatten()[::7].tolist()) for i in indices}  # type: ignore[index]
    assert {tuple(x.flatten()[::7].tolist()) for x in epoch} <= kept


def test_subset_larger_than_the_dataset_names_its_size(tmp_path: Path) -> None:
    with pytest.raises(ConfigValueError, match=r"data.subset=6000 .*at most 5000"):
        MNISTSubsetDataModule(subset=6000).setup("fit")
    folder = ImageFolderDataModule(root=str(write_image_folder(tmp_path)), image_size=8, subset=2)
    folder.setup("fit")
    assert len(folder.dataset) == 2 and folder.dataset[1].shape == (3, 8, 8)  # type: ignore[arg-type,index]


def test_real_samples_are_a_fixed_shuffled_reference() -> None:
    a, b = MNISTSubsetDataModule(), MNISTSubsetDataModule()
    first = a.real_samples(64)  # works before setup: builds the dataset lazily
    assert first.shape == (64, 1, 28, 28)
    assert torch.equal(first, b.real_samples(64))
    # The csv is sorted by class; the reference must not be 64 zeros.
    assert not torch.equal(first, torch.stack([a.dataset[i] for i in range(64)]))  # type: ignore[index]
    with pytest.raises(ConfigValueError, match="5000"):
        a.real_samples(5001)


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """One file in LeCun's IDX format: big-endian magic, sizes, then uint8 data."""
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, images: np.ndarray, labels: np.ndarray, extracted: bool = True) -> None:
    """Lay files out as a torchvision download does: the .gz files plus their extracted copies.

    torchvision 0.29 reads only the extracted files and requires all four (train and t10k).
    """
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split in ("train", "t10k"):
        for name, array, magic in (("images-idx3", images, 2051), ("labels-idx1", labels, 2049)):
            path = raw / f"{split}-{name}-ubyte"
            write_idx(path, array, magic)
            (raw / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
            if not extracted:
                path.unlink()


def test_mnist_reads_idx_files_through_torchvision(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    images[0, 0, :2] = (0, 255)
    write_mnist(tmp_path, images, np.arange(10, dtype=np.uint8))

    dm = MNISTDataModule(data_dir=str(tmp_path), batch_size=4, download=False)
    dm.prepare_data()
    dm.setup("fit")
    loaded = torch.stack([dm.dataset[i] for i in range(10)])  # type: ignore[index]
    assert torch.equal(loaded, expected_pixels(images)[:, None])
    assert first_batch(dm).shape == (4, 1, 28, 28)


def test_mnist_without_extracted_files_names_data_dir(tmp_path: Path) -> None:
    write_mnist(tmp_path, np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.uint8), extracted=False)
    dm = MNISTDataModule(data_dir=str(tmp_path), batch_size=4, download=False)
    with pytest.raises(ConfigValueError, match="download=true") as info:
        dm.setup("fit")
    assert info.value.key == "data_dir"


# --- CIFAR-10 ----------------------------------------------------------------------------------


def write_cifar10(root: Path, train_rows: np.ndarray) -> None:
    """Write ``cifar-10-batches-py`` pickles holding ``train_rows`` ``(N, 3072)`` in 5 batches.

    The official files are Python 2 pickles whose str keys torchvision's ``encoding="latin1"``
    load turns into "data"/"labels"; Python 3 bytes keys would stay bytes, so we pickle str keys.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = np.split(train_rows, 5) + [train_rows[:1]]
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, data in zip(names, batches, strict=True):
        labels = [i % 10 for i in range(len(data))]
        (folder / name).write_bytes(pickle.dumps({"data": data, "labels": labels}))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer"] * 2}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))


def random_cifar_rows(n: int) -> np.ndarray:
    rows = np.random.default_rng(0).integers(0, 256, size=(n, 3072), dtype=np.uint8)
    rows[0, :2] = (0, 255)
    return rows


def test_cifar10_reads_pickle_batches_through_torchvision(tmp_path: Path) -> None:
    rows = random_cifar_rows(10)
    write_cifar10(tmp_path, rows)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), batch_size=4, download=False, verify=False)
    dm.prepare_data()
    dm.setup("fit")
    loaded = torch.stack([dm.dataset[i] for i in range(10)])  # type: ignore[index]
    # Each row is 1024 red, 1024 green, 1024 blue values, each plane row-major 32x32.
    assert torch.equal(loaded, expected_pixels(rows.reshape(10, 3, 32, 32)))
    assert loaded.min() == -1 and loaded.max() == 1
    assert first_batch(dm).shape == (4, 3, 32, 32)


def test_cifar10_checks_md5_by_default(tmp_path: Path) -> None:
    write_cifar10(tmp_path, random_cifar_rows(10))
    dm = CIFAR10DataModule(data_dir=str(tmp_path), batch_size=4, download=False)
    with pytest.raises(ConfigValueError, match="md5") as info:
        dm.setup("fit")
    assert info.value.key == "data_dir"


# --- toy data ----------------------------------------------------------------------------------


def per_mode_stats(points: torch.Tensor, modes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Share of points nearest each mode ``(K,)`` and the std of their offsets ``(K, D)``."""
    nearest = torch.cdist(points, modes).argmin(dim=1)
    shares = torch.bincount(nearest, minlength=len(modes)).float() / len(points)
    stds = torch.stack([(points[nearest == k] - modes[k]).std(dim=0) for k in range(len(modes))])
    return shares, stds


@pytest.mark.parametrize(("name", "num_modes", "std"), [("ring8", 8, 0.01), ("grid25", 25, 0.05)])
def test_toy2d_mixtures(name: str, num_modes: int, std: float) -> None:
    dm = Toy2DDataModule(name=name, num_samples=50_000, batch_size=256)
    assert dm.sample_shape == (2,) and dm.mode_std == std
    assert dm.modes is not None and dm.modes.shape == (num_modes, 2)
    dm.setup("fit")
    points = dm.dataset.data  # type: ignore[union-attr]
    assert points.shape == (50_000, 2) and points.dtype == torch.float32
    shares, stds = per_mode_stats(points, dm.modes)
    assert torch.allclose(shares, torch.full_like(shares, 1 / num_modes), rtol=0.15)
    assert torch.allclose(stds, torch.full_like(stds, std), rtol=0.15)
    assert first_batch(dm).shape == (256, 2)


def test_toy2d_mode_locations() -> None:
    ring = Toy2DDataModule(name="ring8").modes
    angles = torch.arange(8) * 2 * torch.pi / 8
    assert ring is not None
    assert torch.allclose(ring, torch.stack([angles.cos(), angles.sin()], 1), atol=1e-6)
    grid = Toy2DDataModule(name="grid25").modes
    assert grid is not None
    assert sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len({tuple(p) for p in grid.tolist()}) == 25


def test_toy2d_swiss_roll_and_determinism() -> None:
    dm = Toy2DDataModule(name="swiss_roll", num_samples=1000, batch_size=100)
    assert dm.modes is None and dm.mode_std is None
    points = dm.real_samples(1000)
    assert points.shape == (1000, 2) and points.abs().max() < 3
    same = Toy2DDataModule(name="swiss_roll", num_samples=1000, batch_size=100)
    assert torch.equal(points, same.real_samples(1000))
    other = Toy2DDataModule(name="swiss_roll", num_samples=1000, batch_size=100, seed=1)
    assert not torch.equal(points, other.real_samples(1000))


def test_toy2d_bad_name_lists_valid_names() -> None:
    with pytest.raises(ConfigValueError, match="name='ring9'.*ring8, grid25, swiss_roll"):
        Toy2DDataModule(name="ring9")


def test_toy1d_matches_its_mixture() -> None:
    dm = Toy1DDataModule(means=[-2.0, 2.0], std=0.5, num_samples=50_000)
    assert dm.sample_shape == (1,) and dm.modes.tolist() == [[-2.0], [2.0]]
    points = dm.real_samples(50_000)
    left, right = points[points < 0], points[points >= 0]
    assert abs(len(left) / 50_000 - 0.5) < 0.02
    assert abs(left.mean() + 2) < 0.02 and abs(right.mean() - 2) < 0.02
    assert abs(left.std() - 0.5) < 0.02 and abs(right.std() - 0.5) < 0.02
    assert first_batch(dm).shape == (512, 1)


@pytest.mark.parametrize(("kwargs", "key"), [({"std": 0.0}, "std"), ({"means": []}, "means")])
def test_toy1d_rejects_bad_mixture(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigValueError) as info:
        Toy1DDataModule(**kwargs)  # type: ignore[arg-type]
    assert info.value.key == key


# --- shared contract ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "key"), [({"batch_size": 0}, "batch_size"), ({"num_workers": -1}, "num_workers")]
)
def test_bad_loader_arguments(kwargs: dict[str, int], key: str) -> None:
    with pytest.raises(ConfigValueError) as info:
        Toy1DDataModule(**kwargs)  # type: ignore[arg-type]
    assert info.value.key == key


def test_batch_larger_than_dataset_names_the_size() -> None:
    dm = Toy1DDataModule(num_samples=100, batch_size=512)
    with pytest.raises(
        ConfigValueError, match=r"^batch_size=512 is invalid: expected at most 100 "
    ):
        dm.check_fits()
    # A model with n_critic=5 reads 5 critic batches per generator step, over 2 ranks here.
    with pytest.raises(
        ConfigValueError,
        match=r"expected at most 10 \(the dataset's 100 samples "
        r"over 2 ranks must fill the 5 critic batches of one generator step\)",
    ):
        Toy1DDataModule(num_samples=100, batch_size=12).check_fits(critic_steps=5, world_size=2)
    Toy1DDataModule(num_samples=100, batch_size=10).check_fits(critic_steps=5, world_size=2)


class _Critic5(pl.LightningModule):
    """A stand-in GAN with n_critic = 5: the data module serves 5 critic batches per step."""

    n_critic = 5

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, ...]] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.seen.append(tuple(batch.shape))

    def configure_optimizers(self) -> None:
        return None


def test_one_training_batch_holds_the_n_critic_batches_of_a_generator_step(tmp_path: Path) -> None:
    model = _Critic5()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        accelerator="cpu",
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=Toy2DDataModule(num_samples=1000, batch_size=64))
    # 1000 // (5 * 64) = 3 generator steps per epoch, each on 5 * 64 fresh rows.
    assert model.seen == [(320, 2)] * 3 and trainer.num_training_batches == 3


def test_workers_are_persistent() -> None:
    loader = Toy1DDataModule(num_samples=1000, num_workers=2, batch_size=10).train_dataloader()
    assert loader.num_workers == 2 and loader.persistent_workers and loader.drop_last


class _MeanModel(pl.LightningModule):
    """Fits a constant to the data: just enough to drive the Trainer's data hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.centre = torch.nn.Parameter(torch.zeros(2))

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        assert batch.shape == (64, 2)
        return (batch - self.centre).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_trainer_drives_the_hooks(tmp_path: Path) -> None:
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        fast_dev_run=2,
        accelerator="cpu",
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(_MeanModel(), datamodule=Toy2DDataModule(num_samples=1000, batch_size=64))
    assert trainer.global_step == 2


# --- configs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("config", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_config_instantiates(config: Path, tmp_path: Path) -> None:
    node = OmegaConf.load(config)
    target = hydra.utils.get_class(node._target_)
    params = set(inspect.signature(target).parameters)
    assert set(node.keys()) - {"_target_"} == params, "keys must be the constructor arguments"
    assert config.read_text().startswith("# "), "each config opens with a comment saying what it is"

    cfg = OmegaConf.create({"paths": {"data_dir": str(tmp_path)}, "data": node})
    if OmegaConf.is_missing(cfg.data, "root"):
        cfg.data.root = str(write_image_folder(tmp_path / "images"))
    dm = hydra.utils.instantiate(cfg.data)
    assert dm.batch_size == (512 if config.stem.startswith("toy") else 64)
    if "data_dir" in node:
        assert dm.data_dir == str(tmp_path)
    assert isinstance(dm, target) and issubclass(target, GANDataModule)


def test_every_datamodule_has_a_config() -> None:
    targets = {OmegaConf.load(p)._target_ for p in CONFIG_DIR.glob("*.yaml")}
    assert len(targets) == 6 and all(t.startswith("gan_zoo.data.") for t in targets)
