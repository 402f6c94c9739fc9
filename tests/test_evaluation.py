"""Evaluation protocol determinism and the runner's results files."""

from __future__ import annotations

import json

import pytest
import torch

from inpaintzoo import zoo
from inpaintzoo.evaluation import EvalProtocol, evaluate, pairs_hash, write_result
from inpaintzoo.leaderboard import load_results
from inpaintzoo.predictor import Predictor


def test_pairs_are_deterministic_and_seeded():
    a = EvalProtocol(num_samples=6)
    b = EvalProtocol(num_samples=6)
    c = EvalProtocol(num_samples=6, seed=99)
    assert pairs_hash(a.dataset()) == pairs_hash(b.dataset())
    assert pairs_hash(a.dataset()) != pairs_hash(c.dataset())


def test_smoke_protocol_uses_held_out_images_only():
    from inpaintzoo.data import embedded_split

    train, test = embedded_split()
    files = EvalProtocol().image_files()
    assert set(files) == set(test) and not set(files) & set(train)


def test_runner_writes_a_valid_results_file(tmp_path):
    protocol = EvalProtocol(num_samples=12)
    result = evaluate(Predictor(zoo.create_model("telea")), protocol, batch_size=4, keep_samples=3)
    path = write_result(result, tmp_path / "results_telea.json")
    loaded = load_results([path])[0]
    assert loaded["method"] == "telea" and loaded["kind"] == "classical"
    assert loaded["protocol"]["pairs_sha256"] == pairs_hash(protocol.dataset())
    assert loaded["protocol"]["metrics_on"] == "composite"
    overall = loaded["metrics"]["overall"]
    assert overall["psnr"]["n"] == 12 and 10 < overall["psnr"]["mean"] < 60
    # the DeepFill v2 masks put samples in more than one hole-ratio bin
    filled = [b for b, m in loaded["metrics"]["bins"].items() if m["psnr"]["n"] > 0]
    assert len(filled) >= 2
    assert sum(loaded["metrics"]["bins"][b]["psnr"]["n"] for b in filled) <= 12
    assert result.samples["composite"].shape == (3, 3, 64, 64)
    assert json.loads(path.read_text())["runtime"]["num_samples"] == 12


def test_unknown_image_source_is_rejected():
    with pytest.raises(ValueError, match="unknown image source"):
        EvalProtocol(images={"source": "web"}).image_files()


# ------------------------------------------------------------ protocols, manifest, hashes

from inpaintzoo.evaluation import (  # noqa: E402
    TargetRatioMasks,
    grid_indices,
    protocol_manifest,
    write_per_sample,
)


def test_manifest_records_ratios_and_is_deterministic():
    protocol = EvalProtocol(num_samples=8)
    a = protocol_manifest(protocol)
    b = protocol_manifest(EvalProtocol(num_samples=8))
    assert (a.pairs_sha256, a.images_sha256, a.masks_sha256) == (
        b.pairs_sha256,
        b.images_sha256,
        b.masks_sha256,
    )
    assert a.pairs_sha256 == pairs_hash(protocol.dataset())
    dataset = protocol.dataset()
    for record in a.records:
        mask = dataset[record["index"]]["mask"]
        assert record["hole_ratio"] == pytest.approx(float(mask.mean()))
        assert record["bin"] == protocol.hole_bins().label_of(record["hole_ratio"])
    other = protocol_manifest(EvalProtocol(num_samples=8, seed=7))
    assert other.masks_sha256 != a.masks_sha256 and other.images_sha256 == a.images_sha256
    csv = a.to_csv().splitlines()
    assert csv[0] == "index,name,image,mask,hole_ratio,bin" and len(csv) == 9


def test_target_ratio_masks_hit_their_targets():
    import numpy as np

    source = TargetRatioMasks(targets=(0.1, 0.3, 0.5), tolerance=0.05)
    for index in range(6):
        mask = source(index, 64, 64, np.random.default_rng([1234, index]))
        target = (0.1, 0.3, 0.5)[index % 3]
        assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
        assert abs(float(mask.mean()) - target) <= 0.05
    again = source(4, 64, 64, np.random.default_rng([1234, 4]))
    assert np.array_equal(again, source(4, 64, 64, np.random.default_rng([1234, 4])))
    with pytest.raises(ValueError, match="targets"):
        TargetRatioMasks(targets=(1.5,))


def _compose_protocol(name: str, *overrides: str) -> EvalProtocol:
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("eval", overrides=[f"protocol={name}", *overrides])
    return EvalProtocol.from_config(OmegaConf.to_container(cfg.protocol, resolve=True))


def test_protocol_configs_compose():
    ctsdg = _compose_protocol("ctsdg")
    assert ctsdg.size == 256 and ctsdg.bins == (0.0, 0.2, 0.4, 0.6)
    with pytest.raises(ValueError, match="protocol.images.root"):
        ctsdg.image_files()  # images come from a real dataset configured by path
    assert _compose_protocol("nvidia6").bins == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    alias = _compose_protocol("celeba64")
    assert alias.name == "ctsdg_celeba64" and alias.size == 64
    assert _compose_protocol("nvidia6_celeba64").name == "nvidia6_celeba64"
    freeform = _compose_protocol("freeform")
    assert freeform.mask["kind"] == "target_ratio"


