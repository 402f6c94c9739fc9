"""Bad inputs end to end (the ones not already covered by test_data / test_masks / test_zoo /
test_predictor / test_cli; docs/RELIABILITY.md lists every case and the test that covers it).

Predict-level cases run ``run_predict`` on a tiny EdgeConnect exported as safetensors (no
training: a fast, real model)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from PIL import Image

from inpaintzoo import zoo
from inpaintzoo.predictor import Predictor

CONF = Path(__file__).resolve().parents[1] / "conf"
H, W = 53, 70
HOLE = (slice(10, 30), slice(20, 45))


def _compose(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(name, overrides)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return zoo.create_model(
        "edgeconnect", variant="tiny", canny_sigma=1.0, perceptual_weight=0, style_weight=0
    ).eval()


@pytest.fixture(scope="module")
def weights(model, tmp_path_factory) -> Path:
    from inpaintzoo.export import export_safetensors

    return export_safetensors(model, tmp_path_factory.mktemp("w") / "tiny.safetensors")


def _image(h: int = H, w: int = W) -> np.ndarray:
    return (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)


def _mask(h: int = H, w: int = W) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[HOLE] = 255
    return mask


def _predict(weights: Path, image: Path, mask: Path, out: Path, *extra: str) -> np.ndarray:
    from inpaintzoo.cli.predict import run_predict

    cfg = _compose(
        "predict",
        [
            f"ckpt={weights}",
            f"input.image={image}",
            f"input.mask={mask}",
            f"out={out}",
            "device=cpu",
            *extra,
        ],
    )
    run_predict(cfg)
    return np.asarray(Image.open(out))


# ---------------------------------------------------------------------- paths
def test_predict_nonexistent_image_mask_and_checkpoint(weights, tmp_path):
    Image.fromarray(_image()).save(tmp_path / "image.png")
    Image.fromarray(_mask()).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    with pytest.raises(FileNotFoundError, match="nope.png"):
        _predict(weights, tmp_path / "nope.png", tmp_path / "mask.png", out)
    with pytest.raises(FileNotFoundError, match="nomask.png"):
        _predict(weights, tmp_path / "image.png", tmp_path / "nomask.png", out)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        _predict(tmp_path / "missing.ckpt", tmp_path / "image.png", tmp_path / "mask.png", out)
    assert not out.exists()


def test_training_on_an_empty_or_missing_folder_is_a_clear_error(tmp_path):
    from inpaintzoo.data import InpaintDataModule

    (tmp_path / "empty").mkdir()
    dm = InpaintDataModule(train={"source": "folder", "root": str(tmp_path / "empty")})
    with pytest.raises(ValueError, match=r"no images found in .*empty"):
        dm.setup("fit")
    dm = InpaintDataModule(train={"source": "folder", "root": str(tmp_path / "absent")})
    with pytest.raises(FileNotFoundError, match="absent"):
        dm.setup("fit")


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_predict_corrupt_image_is_a_clear_error(weights, tmp_path, kind):
    good = io.BytesIO()
    Image.fromarray(_image()).save(good, format=kind.upper())
    bad = tmp_path / f"corrupt.{kind}"
    bad.write_bytes(good.getvalue()[: len(good.getvalue()) // 3])
    Image.fromarray(_mask()).save(tmp_path / "mask.png")
    with pytest.raises(ValueError, match=rf"corrupt\.{kind}"):
        _predict(weights, bad, tmp_path / "mask.png", tmp_path / "out.png")


# ---------------------------------------------------------------------- image kinds
@pytest.mark.parametrize("kind", ["gray", "rgba", "gray16", "rgb16"])
def test_predict_gray_rgba_and_16bit_images(weights, tmp_path, kind):
    rgb = _image()
    path = tmp_path / "image.png"
    if kind == "gray":
        Image.fromarray(rgb[..., 0]).save(path)
        expected = np.repeat(rgb[..., :1], 3, axis=2)
    elif kind == "rgba":
        alpha = np.full(rgb.shape[:2] + (1,), 128, np.uint8)
        Image.fromarray(np.concatenate([rgb, alpha], axis=2), mode="RGBA").save(path)
        expected = rgb  # alpha dropped (documented)
    elif kind == "gray16":
        Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(path)
        expected = np.repeat(rgb[..., :1], 3, axis=2)
    else:  # 16-bit RGB PNG (OpenCV writes it; PIL cannot)
        import cv2

        cv2.imwrite(str(path), (rgb[..., ::-1].astype(np.uint16) * 257))
        expected = rgb
    Image.fromarray(_mask()).save(tmp_path / "mask.png")
    out = _predict(weights, path, tmp_path / "mask.png", tmp_path / "out.png")
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    known = _mask() == 0
    assert np.array_equal(out[known], expected[known])


# ---------------------------------------------------------------------- masks
def test_jpeg_compressed_and_antialiased_masks_are_thresholded(weights, tmp_path):
    from inpaintzoo.masks import load_mask

    mask = _mask()
    Image.fromarray(mask).save(tmp_path / "mask.jpg", quality=60)  # ringing around the box
    smooth = Image.fromarray(mask).resize((W * 4, H * 4), Image.NEAREST)
    smooth = smooth.resize((W, H), Image.LANCZOS)  # anti-aliased edges (soft values)
    smooth.save(tmp_path / "soft.png")
    for name in ("mask.jpg", "soft.png"):
        raw = np.asarray(Image.open(tmp_path / name))
        assert len(np.unique(raw)) > 2, name  # really non-binary
        binary = load_mask(tmp_path / name, polarity="white_hole", threshold=0.5)
        assert set(np.unique(binary)) <= {0.0, 1.0}
        truth = mask > 0
        iou = (binary.astype(bool) & truth).sum() / (binary.astype(bool) | truth).sum()
        assert iou > 0.95, (name, iou)
    Image.fromarray(_image()).save(tmp_path / "image.png")
    out = _predict(
        weights, tmp_path / "image.png", tmp_path / "mask.jpg", tmp_path / "o.png",
        "mask_polarity=white_hole",
    )  # fmt: skip
    assert out.shape == (H, W, 3)


def test_other_polarity_with_auto_warns_and_explicit_flag_fixes_it(weights, tmp_path):
    Image.fromarray(_image()).save(tmp_path / "image.png")
    small = np.zeros((H, W), np.uint8)
    small[20:30, 30:45] = 255  # 4 % hole
    Image.fromarray(255 - small).save(tmp_path / "black_hole.png")  # 96 % "hole" if white
    with pytest.warns(UserWarning, match="mask_polarity=black_hole") as rec:
        _predict(weights, tmp_path / "image.png", tmp_path / "black_hole.png", tmp_path / "a.png")
    text = " ".join(str(r.message) for r in rec)
    assert "black_hole.png" in text and "mask_polarity=black_hole" in text
    out = _predict(
        weights, tmp_path / "image.png", tmp_path / "black_hole.png", tmp_path / "b.png",
        "mask_polarity=black_hole",
    )  # fmt: skip
    known = small == 0
    assert np.array_equal(out[known], _image()[known])
    assert not np.array_equal(out[~known], _image()[~known])


# ---------------------------------------------------------------------- sizes
def test_odd_size_333x517_through_a_real_model(model):
    image = torch.rand(1, 3, 333, 517, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, 333, 517)
    mask[..., 100:180, 200:330] = 1.0
    out = Predictor(model, device="cpu", max_side=None)(image, mask)
    assert out["composite"].shape == image.shape and out["edge"].shape == mask.shape
    assert torch.equal(out["composite"] * (1 - mask), image * (1 - mask))
    assert torch.isfinite(out["composite"]).all()


def test_4000x3000_image_uses_resize_and_paste_back(model):
    h, w = 3000, 4000
    image = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, h, w)
    mask[..., 1200:1500, 1800:2300] = 1.0
    seen = []
    handle = model.inpaint_generator.register_forward_pre_hook(
        lambda m, a: seen.append(tuple(a[0].shape[-2:]))
    )
    try:
        out = Predictor(model, device="cpu", max_side=256)(image, mask)["composite"]
    finally:
        handle.remove()
    assert seen == [(192, 256)]  # the network ran at the reduced size
    assert out.shape == image.shape
    known = (mask == 0).expand_as(image)
    assert torch.equal(out[known], image[known])  # known pixels untouched at full resolution
    assert not torch.equal(out[~known], image[~known])


# ---------------------------------------------------------------------- configs, checkpoints
@pytest.mark.parametrize(
    ("config", "override"),
    [
        ("train", "train.max_batchs=3"),
        ("train", "trainer.no_such_flag=true"),
        ("predict", "no_such_key=1"),
        ("export", "formatz=[onnx]"),
    ],
)
def test_unknown_config_keys_are_clear_errors(tmp_path, config, override):
    key = override.split("=")[0].split(".")[-1]
    extra = [f"run_dir={tmp_path}"] if config == "train" else []
    with pytest.raises(ConfigCompositionException, match=key):
        _compose(config, [override, *extra])


def test_checkpoint_of_another_method_is_refused_at_resume_and_init(model, tmp_path):
    from inpaintzoo.cli.train import init_weights_from

    with pytest.raises(ValueError, match="written by method 'ctsdg', not 'edgeconnect'"):
        model.on_load_checkpoint({"inpaintzoo": {"method": "ctsdg", "batches_seen": 3}})
    path = tmp_path / "other.ckpt"
    torch.save(
        {"state_dict": {}, "hyper_parameters": {"method": "structureflow"}, "inpaintzoo": {}},
        path,
    )
    with pytest.raises(ValueError, match="'structureflow' checkpoint, but 'edgeconnect'"):
        init_weights_from(model, str(path))
    with pytest.raises(ValueError, match="'structureflow' checkpoint, but 'edgeconnect'"):
        Predictor.from_file(path, expected="edgeconnect")
