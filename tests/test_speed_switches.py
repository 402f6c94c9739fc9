"""Speed switches: channels_last, torch.compile of the generators, the benchmark script."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from inpaintzoo import zoo

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "speed_switches.py"


def _tiny(**kwargs):
    torch.manual_seed(0)
    return zoo.create_model(
        "edgeconnect",
        variant="tiny",
        canny_sigma=1.0,
        perceptual_weight=0,
        style_weight=0,
        **kwargs,
    ).eval()


def _pair(size: int = 32):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, size, size, generator=g)
    mask = torch.zeros(2, 1, size, size)
    mask[..., 8:20, 10:24] = 1.0
    return image, mask


def test_compile_nets_default_to_the_generators():
    model = _tiny()
    assert model.compiled_net_names() == ("edge_generator", "inpaint_generator")


def test_channels_last_switch_keeps_outputs():
    model = _tiny()
    image, mask = _pair()
    ref = model.inpaint(image, mask)["composite"]
    model.configure_speed(channels_last=True).apply_speed_switches()
    conv = model.inpaint_generator.encoder[1]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batch = model.to_memory_format({"image": image, "mask": mask, "name": ["a", "b"]})
    assert batch["image"].is_contiguous(memory_format=torch.channels_last)
    assert batch["name"] == ["a", "b"]
    out = model.inpaint(batch["image"], batch["mask"])["composite"]
    assert torch.allclose(out, ref, atol=1e-5)
    model.apply_speed_switches()  # idempotent


def test_compile_switch_is_in_place_and_keeps_state_dict_keys():
    model = _tiny()
    keys = list(model.state_dict())
    image, mask = _pair()
    ref = model.inpaint(image, mask)["composite"]
    # the aot_eager backend exercises dynamo tracing without C++ code generation (fast on CPU)
    model.configure_speed(compile={"backend": "aot_eager"})
    model.setup("fit")
    assert model.inpaint_generator._compiled_call_impl is not None
    assert model.inpaint_discriminator._compiled_call_impl is None  # discriminators stay eager
    assert list(model.state_dict()) == keys  # checkpoints stay interchangeable
    out = model.inpaint(image, mask)["composite"]
    assert torch.allclose(out, ref, atol=1e-5)


@pytest.mark.slow
def test_inductor_compile_trains_one_batch():
    spec = importlib.util.spec_from_file_location("speed_switches", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.run(["fp32", "compile"], size=32, batch_size=2, steps=1, warmup=1, device="cpu")
    assert all("median_ms" in r for r in report["results"]), report


def test_benchmark_script_runs_and_prints_ratios(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("speed_switches", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "speed.json"
    bench.main(
        [
            "--switches", "fp32", "channels_last", "16-mixed",
            "--size", "32", "--batch-size", "2", "--steps", "1", "--warmup", "1",
            "--device", "cpu", "--json", str(out),
        ]
    )  # fmt: skip
    report = json.loads(out.read_text())
    names = [r["switch"] for r in report["results"]]
    assert names == ["fp32", "channels_last"]  # 16-mixed is GPU only, dropped on CPU
    assert report["results"][0]["speedup_vs_fp32"] == pytest.approx(1.0)
    assert report["results"][1]["speedup_vs_fp32"] > 0
    assert "speed vs fp32" in capsys.readouterr().out
