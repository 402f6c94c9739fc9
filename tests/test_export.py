"""Export: safetensors round trip, ONNX graphs with onnxruntime parity, predict from ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from inpaintzoo import zoo
from inpaintzoo.export import (
    MANIFEST,
    export_onnx,
    export_safetensors,
    load_onnx,
    load_safetensors,
    onnxruntime_available,
)
from inpaintzoo.predictor import Predictor

CONF = Path(__file__).resolve().parents[1] / "conf"
needs_ort = pytest.mark.skipif(
    not onnxruntime_available(),
    reason="onnxruntime is not installed (pip install inpaintzoo[export]); ONNX parity skipped",
)


def _trained_like(**kwargs):
    """A tiny EdgeConnect whose weights are not the initial ones (and SN vectors moved)."""
    torch.manual_seed(0)
    model = zoo.create_model(
        "edgeconnect",
        variant="tiny",
        canny_sigma=1.0,
        perceptual_weight=0,
        style_weight=0,
        **kwargs,
    )
    model.train()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
        model.edge_generator(torch.rand(1, 3, 32, 32))  # one power iteration of spectral norm
    return model.eval()


def _checkpoint(model, tmp_path: Path) -> Path:
    import pytorch_lightning as pl

    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    return path


def _pair(h: int, w: int):
    image = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(1, 1, h, w)
    mask[..., h // 4 : h // 2, w // 3 : 2 * w // 3] = 1.0
    return image, mask


def test_safetensors_round_trip(tmp_path):
    model = _trained_like(stage=2)
    path = export_safetensors(model, tmp_path / "weights.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        keys = list(handle.keys())  # noqa: SIM118
        assert handle.metadata()["method"] == "edgeconnect"
    assert {k.split(".")[0] for k in keys} == {"edge_generator", "inpaint_generator"}
    loaded = load_safetensors(path, expected="edgeconnect")
    assert loaded.fixed_stage == 2 and loaded.variant == "tiny" and loaded.canny_sigma == 1.0
    for net in ("edge_generator", "inpaint_generator"):
        a, b = getattr(model, net).state_dict(), getattr(loaded, net).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), net
    image, mask = _pair(40, 52)
    assert torch.equal(
        Predictor(model)(image, mask)["composite"], Predictor(loaded)(image, mask)["composite"]
    )
    with pytest.raises(ValueError, match="'edgeconnect' weights, but 'ctsdg'"):
        load_safetensors(path, expected="ctsdg")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read"):
        load_safetensors(bad)


@needs_ort
def test_onnx_export_parity_and_predict(tmp_path):
    model = _trained_like()
    manifest = export_onnx(model, tmp_path / "onnx", size=32)
    assert set(manifest["nets"]) == {"edge_generator", "inpaint_generator"}
    for name, info in manifest["nets"].items():
        assert info["max_abs_diff"] <= 1e-4, name  # checked on batch 2 at another size
        assert (tmp_path / "onnx" / info["file"]).is_file()
    import onnx

    graph = onnx.load(str(tmp_path / "onnx" / "inpaint_generator.onnx"))
    meta = {p.key: p.value for p in graph.metadata_props}
    assert (
        meta["inpaintzoo.method"] == "edgeconnect" and meta["inpaintzoo.net"] == "inpaint_generator"
    )
    # independent parity check on a random input, through the loaded module
    ort_model = load_onnx(tmp_path / "onnx" / "edge_generator.onnx")
    x = torch.rand(3, 3, 36, 44)
    with torch.no_grad():
        assert float((ort_model.edge_generator(x) - model.edge_generator(x)).abs().max()) <= 1e-4
    # the whole method (Canny + G1 + G2 + compositing) at an odd size
    image, mask = _pair(45, 61)
    ref = Predictor(model, device="cpu")(image, mask)
    out = Predictor.from_file(tmp_path / "onnx", device="cpu")(image, mask)
    assert out["composite"].shape == image.shape
    assert float((out["composite"] - ref["composite"]).abs().max()) <= 1e-4


@needs_ort
@pytest.mark.parametrize("method", ["structure_knowledge", "structureflow"])
def test_onnx_export_of_multi_output_generators(method, tmp_path):
    # structure_knowledge returns a dict of lists (images and gradients at 3 scales),
    # StructureFlow's texture generator a tuple: the graph flattens them, OnnxNet rebuilds them
    torch.manual_seed(0)
    model = zoo.create_model(method, variant="tiny", perceptual_weight=0, style_weight=0).eval()
    manifest = export_onnx(model, tmp_path / "onnx")
    assert set(manifest["nets"]) == set(model.inference_nets)
    assert all(info["max_abs_diff"] <= 1e-4 for info in manifest["nets"].values()), manifest
    image, mask = _pair(45, 61)
    ref = Predictor(model, device="cpu")(image, mask)
    out = Predictor.from_file(tmp_path / "onnx", device="cpu")(image, mask)
    assert float((out["composite"] - ref["composite"]).abs().max()) <= 1e-4


def test_unsupported_graph_is_a_clear_error(tmp_path):
    # CTSDG's CFA pastes patches back with F.fold (col2im), which the TorchScript ONNX exporter
    # cannot translate with a dynamic image size
    pytest.importorskip("onnx")
    model = zoo.create_model("ctsdg", variant="tiny", perceptual_weight=0, style_weight=0)
    with pytest.raises(RuntimeError, match="ctsdg does not export to ONNX: its CFA .* F.fold"):
        export_onnx(model.eval(), tmp_path / "onnx")
    assert not list((tmp_path / "onnx").glob("*.onnx"))  # nothing half-written left behind


@needs_ort
def test_export_and_predict_cli_with_onnx(tmp_path):
    from inpaintzoo.cli.export import run_export
    from inpaintzoo.cli.predict import run_predict

    model = _trained_like()
    ckpt = _checkpoint(model, tmp_path)
    out_dir = tmp_path / "exports"
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("export", [f"ckpt={ckpt}", f"out={out_dir}", "size=32"])
    written = run_export(cfg)
    assert (out_dir / "weights.safetensors").is_file()
    assert json.loads((out_dir / MANIFEST).read_text())["method"] == "edgeconnect"
    assert all(i["max_abs_diff"] <= 1e-4 for i in written["onnx"]["nets"].values())

    rng = np.random.default_rng(0)
    image = (rng.random((37, 50, 3)) * 255).astype(np.uint8)
    mask = np.zeros((37, 50), np.uint8)
    mask[8:20, 10:30] = 255
    Image.fromarray(image).save(tmp_path / "image.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    results = {}
    for name, source in [
        ("ckpt", ckpt),
        ("onnx", out_dir / "inpaint_generator.onnx"),
        ("safetensors", out_dir / "weights.safetensors"),
    ]:
        out = tmp_path / f"{name}.png"
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(
                "predict",
                [
                    f"ckpt={source}",
                    f"input.image={tmp_path / 'image.png'}",
                    f"input.mask={tmp_path / 'mask.png'}",
                    "mask_polarity=white_hole",
                    f"out={out}",
                    "device=cpu",
                ],
            )
        run_predict(cfg)
        results[name] = np.asarray(Image.open(out)).astype(int)
    assert np.array_equal(results["ckpt"], results["safetensors"])
    assert np.abs(results["ckpt"] - results["onnx"]).max() <= 1  # 8-bit rounding at most
    known = mask == 0
    assert np.array_equal(results["onnx"][known], image[known])


def test_export_rejects_unknown_format(tmp_path):
    from inpaintzoo.cli.export import run_export

    ckpt = _checkpoint(_trained_like(), tmp_path)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("export", [f"ckpt={ckpt}", f"out={tmp_path}", "formats=[tflite]"])
    with pytest.raises(ValueError, match="unknown export format"):
        run_export(cfg)


def test_load_onnx_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="ONNX export not found"):
        load_onnx(tmp_path / "missing.onnx")
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="inpaintzoo-export"):
        load_onnx(lone)