def test_ctsdg_celeba64_pairs_nvidia_masks_binned_at_64px(celeba64, nvidia_masks):
    protocol = _compose_protocol(
        "ctsdg_celeba64",
        f"paths.shared_data={celeba64.parent}",
        "protocol.num_samples=6",
        "protocol.mask.every=2000",
    )
    manifest = protocol_manifest(protocol)
    assert [r["mask"] for r in manifest.records] == [f"{i * 2000:05d}.png" for i in range(6)]
    assert [r["image"] for r in manifest.records] == sorted(
        p.name for p in (celeba64 / "val").glob("*.png")
    )[:6]
    # files 0-1999 hold 0-10 % holes, 10000-11999 50-60 % (ratio re-measured at 64 px)
    assert manifest.records[0]["hole_ratio"] < 0.15 and manifest.records[5]["hole_ratio"] > 0.45
    assert manifest.records[0]["bin"] == "0-20%" and manifest.records[5]["bin"] == "40-60%"


# ------------------------------------------------------------ runner: resume, flags, n/a


def _telea():
    return Predictor(zoo.create_model("telea"))


def _numbers(result):
    return json.dumps(result["metrics"], sort_keys=True)


def test_interrupted_evaluation_resumes_with_identical_results(tmp_path):
    protocol = EvalProtocol(num_samples=10)
    dataset = protocol.dataset()
    manifest = protocol_manifest(protocol, dataset)
    common = dict(dataset=dataset, manifest=manifest, batch_size=3, lpips="off", fid=False)
    fresh = evaluate(_telea(), protocol, **common)
    cache = tmp_path / "cache"
    partial = evaluate(_telea(), protocol, cache_dir=cache, max_batches=2, **common)
    assert partial["runtime"]["complete"] is False and partial["runtime"]["num_samples"] == 6
    chunks = sorted(cache.rglob("chunk_*.pt"))
    assert len(chunks) == 2
    resumed = evaluate(_telea(), protocol, cache_dir=cache, **common)
    assert resumed["runtime"]["resumed_samples"] == 6 and resumed["runtime"]["complete"]
    assert _numbers(resumed) == _numbers(fresh)
    assert [r["index"] for r in resumed.per_sample] == list(range(10))
    # a chunk lost (killed mid-run before its atomic rename): recomputed, same numbers
    chunks[0].unlink()
    again = evaluate(_telea(), protocol, cache_dir=cache, **common | {"batch_size": 4})
    assert _numbers(again) == _numbers(fresh)
    # another method never reuses telea's cache
    ns = evaluate(Predictor(zoo.create_model("navier_stokes")), protocol, cache_dir=cache, **common)
    assert ns["runtime"]["resumed_samples"] == 0 and ns["method_key"] != fresh["method_key"]


def test_results_record_hashes_outputs_and_per_sample(tmp_path):
    protocol = EvalProtocol(num_samples=8)
    manifest = protocol_manifest(protocol)
    out = tmp_path / "outputs" / "telea"
    result = evaluate(
        _telea(),
        protocol,
        manifest=manifest,
        batch_size=4,
        lpips="off",
        fid=False,
        outputs_dir=out,
        outputs_per_bin=1,
    )
    p = result["protocol"]
    assert p["images_sha256"] == manifest.images_sha256
    assert p["masks_sha256"] == manifest.masks_sha256
    assert sum(p["bin_counts"].values()) <= 8 and p["resized_for_method"] is False
    saved = sorted(int(f.stem) for f in out.glob("*.png"))
    assert saved == grid_indices(manifest, 1) and len(saved) >= 2
    assert {"torchmetrics", "lpips", "numpy"} <= set(result["environment"])
    csv = write_per_sample(result, tmp_path / "per_sample.csv").read_text().splitlines()
    assert csv[0].startswith("index,name,image,mask,hole_ratio,bin,psnr") and len(csv) == 9


def test_method_below_min_size_is_resized_and_flagged():
    model = zoo.create_model("telea")
    model.min_size = 128  # pretend a method that needs 128 px
    result = evaluate(Predictor(model), EvalProtocol(num_samples=4), lpips="off", fid=False)
    assert result["protocol"]["resized_for_method"] is True
    assert any("resized up to 128 px" in note for note in result["notes"])


