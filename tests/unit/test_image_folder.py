"""gan_zoo.data.ImageFolderDataModule: finds, decodes and crops images; damaged files are found
at setup (skipped and counted once, or a one-line error with strict), never mid-training."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from gan_zoo.data import ImageFolderDataModule
from gan_zoo.data.image_folder import image_problem
from gan_zoo.errors import ConfigValueError
from tests.helpers import write_image_folder, write_truncated


@pytest.fixture
def image_folder_root(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images")


def test_image_folder_finds_resizes_and_skips(image_folder_root: Path) -> None:
    dm = ImageFolderDataModule(str(image_folder_root), image_size=16, channels=3, batch_size=2)
    assert dm.sample_shape == (3, 16, 16)
    with pytest.warns(UserWarning, match="skipped 1 unreadable image file"):
        dm.setup("fit")
    assert len(dm.files) == 5 and dm.num_skipped == 1
    names = {"red.png", "blue.JPG", "white.png", "green.png", "black.bmp"}
    assert {p.name for p in dm.files} == names

    items = {p.name: dm.dataset[i] for i, p in enumerate(dm.files)}  # type: ignore[index]
    assert all(x.shape == (3, 16, 16) and x.dtype == torch.float32 for x in items.values())
    assert torch.equal(items["red.png"][:, 0, 0], torch.tensor([1.0, -1.0, -1.0]))
    # RGBA (0, 255, 0, 128): the alpha is dropped, not blended.
    assert torch.equal(items["green.png"][:, 0, 0], torch.tensor([-1.0, 1.0, -1.0]))
    assert torch.all(items["white.png"] == 1) and torch.all(items["black.bmp"] == -1)
    assert next(iter(dm.train_dataloader())).shape == (2, 3, 16, 16)


def test_image_folder_grayscale(image_folder_root: Path) -> None:
    dm = ImageFolderDataModule(str(image_folder_root), image_size=8, channels=1, batch_size=5)
    with pytest.warns(UserWarning):
        batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (5, 1, 8, 8) and batch.min() >= -1 and batch.max() <= 1


def test_image_folder_strict_names_the_corrupt_file(image_folder_root: Path) -> None:
    dm = ImageFolderDataModule(str(image_folder_root), image_size=8, batch_size=2, strict=True)
    with pytest.raises(ConfigValueError, match="broken.png") as info:
        dm.setup("fit")
    assert info.value.key == "root"


def test_image_folder_missing_or_empty_root(tmp_path: Path) -> None:
    with pytest.raises(ConfigValueError, match="an existing directory") as info:
        ImageFolderDataModule(str(tmp_path / "nope"))
    assert info.value.key == "root"

    empty = tmp_path / "empty"
    empty.mkdir()
    no_images = tmp_path / "no_images"
    (no_images / "sub").mkdir(parents=True)
    (no_images / "notes.txt").write_text("no images here")
    (no_images / "sub" / "image.png.txt").write_text("not an image either")
    for root in (empty, no_images):
        dm = ImageFolderDataModule(str(root))
        with pytest.raises(ConfigValueError, match=r"no image files were found.*\.png") as info:
            dm.setup("fit")
        assert info.value.key == "root" and "\n" not in str(info.value)


# --- truncated files: PIL's verify() passes a cut JPEG; training would crash on it -------------


@pytest.fixture
def truncated_root(tmp_path: Path) -> Path:
    """3 good images, a JPEG and a PNG cut to 60% of their bytes."""
    root = tmp_path / "images"
    root.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (80 * i, 0, 0)).save(root / f"good{i}.png")
    write_truncated(root / "cut.jpg")
    write_truncated(root / "cut.png")
    return root


def test_verify_alone_misses_the_truncated_jpeg(truncated_root: Path) -> None:
    """The control: why the scan decodes instead of only verifying."""
    with Image.open(truncated_root / "cut.jpg") as image:
        image.verify()  # no error
    with Image.open(truncated_root / "cut.jpg") as image, pytest.raises(OSError, match="trunc"):
        image.load()
    for name in ("cut.jpg", "cut.png"):
        reason = image_problem(truncated_root / name)
        assert reason is not None and "truncated" in reason.lower() and "\n" not in reason
    assert image_problem(truncated_root / "good0.png") is None


def test_truncated_images_are_skipped_and_counted_once(truncated_root: Path) -> None:
    dm = ImageFolderDataModule(str(truncated_root), image_size=8, batch_size=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup("fit")
        dm.setup("fit")  # Lightning calls setup again after train.py did: a no-op
        batches = list(dm.train_dataloader())  # every remaining file decodes
        dm.real_samples(3)
    messages = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert len(messages) == 1, messages
    assert "skipped 2 unreadable image file(s) of 5" in messages[0] and "\n" not in messages[0]
    assert "cut.jpg" in messages[0] and "data.strict=true" in messages[0]
    assert dm.num_skipped == 2 and sorted(p.name for p in dm.files) == [
        f"good{i}.png" for i in range(3)
    ]
    assert len(batches) == 1 and batches[0].shape == (3, 3, 8, 8)


@pytest.mark.parametrize("name", ["cut.jpg", "cut.png"])
def test_strict_refuses_a_truncated_file_in_one_line(name: str, tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    Image.new("RGB", (20, 20)).save(root / "good.png")
    write_truncated(root / name)
    dm = ImageFolderDataModule(str(root), image_size=8, batch_size=1, strict=True)
    with pytest.raises(ConfigValueError) as info:
        dm.setup("fit")
    message = str(info.value.with_prefix("data"))  # as train.py prints it
    assert message.startswith(f"data.root='{root}' is invalid: expected only readable images")
    assert f"{root / name} is unreadable (" in message and "truncated" in message.lower()
    assert "data.strict=false" in message and "\n" not in message


def test_all_truncated_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    write_truncated(root / "a.jpg")
    write_truncated(root / "b.png", keep=0.3)
    with (
        pytest.warns(UserWarning, match="skipped 2"),
        pytest.raises(ConfigValueError, match="all 2 failed to open"),
    ):
        ImageFolderDataModule(str(root), image_size=8, batch_size=1).setup("fit")
