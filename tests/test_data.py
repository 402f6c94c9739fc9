"""Data: image reading, datasets, the embedded split and the data module (inpaintzoo.data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from inpaintzoo.conventions import check_pair
from inpaintzoo.data import (
    DEFAULT_HOLDOUT,
    EMBEDDED_GRAY,
    EMBEDDED_RGB,
    ImageReadError,
    InpaintDataset,
    embedded_sample_files,
    embedded_split,
    image_to_tensor,
    list_image_files,
    read_image,
    tensor_to_image,
)
from inpaintzoo.masks import FreeFormMasks, MaskFiles, SquareMasks

# --------------------------------------------------------------------------- read_image


def test_read_image_gray_rgba_palette_16bit(tmp_path: Path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    out = read_image(tmp_path / "gray.png")
    assert out.dtype == np.uint8 and out.shape == (8, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 200, 100, 50
    rgba[..., 3] = 0  # fully transparent: alpha is dropped, not composited on black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = read_image(tmp_path / "rgba.png")
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[0, 0], [200, 100, 50])

    la = Image.fromarray(np.stack([gray, np.zeros_like(gray)], axis=2), "LA")
    la.save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png")[:, :, 1], gray)

    palette = Image.new("P", (3, 2))
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (768 - 9))
    palette.putdata([0, 1, 2, 2, 1, 0])
    palette.save(tmp_path / "palette.png")
    out = read_image(tmp_path / "palette.png")
    np.testing.assert_array_equal(out[0], [[255, 0, 0], [0, 255, 0], [0, 0, 255]])

    deep = np.array([[0, 257, 257 * 100, 32896, 65535, 65280]], np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    out = read_image(tmp_path / "deep.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 100, 128, 255, 254])  # value / 257

    Image.fromarray(gray > 100).save(tmp_path / "bits.png")
    assert set(np.unique(read_image(tmp_path / "bits.png"))) == {0, 255}


def test_read_image_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    with pytest.raises(ImageReadError, match=r"cannot decode image file .*corrupt\.jpg"):
        read_image(corrupt)
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(
        ValueError, match="corrupt or unsupported"
    ):  # ImageReadError is a ValueError
        read_image(truncated)
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ImageReadError, match="notes.png"):
        read_image(text)


def test_tensor_round_trip():
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    tensor = image_to_tensor(image)
    assert tensor.shape == (3, 5, 7) and tensor.dtype == torch.float32
    assert 0.0 <= float(tensor.min()) and float(tensor.max()) <= 1.0
    np.testing.assert_array_equal(tensor_to_image(tensor), image)
    np.testing.assert_array_equal(tensor_to_image(tensor[None]), image)


# --------------------------------------------------------------------------- listing


def _write_images(folder: Path, count: int, size=(40, 48)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"img{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_list_image_files(tmp_path: Path):
    top = _write_images(tmp_path / "data", 2)
    nested = _write_images(tmp_path / "data" / "sub", 1)
    (tmp_path / "data" / "readme.txt").write_text("x")
    _write_images(tmp_path / "data" / ".hidden", 1)
    files = list_image_files(tmp_path / "data")
    assert files == top + nested
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list_image_files(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images found in"):
        list_image_files(tmp_path / "empty")
    flist = tmp_path / "data" / "list.txt"
    flist.write_text("sub/img00.png\nimg01.png\n")
    assert list_image_files(flist=flist) == [nested[0], top[1]]


# --------------------------------------------------------------------------- dataset


def test_dataset_items_train_and_eval(tmp_path: Path):
    files = _write_images(tmp_path / "imgs", 3, size=(50, 70))
    for mode in ("train", "eval"):
        dataset = InpaintDataset(files, FreeFormMasks(), size=32, mode=mode, seed=1)
        assert len(dataset) == 3
        item = dataset[2]
        assert set(item) == {"image", "mask", "name", "index"}
        assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
        assert item["mask"].shape == (1, 32, 32) and item["mask"].dtype == torch.float32
        assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
        assert set(item["mask"].unique().tolist()) <= {0.0, 1.0}
        assert item["name"] == "img02" and item["index"] == 2
        check_pair(item["image"][None], item["mask"][None])
    with pytest.raises(IndexError):
        dataset[3]


def test_eval_resize_center_crop_matches_manual(tmp_path: Path):
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 30:50] = 255  # a centred white bar, 20 px wide in 80
    Image.fromarray(image).save(tmp_path / "bar.png")
    dataset = InpaintDataset([tmp_path / "bar.png"], SquareMasks(), size=20, mode="eval")
    out = dataset[0]["image"]  # resize to 20x40, centre crop 20x20 -> bar of 10 px in the middle
    assert out.shape == (3, 20, 20)
    assert float(out[:, :, 5:15].mean()) > 0.95 and float(out[:, :, :4].max()) < 0.05


def test_dataset_errors(tmp_path: Path):
    small = _write_images(tmp_path / "small", 1, size=(20, 30))
    with pytest.raises(ValueError, match=r"img00\.png is 20x30.*smaller than the crop 32x32"):
        InpaintDataset(small, size=32, resize=False)[0]
    assert InpaintDataset(small, size=32, resize=True)[0]["image"].shape == (3, 32, 32)

    def wrong_size(index, height, width, rng):
        return np.zeros((height + 1, width), np.float32)

    with pytest.raises(ValueError, match=r"wrong_size.*\(33, 32\).*\(32, 32\)"):
        InpaintDataset(small, wrong_size, size=32)[0]

    def soft(index, height, width, rng):
        return np.full((height, width), 0.5, np.float32)

    with pytest.raises(ValueError, match="non-binary"):
        InpaintDataset(small, soft, size=32)[0]
    with pytest.raises(ValueError, match="mode"):
        InpaintDataset(small, size=32, mode="test")
    with pytest.raises(ValueError, match="at least one"):
        InpaintDataset([], size=32)


def test_eval_pairing_is_deterministic(tmp_path: Path):
    files = _write_images(tmp_path / "imgs", 4)
    kwargs = {"size": 32, "mode": "eval", "samples_per_epoch": 10}
    first = InpaintDataset(files, FreeFormMasks(), seed=3, **kwargs)
    second = InpaintDataset(files, FreeFormMasks(), seed=3, **kwargs)
    other = InpaintDataset(files, FreeFormMasks(), seed=4, **kwargs)
    masks_a = torch.stack([first[i]["mask"] for i in range(10)])
    masks_b = torch.stack([second[i]["mask"] for i in reversed(range(10))]).flip(0)
    assert torch.equal(masks_a, masks_b)  # order of access does not matter
    masks_c = torch.stack([other[i]["mask"] for i in range(10)])
    assert not torch.equal(masks_a, masks_c)
    assert torch.equal(first[1]["image"], first[5]["image"])  # same file, same centre crop
    assert first[5]["name"] == "img01_mask1"
    loaded = torch.cat(
        [b["mask"] for b in DataLoader(first, batch_size=3, num_workers=2)]
    )  # worker processes give the same pairing
    assert torch.equal(loaded, masks_a)


def test_train_items_are_random_but_follow_torch_seed(tmp_path: Path):
    files = _write_images(tmp_path / "imgs", 2, size=(80, 80))
    dataset = InpaintDataset(
        files, FreeFormMasks(), size=32, mode="train", samples_per_epoch=6, scale=(1.0, 2.0)
    )
    torch.manual_seed(11)
    a = dataset[0]
    b = dataset[0]
    assert not torch.equal(a["mask"], b["mask"])
    assert not torch.equal(a["image"], b["image"])
    torch.manual_seed(11)
    c = dataset[0]
    assert torch.equal(a["mask"], c["mask"]) and torch.equal(a["image"], c["image"])
    assert dataset[3]["name"] == "img01_crop1"


# --------------------------------------------------------------------------- embedded


def test_embedded_split_is_by_image():
    files = embedded_sample_files()
    assert len(files) >= 8 and files == sorted(files)
    train, test = embedded_split()
    assert train and test
    train_stems, test_stems = {f.stem for f in train}, {f.stem for f in test}
    assert not train_stems & test_stems
    assert test_stems == set(DEFAULT_HOLDOUT) & {f.stem for f in files}
    rgb = {n.split(".")[0] for n in EMBEDDED_RGB}
    gray = {n.split(".")[0] for n in EMBEDDED_GRAY}
    assert test_stems & rgb and test_stems & gray
    _, custom = embedded_split(holdout=("chelsea.png",))
    assert [f.stem for f in custom] == ["chelsea"]
    with pytest.raises(ValueError, match="unknown embedded image"):
        embedded_split(holdout=("lena",))
    for file in test:
        image = read_image(file)
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


# --------------------------------------------------------------------------- data module


def test_embedded_datamodule_batches():
    from inpaintzoo.data import InpaintDataModule

    dm = InpaintDataModule.embedded(size=64, batch_size=4, train_samples_per_epoch=10, num_test=6)
    dm.setup("fit")
    train = list(dm.train_dataloader())
    assert len(train) == 2  # 10 samples, batch 4, drop_last
    for batch in train:
        assert batch["image"].shape == (4, 3, 64, 64) and batch["mask"].shape == (4, 1, 64, 64)
        check_pair(batch["image"], batch["mask"])
    val = list(dm.val_dataloader())
    assert [len(b["name"]) for b in val] == [4, 2]  # no drop_last
    names = [n for b in val for n in b["name"]]
    stems = sorted(DEFAULT_HOLDOUT)  # astronaut, camera, coffee, coins
    assert names == [f"{s}_mask0" for s in stems] + [f"{s}_mask1" for s in stems[:2]]
    assert [int(i) for b in val for i in b["index"]] == list(range(6))  # unshuffled
    again = torch.cat([b["mask"] for b in dm.val_dataloader()])
    assert torch.equal(again, torch.cat([b["mask"] for b in val]))
    dm.setup("test")
    assert next(iter(dm.test_dataloader()))["image"].shape == (4, 3, 64, 64)


def test_datamodule_from_plain_dicts(tmp_path: Path):
    from omegaconf import OmegaConf

    from inpaintzoo.data import InpaintDataModule

    _write_images(tmp_path / "train", 5, size=(48, 48))
    _write_images(tmp_path / "val", 3, size=(48, 48))
    mask_dir = tmp_path / "masks"
    mask_dir.mkdir()
    for i in range(3):
        array = np.zeros((64, 64), np.uint8)
        array[: 16 * (i + 1)] = 255  # hole ratios 0.25, 0.5, 0.75
        Image.fromarray(array).save(mask_dir / f"{i}.png")
    files_mask = {"kind": "files", "root": str(mask_dir), "polarity": "white_hole"}
    config = OmegaConf.create(
        {
            "train": {
                "source": "folder",
                "root": str(tmp_path / "train"),
                "size": 32,
                "samples_per_epoch": 8,
                "mask": files_mask,
            },
            "val": {
                "source": "folder",
                "root": str(tmp_path / "val"),
                "size": 32,
                "mask": files_mask,
            },
            "test": {
                "source": "folder",
                "root": str(tmp_path / "val"),
                "size": 32,
                "max_samples": 2,
                "mask": {"kind": "free_form", "num_strokes": [1, 3]},
            },
            "batch_size": 4,
        }
    )
    dm = InpaintDataModule(**config)
    dm.setup()
    assert isinstance(dm.dataset("train").mask_source, MaskFiles)
    assert dm.dataset("train").mask_source.augment is True  # training default for files
    assert dm.dataset("val").mask_source.augment is False
    val = next(iter(dm.val_dataloader()))
    assert val["mask"].shape == (3, 1, 32, 32)
    ratios = val["mask"].mean(dim=(1, 2, 3))
    torch.testing.assert_close(ratios, torch.tensor([0.25, 0.5, 0.75]))
    assert len(dm.dataset("test")) == 2
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32)
    with pytest.raises(ValueError, match="unknown key"):
        InpaintDataModule(train={"source": "folder", "root": str(tmp_path), "sise": 32}).setup()
    with pytest.raises(ValueError, match="no test split"):
        dm.specs["test"] = None
        dm.datasets.pop("test")
        dm.test_dataloader()


@pytest.mark.data
def test_celeba64_folder_with_nvidia_masks(celeba64: Path, nvidia_masks: Path):
    from inpaintzoo.data import InpaintDataModule

    masks = {
        "kind": "files",
        "root": str(nvidia_masks),
        "polarity": "white_hole",
        "start": 10000,
    }  # the 50-60 % bin
    dm = InpaintDataModule(
        train={
            "source": "folder",
            "root": str(celeba64 / "train"),
            "size": 64,
            "mask": {"kind": "free_form"},
        },
        val={
            "source": "folder",
            "root": str(celeba64 / "val"),
            "size": 64,
            "max_samples": 8,
            "mask": masks,
        },
        batch_size=8,
    )
    dm.setup("fit")
    assert len(dm.dataset("train")) == 4545
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (8, 3, 64, 64) and batch["mask"].shape == (8, 1, 64, 64)
    check_pair(batch["image"], batch["mask"])
    val = next(iter(dm.val_dataloader()))
    assert val["name"] == [f.stem for f in dm.dataset("val").files[:8]]
    assert val["name"][0] == sorted(p.stem for p in (celeba64 / "val").glob("*.png"))[0]
    ratios = val["mask"].mean(dim=(1, 2, 3))
    assert bool(((ratios > 0.48) & (ratios < 0.62)).all())
    # a 64x64 CelebA crop at size 64 is the file itself, unchanged
    first = dm.dataset("val").files[0]
    np.testing.assert_array_equal(tensor_to_image(val["image"][0]), read_image(first))
