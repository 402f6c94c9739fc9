"""``inpaintzoo-predict`` on folders: pairing, mixed sizes, batching, parallel workers, resume,
one-line errors for bad files while the rest go on, and the failure summary.

Runs a tiny EdgeConnect exported as safetensors (no training: a fast, real model)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from inpaintzoo import zoo
from inpaintzoo.predictor import Predictor, pair_inputs, predict_folder

CONF = Path(__file__).resolve().parents[1] / "conf"
SIZES = {"a.png": (64, 64), "b.png": (64, 64), "c.jpg": (64, 64), "sub/d.png": (48, 80)}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    from inpaintzoo.export import export_safetensors

    torch.manual_seed(0)
    model = zoo.create_model(
        "edgeconnect", variant="tiny", canny_sigma=1.0, perceptual_weight=0, style_weight=0
    ).eval()
    return export_safetensors(model, tmp_path_factory.mktemp("w") / "tiny.safetensors")


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=95)
    return path


def _dataset(root: Path, black_hole: bool = False) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    images, masks = root / "images", root / "masks"
    for i, (name, (h, w)) in enumerate(SIZES.items()):
        _write(images / name, (rng.random((h, w, 3)) * 255).astype(np.uint8))
        hole = np.zeros((h, w), np.uint8)
        hole[8 + i : 30 + i, 10:40] = 255
        _write((masks / name).with_suffix(".png"), 255 - hole if black_hole else hole)
    return images, masks


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("predict", overrides)


def _run(weights: Path, *overrides: str):
    from inpaintzoo.cli.predict import expand_shorthands, run_predict

    args = expand_shorthands([f"ckpt={weights}", "device=cpu", "progress=false", *overrides])
    cfg = _compose(args)
    return run_predict(cfg)


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.int16)


def test_folders_pair_by_name_mixed_sizes_equal_single_image_results(weights, tmp_path):
    images, masks = _dataset(tmp_path)
    out = tmp_path / "out"
    result = _run(
        weights, f"input.image={images}", f"input.mask={masks}", f"out={out}", "batch_size=2"
    )
    summary = result["summary"]
    assert summary.done == len(SIZES) and not summary.failures and summary.batches >= 3
    predictor = Predictor.from_file(weights, device="cpu")
    for name, (h, w) in SIZES.items():
        written = out / Path(name).with_suffix(".png")
        assert _read(written).shape == (h, w, 3)
        single = tmp_path / "single.png"
        _run(
            weights,
            f"input.image={images / name}",
            f"input.mask={(masks / name).with_suffix('.png')}",
            f"out={single}",
        )
        # batching and parallel workers do not change the result (PNG rounding aside)
        assert np.abs(_read(written) - _read(single)).max() <= 1
    assert predictor.name == "edgeconnect"


def test_mask_polarity_applies_to_every_mask(weights, tmp_path):
    images, masks = _dataset(tmp_path / "white")
    _, inverted = _dataset(tmp_path / "black", black_hole=True)
    a, b = tmp_path / "a", tmp_path / "b"
    _run(weights, f"image={images}", f"mask={masks}", f"out={a}", "mask_polarity=white_hole")
    _run(weights, f"image={images}", f"mask={inverted}", f"out={b}", "mask_polarity=black_hole")
    for name in SIZES:
        rel = Path(name).with_suffix(".png")
        assert np.array_equal(_read(a / rel), _read(b / rel))


def test_bad_files_get_one_line_errors_and_the_rest_go_on(weights, tmp_path, caplog):
    images, masks = _dataset(tmp_path)
    _write(images / "no_mask.png", np.zeros((64, 64, 3), np.uint8))
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    _write(masks / "broken.png", np.zeros((64, 64), np.uint8))
    _write(images / "wrong_size.png", np.zeros((64, 64, 3), np.uint8))
    _write(masks / "wrong_size.png", np.zeros((32, 32), np.uint8))
    out = tmp_path / "out"
    summary = _run(weights, f"image={images}", f"mask={masks}", f"out={out}")["summary"]
    assert summary.done == len(SIZES)
    failed = {Path(file).name: message for file, message in summary.failures}
    assert set(failed) == {"no_mask.png", "broken.png", "wrong_size.png"}
    assert "no mask named no_mask.*" in failed["no_mask.png"]
    assert "cannot decode" in failed["broken.png"]
    assert "32x32 but the image is 64x64" in failed["wrong_size.png"]
    assert all("\n" not in message for message in failed.values())
    assert sorted(p.name for p in out.rglob("*.png")) == sorted(
        Path(n).with_suffix(".png").name for n in SIZES
    )


def test_rerun_skips_existing_results_and_redoes_missing_ones(weights, tmp_path):
    images, masks = _dataset(tmp_path)
    out = tmp_path / "out"
    args = (f"image={images}", f"mask={masks}", f"out={out}")
    assert _run(weights, *args)["summary"].done == len(SIZES)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    (out / "b.png").unlink()  # as if the run had been killed before writing it
    again = _run(weights, *args)["summary"]
    assert (again.done, again.skipped) == (1, len(SIZES) - 1)
    for path, stamp in stamps.items():
        if path.name != "b.png":
            assert path.stat().st_mtime_ns == stamp
    forced = _run(weights, *args, "overwrite=true")["summary"]
    assert (forced.done, forced.skipped) == (len(SIZES), 0)


def test_pairs_csv_and_one_mask_for_all(weights, tmp_path):
    images, masks = _dataset(tmp_path)
    table = tmp_path / "pairs.csv"
    table.write_text(
        "image,mask,out\nimages/a.png,masks/a.png,first.png\nimages/b.png,masks/b.png,\n"
    )
    out = tmp_path / "out"
    summary = _run(weights, f"pairs={table}", f"out={out}")["summary"]
    assert summary.done == 2
    assert sorted(p.name for p in out.iterdir()) == ["b.png", "first.png"]
    pairs, problems = pair_inputs(images, masks / "a.png", tmp_path / "one")
    assert not problems and len(pairs) == len(SIZES)
    assert {p.mask for p in pairs} == {masks / "a.png"}


def test_parallel_workers_match_one_worker(weights, tmp_path):
    images, masks = _dataset(tmp_path)
    predictor = Predictor.from_file(weights, device="cpu")
    pairs, _ = pair_inputs(images, masks, tmp_path / "one")
    one = predict_folder(predictor, pairs, workers=1, batch_size=1)
    pairs2, _ = pair_inputs(images, masks, tmp_path / "two")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        two = predict_folder(predictor, pairs2, workers=2, batch_size=2)
    finally:
        torch.set_num_threads(threads)
    assert (one.done, two.done, two.workers) == (len(SIZES), len(SIZES), 2)
    for a, b in zip(pairs, pairs2, strict=True):
        assert np.abs(_read(a.out) - _read(b.out)).max() <= 1


def test_command_exits_non_zero_and_prints_each_failure(weights, tmp_path):
    images, masks = _dataset(tmp_path)
    (images / "broken.png").write_bytes(b"not an image")
    _write(masks / "broken.png", np.zeros((64, 64), np.uint8))
    exe = Path(sys.executable).with_name("inpaintzoo-predict")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(exe), f"ckpt={weights}", f"image={images}", f"mask={masks}", f"out={tmp_path / 'o'}",
         "device=cpu", "progress=false"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    assert f"{images / 'broken.png'}: cannot decode image file" in text
    assert "4 inpainted, 0 skipped (output exists), 1 failed" in text
