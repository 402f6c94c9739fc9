"""Masks: polarity, files, ratios and bins, generators, mask sources (inpaintzoo.masks)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintzoo.masks import (
    CTSDG_BINS,
    NVIDIA6_BINS,
    DeepFillV2Masks,
    FreeFormMasks,
    HoleRatioBins,
    MaskFiles,
    MixedMasks,
    RectangleMasks,
    SquareMasks,
    binarize_mask,
    build_mask_source,
    deepfill_box_mask,
    deepfill_v2_mask,
    free_form_mask,
    half_mask,
    hole_ratio,
    hole_ratio_batch,
    list_mask_files,
    load_mask,
    rectangle_mask,
    square_mask,
)


def _bar(height: int = 8, width: int = 8, hole_cols: int = 2) -> np.ndarray:
    """uint8 0/255 image whose first ``hole_cols`` columns are white."""
    array = np.zeros((height, width), np.uint8)
    array[:, :hole_cols] = 255
    return array


# --------------------------------------------------------------------------- polarity


def test_white_and_black_hole_polarity():
    array = _bar(hole_cols=2)
    white = binarize_mask(array, "white_hole")
    black = binarize_mask(array, "black_hole")
    assert white.dtype == np.float32 and white.shape == (8, 8)
    assert white[:, :2].min() == 1 and white[:, 2:].max() == 0
    np.testing.assert_array_equal(black, 1 - white)


def test_auto_is_white_hole_without_warning_when_plausible():
    array = _bar(hole_cols=5)  # 62.5 % hole: large but plausible, must not be "fixed"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auto = binarize_mask(array, "auto", name="a.png")
    np.testing.assert_array_equal(auto, binarize_mask(array, "white_hole"))
    assert hole_ratio(auto) == pytest.approx(0.625)


def test_auto_warns_on_mostly_hole_naming_file_and_flag():
    array = np.full((10, 10), 255, np.uint8)
    array[0, 0] = 0  # 99 % white
    with pytest.warns(UserWarning, match="mask_polarity=black_hole") as record:
        mask = binarize_mask(array, "auto", name="masks/inverted_0001.png")
    assert "masks/inverted_0001.png" in str(record[0].message)
    assert hole_ratio(mask) == pytest.approx(0.99)  # auto never flips by itself


def test_auto_warns_on_empty_mask_naming_file():
    with pytest.warns(UserWarning, match="empty mask") as record:
        mask = binarize_mask(np.zeros((6, 6), np.uint8), "auto", name="blank.png")
    assert (
        "blank.png" in str(record[0].message) and "check the file" in str(record[0].message).lower()
    )
    assert mask.sum() == 0


def test_explicit_polarity_does_not_warn_on_extreme_masks():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert binarize_mask(np.full((4, 4), 255, np.uint8), "white_hole").mean() == 1
        assert binarize_mask(np.zeros((4, 4), np.uint8), "white_hole").sum() == 0


def test_zero_one_uint8_mask_warns():
    array = np.zeros((4, 4), np.uint8)
    array[0] = 1
    with pytest.warns(UserWarning, match="only 0 and 1"):
        binarize_mask(array, "white_hole", name="zero_one.png")


def test_threshold_on_soft_uint8_uint16_and_float_masks():
    soft = np.array([[0, 100, 127, 128, 200, 255]], np.uint8)  # anti-aliased edge
    np.testing.assert_array_equal(binarize_mask(soft, "white_hole")[0], [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(binarize_mask(soft, "black_hole")[0], [1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(
        binarize_mask(soft, "white_hole", threshold=0.1)[0], [0, 1, 1, 1, 1, 1]
    )
    deep = np.array([[0, 200, 30000, 32767, 32768, 65535]], np.uint16)
    # 200 would be "white" if uint16 were read on an 8-bit scale: it must stay known.
    np.testing.assert_array_equal(binarize_mask(deep, "white_hole")[0], [0, 0, 0, 0, 1, 1])
    floats = np.array([[0.0, 0.3, 0.5, 0.51, 1.0]], np.float32)
    np.testing.assert_array_equal(binarize_mask(floats, "white_hole")[0], [0, 0, 0, 1, 1])
    booleans = np.array([[True, False]])
    np.testing.assert_array_equal(binarize_mask(booleans, "white_hole")[0], [1, 0])
    ints = np.array([[0, 1, 1]], np.int64)  # 0/1 built in code: binary as is
    np.testing.assert_array_equal(binarize_mask(ints, "white_hole")[0], [0, 1, 1])


def test_rgb_rgba_masks_use_luminance_and_ignore_alpha():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = 255
    rgb[0, 1] = (255, 0, 0)  # red: luminance 76 < 127.5 -> known
    rgba = np.concatenate([rgb, np.zeros((2, 2, 1), np.uint8)], axis=2)  # alpha 0 everywhere
    for array in (rgb, rgba):
        mask = binarize_mask(array, "white_hole")
        np.testing.assert_array_equal(mask, [[1, 0], [0, 0]])


def test_binarize_errors():
    with pytest.raises(ValueError, match="divide by 255"):
        binarize_mask(np.array([[0.0, 255.0]]), "white_hole")
    with pytest.raises(ValueError, match="polarity"):
        binarize_mask(_bar(), "white")
    with pytest.raises(ValueError, match="shape"):
        binarize_mask(np.zeros((2, 2, 5), np.uint8), "white_hole")


# --------------------------------------------------------------------------- files


def test_load_mask_missing_and_corrupt(tmp_path: Path):
    missing = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_mask(missing)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(ValueError, match=r"cannot decode mask file .*corrupt\.png"):
        load_mask(corrupt)
    good = tmp_path / "good.png"
    Image.fromarray(_bar(64, 64, 10)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ValueError, match="cannot decode mask file"):
        load_mask(truncated)


def test_load_mask_16bit_rgba_and_nearest_resize(tmp_path: Path):
    deep = np.zeros((40, 40), np.uint16)
    deep[:, :10] = 65535
    deep[:, 10:20] = 200  # dark on a 16-bit scale
    Image.fromarray(deep).save(tmp_path / "deep.png")
    mask = load_mask(tmp_path / "deep.png", "white_hole")
    assert mask.dtype == np.float32 and mask.shape == (40, 40)
    assert hole_ratio(mask) == pytest.approx(0.25)

    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:20, :, :3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert hole_ratio(load_mask(tmp_path / "rgba.png", "white_hole")) == pytest.approx(0.5)

    soft = np.zeros((64, 64), np.uint8)
    soft[16:48, 16:48] = 255
    soft[15, 16:48] = 128  # anti-aliased border
    Image.fromarray(soft).save(tmp_path / "soft.png")
    for size in ((16, 16), (24, 40), 100):
        resized = load_mask(tmp_path / "soft.png", "white_hole", size=size)
        expected = (size, size) if isinstance(size, int) else size
        assert resized.shape == expected
        assert set(np.unique(resized)) == {0.0, 1.0}
    assert hole_ratio(
        load_mask(tmp_path / "soft.png", "white_hole", size=(32, 32))
    ) == pytest.approx(0.25, abs=0.04)


def _write_masks(folder: Path, count: int = 5) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in reversed(range(count)):  # written out of order: the listing must sort
        array = np.zeros((32, 32), np.uint8)
        array[: 4 * (i + 1), : 4 * (i + 1)] = 255  # file i: hole ratio ((i + 1) / 8) ** 2
        path = folder / f"m{i:02d}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    (folder / "notes.txt").write_text("not a mask")
    return sorted(paths)


def test_mask_files_listing_and_errors(tmp_path: Path):
    paths = _write_masks(tmp_path / "masks")
    assert list_mask_files(tmp_path / "masks") == paths
    source = MaskFiles(root=tmp_path / "masks", polarity="white_hole")
    assert source.files == paths and len(source) == 5
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        MaskFiles(root=tmp_path / "missing_dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no mask files"):
        MaskFiles(root=tmp_path / "empty")
    flist = tmp_path / "masks" / "list.txt"
    flist.write_text("# two masks\nm03.png\n\nm01.png\n")
    assert MaskFiles(flist=flist).files == [paths[3], paths[1]]
    flist.write_text("m99.png\n")
    with pytest.raises(FileNotFoundError, match="m99.png"):
        MaskFiles(flist=flist)
    assert MaskFiles(root=tmp_path / "masks", start=1, stop=3).files == paths[1:3]


def test_mask_files_eval_pick_is_deterministic(tmp_path: Path):
    _write_masks(tmp_path / "masks")
    source = MaskFiles(root=tmp_path / "masks", polarity="white_hole", augment=False)
    for index in range(7):
        a = source(index, 16, 16, np.random.default_rng(1))
        b = source(index, 16, 16, np.random.default_rng(2))  # rng is not used in eval
        np.testing.assert_array_equal(a, b)
        expected = ((index % 5 + 1) / 8) ** 2
        assert hole_ratio(a) == pytest.approx(expected)
        assert a.dtype == np.float32 and a.shape == (16, 16)


def test_mask_files_augmentation_changes_masks_but_keeps_binary(tmp_path: Path):
    folder = tmp_path / "one"
    folder.mkdir()
    array = np.zeros((64, 64), np.uint8)
    array[5:25, 10:50] = 255  # off-centre, non-square: flips/rotations move it
    Image.fromarray(array).save(folder / "m.png")
    plain = MaskFiles(root=folder, polarity="white_hole")(0, 32, 32, np.random.default_rng(0))
    source = MaskFiles(root=folder, polarity="white_hole", augment=True)
    masks = [source(0, 32, 32, np.random.default_rng(seed)) for seed in range(12)]
    for mask in masks:
        assert mask.shape == (32, 32) and mask.dtype == np.float32
        assert set(np.unique(mask)) <= {0.0, 1.0}
    changed = sum(not np.array_equal(mask, plain) for mask in masks)
    assert changed >= 10
    assert len({mask.tobytes() for mask in masks}) >= 10
    again = source(0, 32, 32, np.random.default_rng(3))
    np.testing.assert_array_equal(again, masks[3])  # seeded -> reproducible
    no_aug = MaskFiles(
        root=folder,
        polarity="white_hole",
        augment=True,
        flip=False,
        rotate=0,
        dilate_max=0,
        crop_scale=(1.0, 1.0),
    )
    np.testing.assert_array_equal(no_aug(0, 32, 32, np.random.default_rng(5)), plain)


def test_mask_files_dilation_grows_the_hole(tmp_path: Path):
    folder = tmp_path / "dot"
    folder.mkdir()
    array = np.zeros((64, 64), np.uint8)
    array[30:34, 30:34] = 255
    Image.fromarray(array).save(folder / "m.png")
    source = MaskFiles(
        root=folder,
        polarity="white_hole",
        augment=True,
        flip=False,
        rotate=0,
        dilate_max=15,
        crop_scale=(1.0, 1.0),
    )
    ratios = [hole_ratio(source(0, 64, 64, np.random.default_rng(s))) for s in range(20)]
    assert min(ratios) >= 16 / 64**2 and max(ratios) > 3 * 16 / 64**2


# --------------------------------------------------------------------------- ratios and bins


def test_hole_ratio_numpy_and_torch():
    mask = np.zeros((10, 10), np.float32)
    mask[:3] = 1
    assert isinstance(hole_ratio(mask), float) and hole_ratio(mask) == pytest.approx(0.3)
    batch = torch.zeros(3, 1, 4, 4)
    batch[1, :, :2] = 1
    batch[2] = 1
    expected = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(hole_ratio(batch), expected)
    torch.testing.assert_close(hole_ratio_batch(batch), expected)
    np.testing.assert_allclose(hole_ratio_batch(batch.numpy()), expected.numpy())
    assert float(hole_ratio(batch[1, 0])) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        hole_ratio_batch(torch.zeros(2, 3, 4, 4))


def test_hole_ratio_bins():
    assert CTSDG_BINS.labels == ["0-20%", "20-40%", "40-60%"] and len(CTSDG_BINS) == 3
    assert NVIDIA6_BINS.labels == ["0-10%", "10-20%", "20-30%", "30-40%", "40-50%", "50-60%"]
    assert CTSDG_BINS.index(0.0) == 0
    assert CTSDG_BINS.index(0.1999) == 0
    assert CTSDG_BINS.index(0.2) == 1  # lower edge belongs to the upper bin
    assert CTSDG_BINS.index(0.6) == 2  # the last edge belongs to the last bin
    assert CTSDG_BINS.index(0.6001) == -1 and CTSDG_BINS.index(-0.01) == -1
    assert NVIDIA6_BINS.index(0.3) == 3 and NVIDIA6_BINS.index(0.59) == 5
    np.testing.assert_array_equal(CTSDG_BINS.indices([0.05, 0.45, 0.9]), [0, 2, -1])
    assert HoleRatioBins((0.01, 0.1)).labels == ["1-10%"]
    assert CTSDG_BINS.label_of(0.3) == "20-40%" and CTSDG_BINS.label_of(0.7) is None
    with pytest.raises(ValueError):
        HoleRatioBins((0.2, 0.1))
    with pytest.raises(ValueError):
        HoleRatioBins((0.5,))
    with pytest.raises(IndexError):
        CTSDG_BINS.label(3)


# --------------------------------------------------------------------------- generators

GENERATORS = [
    free_form_mask,
    deepfill_v2_mask,
    deepfill_box_mask,
    rectangle_mask,
    square_mask,
    half_mask,
]


@pytest.mark.parametrize("generator", GENERATORS, ids=lambda g: g.__name__)
def test_generators_deterministic_binary_and_sized(generator):
    a = generator(48, 80, np.random.default_rng(7))
    b = generator(48, 80, np.random.default_rng(7))
    assert a.shape == (48, 80) and a.dtype == np.float32
    assert set(np.unique(a)) <= {0.0, 1.0}
    np.testing.assert_array_equal(a, b)
    draws = {generator(48, 80, np.random.default_rng(seed)).tobytes() for seed in range(8)}
    assert len(draws) >= 2
    with pytest.raises(TypeError, match="Generator"):
        generator(48, 80, 0)


@pytest.mark.parametrize("size", [64, 256])
def test_free_form_and_deepfill_hole_ratios_are_plausible(size):
    # Measured (200 masks, seeds 0..199): free-form mean 0.16, range 0.02-0.39 at 64 and
    # 256 px; DeepFill v2 box + strokes mean 0.30, range 0.14-0.49.
    free = np.array(
        [hole_ratio(free_form_mask(size, size, np.random.default_rng(s))) for s in range(200)]
    )
    assert 0.13 <= free.mean() <= 0.20
    assert free.min() > 0.005 and free.max() < 0.55
    both = np.array(
        [hole_ratio(deepfill_v2_mask(size, size, np.random.default_rng(s))) for s in range(200)]
    )
    assert 0.26 <= both.mean() <= 0.35
    assert both.min() >= (0.5 - 0.125) ** 2 - 0.01  # the shrunk box alone is at least 0.375²
    assert both.max() < 0.65


def test_box_generators_sizes():
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert hole_ratio(square_mask(64, 64, rng)) == 0.25
        assert hole_ratio(half_mask(64, 64, rng)) == 0.5
        ratio = hole_ratio(rectangle_mask(64, 64, rng, min_frac=0.25, max_frac=0.5))
        assert 0.25**2 - 1e-9 <= ratio <= 0.25 + 1e-9
        box = deepfill_box_mask(256, 256, rng)
        rows, cols = np.nonzero(box)
        assert 96 <= rows.max() - rows.min() + 1 <= 128  # 128 shrunk by 2 x [0, 16]
        assert 96 <= cols.max() - cols.min() + 1 <= 128


def test_free_form_width_scaling_and_absolute_mode():
    rng_seeds = range(60)
    scaled = np.mean(
        [hole_ratio(free_form_mask(64, 64, np.random.default_rng(s))) for s in rng_seeds]
    )
    absolute = np.mean(
        [
            hole_ratio(free_form_mask(64, 64, np.random.default_rng(s), reference_size=None))
            for s in rng_seeds
        ]
    )
    assert absolute > 1.5 * scaled  # 12-40 px brushes on a 64 px image: far larger holes


# --------------------------------------------------------------------------- sources


def test_mask_sources_and_factory(tmp_path: Path):
    _write_masks(tmp_path / "masks")
    rng = np.random.default_rng(0)
    cases = {
        "free_form": FreeFormMasks,
        "rectangle": RectangleMasks,
        "square": SquareMasks,
        "deepfill_v2": DeepFillV2Masks,
        "mixed": MixedMasks,
        "files": MaskFiles,
    }
    kwargs = {
        "files": {"root": tmp_path / "masks", "polarity": "white_hole"},
        "mixed": {"sources": [{"kind": "square"}, {"kind": "free_form"}], "probs": [1, 3]},
        "free_form": {"num_strokes": [2, 3]},
    }
    for kind, cls in cases.items():
        source = build_mask_source(kind, **kwargs.get(kind, {}))
        assert isinstance(source, cls)
        mask = source(3, 40, 24, rng)
        assert mask.shape == (40, 24) and mask.dtype == np.float32
        assert set(np.unique(mask)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="unknown mask kind"):
        build_mask_source("blobs")
    with pytest.raises(TypeError, match="square"):
        build_mask_source("square", fraction=0.3)


def test_mixed_masks_follow_probabilities():
    mixed = MixedMasks([SquareMasks(), FreeFormMasks()], probs=[0.75, 0.25])
    rng = np.random.default_rng(0)
    squares = sum(hole_ratio(mixed(i, 32, 32, rng)) == 0.25 for i in range(400))
    assert 0.65 * 400 <= squares <= 0.85 * 400
    a = [mixed(i, 32, 32, np.random.default_rng([0, i])) for i in range(5)]
    b = [mixed(i, 32, 32, np.random.default_rng([0, i])) for i in range(5)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError):
        MixedMasks([SquareMasks()], probs=[0.5, 0.5])


# --------------------------------------------------------------------------- real NVIDIA masks


@pytest.mark.data
def test_nvidia_masks_bins_and_polarity(nvidia_masks: Path):
    import csv

    with open(nvidia_masks / "ratios.csv") as handle:
        recorded = {row["file"]: float(row["hole_ratio"]) for row in csv.DictReader(handle)}
    for name, bin_index in (("00000.png", 0), ("11999.png", 5)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # auto must not warn on real masks up to 60 %
            full = load_mask(nvidia_masks / name, "auto")
        assert full.shape == (512, 512)
        np.testing.assert_array_equal(full, load_mask(nvidia_masks / name, "white_hole"))
        assert hole_ratio(full) == pytest.approx(recorded[name], abs=1e-4)
        assert NVIDIA6_BINS.index(hole_ratio(full)) == bin_index
        small = load_mask(nvidia_masks / name, "white_hole", size=(64, 64))
        assert small.shape == (64, 64)
        assert hole_ratio(small) == pytest.approx(recorded[name], abs=0.02)
        assert NVIDIA6_BINS.index(hole_ratio(small)) == bin_index
        black = load_mask(nvidia_masks / name, "black_hole")
        assert hole_ratio(black) == pytest.approx(1 - recorded[name], abs=1e-4)
    assert CTSDG_BINS.index(recorded["11999.png"]) == 2

    files = [nvidia_masks / f"{i:05d}.png" for i in (0, 2500, 4500, 6500, 8500, 10500)]
    groups = MaskFiles(files=files, polarity="white_hole").bin_files(NVIDIA6_BINS, size=64)
    assert [len(v) for v in groups.values()] == [1] * 6
    training = MaskFiles(files=files, polarity="white_hole", augment=True)
    mask = training(0, 64, 64, np.random.default_rng(0))
    assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0.0, 1.0}
