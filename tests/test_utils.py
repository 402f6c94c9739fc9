"""Shared helpers in inpaintzoo.utils: names, image files, checkpoint hyperparameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintzoo.utils.hparams import META_KEYS, split_hparams, to_plain_types
from inpaintzoo.utils.io import save_image
from inpaintzoo.utils.naming import slug


def test_slug_keeps_safe_characters_and_folds_the_rest():
    assert slug("edgeconnect (tiny, 800 batches)") == "edgeconnect_tiny_800_batches"
    assert slug("model.stage=1,train.max_batches=2") == "model.stage_1_train.max_batches_2"
    assert slug("  /a//b c/ ") == "a_b_c"
    assert slug("ctsdg_celeba64") == "ctsdg_celeba64"


def test_save_image_writes_rgb_gray_and_jpeg(tmp_path):
    rgb = torch.rand(3, 9, 7)
    rgb[0, 0, 0], rgb[1, 0, 0] = -0.5, 1.5  # clamped
    path = save_image(rgb, tmp_path / "sub" / "rgb.png")
    with Image.open(path) as image:
        assert image.mode == "RGB" and image.size == (7, 9)
        pixels = np.asarray(image)
    expected = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(pixels, expected) and pixels[0, 0, 0] == 0 and pixels[0, 0, 1] == 255
    gray = save_image(torch.full((1, 1, 4, 5), 0.5), tmp_path / "gray.png")  # (1, C, H, W)
    with Image.open(gray) as image:
        assert image.mode == "L" and np.asarray(image).tolist() == [[128] * 5] * 4
    jpeg = save_image(rgb, tmp_path / "out.JPG")
    assert jpeg.read_bytes()[:2] == b"\xff\xd8"
    assert not list(tmp_path.rglob("*.tmp"))  # atomic: no temporary file left
    with pytest.raises(ValueError, match=r"\(C, H, W\) or \(1, C, H, W\)"):
        save_image(torch.rand(2, 3, 4, 4), tmp_path / "batch.png")


def test_split_hparams_drops_metadata_and_takes_the_variant():
    stored = {"method": "edgeconnect", "variant": "tiny", "size_multiple": 4, "width": 16}
    assert split_hparams(stored) == ("tiny", {"width": 16})
    assert split_hparams({"method": "x", "min_size": 8}, default_variant="full") == ("full", {})
    assert set(META_KEYS) == {"method", "size_multiple", "min_size", "value_range"}


def test_to_plain_types_converts_configs_recursively():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"a": [1, {"b": 2}], "c": "${a}"})
    plain = to_plain_types({1: cfg, "p": Path("x/y"), "t": (1, (2, 3))})
    assert plain == {"1": {"a": [1, {"b": 2}], "c": [1, {"b": 2}]}, "p": "x/y", "t": [1, [2, 3]]}
    assert type(plain["1"]) is dict and type(plain["1"]["a"]) is list
    assert to_plain_types(3.5) == 3.5