def test_lpips_and_fid_na_paths_complete_the_evaluation(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty_hub"))
    result = evaluate(_telea(), EvalProtocol(num_samples=4), lpips="imagenet", fid=True)
    overall = result["metrics"]["overall"]
    for key in ("lpips_alex", "lpips_vgg", "fid"):
        assert overall[key]["mean"] is None and "torch hub cache" in overall[key]["na_reason"]
    assert overall["psnr"]["n"] == 4


def test_lpips_real_code_path_with_random_backbone():
    result = evaluate(_telea(), EvalProtocol(num_samples=4), lpips="random", fid=False)
    for key in ("lpips_alex", "lpips_vgg"):
        entry = result["metrics"]["overall"][key]
        assert entry["n"] == 4 and entry["mean"] > 0  # composites differ from the originals
    assert any("RANDOM backbone" in note for note in result["notes"])


def test_fid_from_features_matches_the_closed_form():
    import numpy as np
    from scipy import linalg

    from inpaintzoo.metrics import fid_from_features

    torch.manual_seed(0)
    real, fake = torch.randn(40, 6).double(), (torch.randn(50, 6) * 1.3 + 0.4).double()
    mu1, mu2 = real.mean(0).numpy(), fake.mean(0).numpy()
    s1, s2 = np.cov(real.numpy().T), np.cov(fake.numpy().T)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
    assert fid_from_features(real, fake) == pytest.approx(expected, rel=1e-4)
    assert fid_from_features(real, fake[:1]) is None


# ------------------------------------------------------------ runner internals (grouped settings)


def test_grouped_settings_give_the_keyword_form_result(tmp_path):
    from inpaintzoo.evaluation import (
        MethodInfo,
        MetricSettings,
        OutputSettings,
        PreparedProtocol,
        RunSettings,
        run_evaluation,
    )

    protocol = EvalProtocol(num_samples=6)
    prepared = PreparedProtocol.build(protocol)
    flat = evaluate(
        _telea(), protocol, manifest=prepared.manifest, label="T", lpips="off", fid=False
    )
    grouped = run_evaluation(
        _telea(),
        prepared,
        method=MethodInfo(label="T"),
        metrics=MetricSettings(lpips="off", fid=False),
        outputs=OutputSettings(dir=tmp_path / "out", per_bin=1, keep_samples=2),
        run=RunSettings(batch_size=4, cache_dir=tmp_path / "cache"),
    )
    assert _numbers(grouped) == _numbers(flat) and grouped["label"] == "T"
    assert grouped["method_key"] == flat["method_key"]
    assert grouped["runtime"]["batch_size"] == 4 and grouped.samples["image"].shape[0] == 2
    # the documented cache layout: <root>/<pairs sha[:16]>/<method>-<key>/chunk_<first>.pt
    chunk_dir = tmp_path / "cache" / prepared.manifest.pairs_sha256[:16]
    chunk_dir = chunk_dir / f"telea-{grouped['method_key']}"
    assert sorted(p.name for p in chunk_dir.iterdir()) == ["chunk_0000000.pt", "chunk_0000004.pt"]
    assert sorted(int(p.stem) for p in (tmp_path / "out").glob("*.png")) == grid_indices(
        prepared.manifest, 1
    )


def test_bad_settings_are_refused_with_the_remedy():
    from inpaintzoo.evaluation import MetricSettings, PreparedProtocol

    with pytest.raises(ValueError, match="lpips must be one of imagenet, random, off"):
        MetricSettings(lpips="alexnet")
    with pytest.raises(ValueError, match="lpips must be one of"):
        evaluate(_telea(), EvalProtocol(num_samples=2), lpips="alexnet")
    with pytest.raises(ValueError, match="pairs_sha256 does not match"):
        PreparedProtocol.build(EvalProtocol(num_samples=2), pairs_sha256="0" * 64)


def test_bins_summary_matches_the_per_sample_values_without_a_process_sync(monkeypatch):
    """The runner aggregates per bin with BinnedMetrics, which must not sync across processes:
    after DDP training only rank 0 evaluates (a sync would wait forever). Pretend a process
    group exists; any sync attempt then fails instead of hanging."""
    import torchmetrics.metric

    from inpaintzoo.metrics import mean_ci95

    def no_sync(*args, **kwargs):
        raise AssertionError("the evaluation runner tried to sync metric states across ranks")

    monkeypatch.setattr(torchmetrics.metric, "jit_distributed_available", lambda: True)
    monkeypatch.setattr(torchmetrics.metric, "gather_all_tensors", no_sync)
    protocol = EvalProtocol(num_samples=8)
    result = evaluate(_telea(), protocol, batch_size=3, lpips="off", fid=False)
    labels = protocol.hole_bins().labels
    for metric in ("psnr", "ssim", "ssim_lbam", "l1"):
        for label in [None, *labels]:
            rows = [r for r in result.per_sample if label is None or r["bin"] == label]
            entry = (
                result["metrics"]["overall"] if label is None else result["metrics"]["bins"][label]
            )[metric]
            mean, half_width, n = mean_ci95([r[metric] for r in rows])
            assert entry["n"] == n
            if n:
                assert entry["mean"] == pytest.approx(mean, rel=1e-12)
            if n > 1:
                assert entry["ci95"] == pytest.approx(half_width, rel=1e-9)
    assert result["metrics"]["overall"]["lpips_alex"]["na_reason"].startswith("LPIPS switched off")


def test_device_timer_measures_the_block():
    import time

    from inpaintzoo.evaluation.runner import DeviceTimer

    with DeviceTimer("cpu") as timer:
        time.sleep(0.05)
    assert 0.05 <= timer.seconds < 5.0
