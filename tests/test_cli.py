"""CLI round trip: configs compose, train -> checkpoint -> resume -> evaluate -> predict.

Most tests compose the Hydra config in-process and call the function the entry point calls;
one subprocess smoke test per entry point checks the installed commands.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"

# a short, quiet training run on the embedded photos
FAST = [
    "experiment=demo",
    "callbacks=none",
    "train.max_batches=4",
    "train.ckpt_every_batches=2",
    "train.val_every_batches=2",
    "train.limit_val_batches=1",
    "protocol.num_samples=8",
    "evaluate.batch_size=8",
    "evaluate.grid_samples=4",
    "data.train.samples_per_epoch=64",
    "data.val.samples_per_epoch=4",
    "trainer.enable_progress_bar=false",
]


def compose_cfg(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def bin_path(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.skip(f"{name} is not installed in this environment (pip install -e .)")
    return str(path)


@pytest.mark.parametrize("experiment", ["demo", "edgeconnect_demo", "celeba64"])
def test_every_experiment_composes(experiment, tmp_path):
    cfg = compose_cfg("train", [f"experiment={experiment}", f"run_dir={tmp_path}"])
    assert cfg.model.name == "edgeconnect"
    assert cfg.experiment_name in experiment
    from omegaconf import OmegaConf

    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert cfg.model.canny_sigma == 2.0  # the recipe's, at 256 px
    assert cfg.model.structure_scale == 0.5  # 64 px experiments scale it
    if experiment != "celeba64":
        assert cfg.model.variant == "tiny" and cfg.model.perceptual_backbone == "off"


def test_default_edgeconnect_run_trains_the_paper_schedule(tmp_path):
    """The default is the whole schedule (not stage 3 on an untrained G1)."""
    cfg = compose_cfg("train", ["experiment=celeba64", f"run_dir={tmp_path}"])
    assert cfg.model.schedule == "paper" and cfg.model.stage is None


def test_unknown_config_key_is_a_clear_error(tmp_path):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="no_such_key"):
        compose_cfg("train", ["model.no_such_key=1", f"run_dir={tmp_path}"])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from inpaintzoo.cli.train import run_train

    run_dir = tmp_path_factory.mktemp("run")
    cfg = compose_cfg("train", [*FAST, f"run_dir={run_dir}", "evaluate.compare=[step0,telea]"])
    summary = run_train(cfg)
    return run_dir, summary


def test_train_writes_checkpoints_results_leaderboard_and_grid(trained_run):
    run_dir, summary = trained_run
    assert summary["batches"] == 4
    for name in [
        "checkpoints/last.ckpt",
        "checkpoints/step0.ckpt",
        "results.json",
        "leaderboard.md",
        "samples.png",
        "comparison.png",
        "eval/results_edgeconnect.json",
        "eval/results_edgeconnect_step0.json",
        "eval/results_telea.json",
    ]:
        assert (run_dir / name).is_file(), name
    results = json.loads((run_dir / "results.json").read_text())
    assert results["schema_version"] == 1 and results["method"] == "edgeconnect"
    assert results["protocol"]["num_samples"] == 8
    assert any("VGG-based losses" in n for n in results["notes"])
    assert 5 < results["metrics"]["overall"]["psnr"]["mean"] < 60
    board = (run_dir / "leaderboard.md").read_text()
    assert "telea" in board and "untrained" in board
    ckpt = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)
    assert ckpt["inpaintzoo"]["batches_seen"] == 4
    # stage 3: G2 and D2 step each batch -> Lightning's global_step counts 2 per batch
    assert ckpt["global_step"] == 8
    with Image.open(run_dir / "samples.png") as grid:
        assert grid.width >= 4 * 64 and grid.height >= 4 * 64
    assert list((run_dir / "logs").glob("metrics.csv"))


def test_rerun_resumes_from_last_checkpoint(trained_run, tmp_path):
    from inpaintzoo.cli.train import run_train

    run_dir, _ = trained_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    before = torch.load(copy / "checkpoints/last.ckpt", weights_only=True)
    cfg = compose_cfg(
        "train", [*FAST, f"run_dir={copy}", "train.max_batches=6", "evaluate.enabled=false"]
    )
    summary = run_train(cfg)
    after = torch.load(copy / "checkpoints/last.ckpt", weights_only=True)
    assert summary["batches"] == 6
    assert after["global_step"] == before["global_step"] + 4  # continued, not restarted
    # optimizer state carried over: Adam's step counter continues from the checkpoint
    steps_before = before["optimizer_states"][2]["state"][0]["step"]
    steps_after = after["optimizer_states"][2]["state"][0]["step"]
    assert float(steps_after) == float(steps_before) + 2
    # rerunning a finished run trains nothing more
    summary = run_train(cfg)
    assert summary["batches"] == 6


def test_resume_false_starts_over(trained_run, tmp_path):
    from inpaintzoo.cli.train import run_train

    run_dir, _ = trained_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    cfg = compose_cfg(
        "train",
        [*FAST, f"run_dir={copy}", "train.max_batches=3", "resume=false", "evaluate.enabled=false"],
    )
    assert run_train(cfg)["batches"] == 3


def test_init_from_loads_generators(trained_run, tmp_path):
    from inpaintzoo.cli.train import init_weights_from
    from inpaintzoo.zoo import create_model, load_checkpoint

    run_dir, _ = trained_run
    src = load_checkpoint(run_dir / "checkpoints/last.ckpt")
    fresh = create_model("edgeconnect", variant="tiny", perceptual_weight=0, style_weight=0)
    init_weights_from(fresh, str(run_dir / "checkpoints/last.ckpt"))
    for a, b in zip(src.inpaint_generator.parameters(), fresh.inpaint_generator.parameters()):
        assert torch.equal(a, b)


def _write_pair(tmp_path, h=53, w=70, polarity="white_hole"):
    rng = np.random.default_rng(0)
    image = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[10:30, 20:45] = 255
    if polarity == "black_hole":
        mask = 255 - mask
    Image.fromarray(image).save(tmp_path / "image.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return image, mask


@pytest.mark.parametrize("polarity", ["white_hole", "black_hole"])
def test_predict_odd_size_any_polarity(trained_run, tmp_path, polarity):
    from inpaintzoo.cli.predict import run_predict

    run_dir, _ = trained_run
    image, _ = _write_pair(tmp_path, polarity=polarity)
    out = tmp_path / "out.png"
    cfg = compose_cfg(
        "predict",
        [
            f"ckpt={run_dir / 'checkpoints/last.ckpt'}",
            f"input.image={tmp_path / 'image.png'}",
            f"input.mask={tmp_path / 'mask.png'}",
            f"mask_polarity={polarity}",
            f"out={out}",
            f"save_edges={tmp_path / 'edges.png'}",
        ],
    )
    run_predict(cfg)
    result = np.asarray(Image.open(out))
    assert result.shape == image.shape
    known = np.ones(image.shape[:2], bool)
    known[10:30, 20:45] = False
    assert np.array_equal(result[known], image[known])  # known pixels untouched
    assert not np.array_equal(result[~known], image[~known])
    assert (tmp_path / "edges.png").is_file()


def test_predict_rejects_mask_of_another_size(trained_run, tmp_path):
    from inpaintzoo.cli.predict import run_predict

    run_dir, _ = trained_run
    _write_pair(tmp_path)
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "small.png")
    cfg = compose_cfg(
        "predict",
        [
            f"ckpt={run_dir / 'checkpoints/last.ckpt'}",
            f"input.image={tmp_path / 'image.png'}",
            f"input.mask={tmp_path / 'small.png'}",
            f"out={tmp_path / 'o.png'}",
        ],
    )
    with pytest.raises(ValueError, match="must have the same size"):
        run_predict(cfg)


def test_predict_with_sketch(trained_run, tmp_path):
    from inpaintzoo.cli.predict import run_predict

    run_dir, _ = trained_run
    _write_pair(tmp_path)
    sketch = np.zeros((53, 70), np.uint8)
    sketch[20, :] = 255
    Image.fromarray(sketch).save(tmp_path / "sketch.png")
    outs = []
    for extra in ([], [f"input.sketch={tmp_path / 'sketch.png'}"]):
        out = tmp_path / f"out{len(extra)}.png"
        run_predict(
            compose_cfg(
                "predict",
                [
                    f"ckpt={run_dir / 'checkpoints/last.ckpt'}",
                    f"input.image={tmp_path / 'image.png'}",
                    f"input.mask={tmp_path / 'mask.png'}",
                    f"out={out}",
                    *extra,
                ],
            )
        )
        outs.append(np.asarray(Image.open(out)))
    assert not np.array_equal(outs[0], outs[1])


def test_eval_cli_function_on_baselines(tmp_path):
    from inpaintzoo.cli.eval import run_eval

    cfg = compose_cfg(
        "eval", [f"out_dir={tmp_path}", "protocol.num_samples=6", "methods=[telea,navier_stokes]"]
    )
    results = run_eval(cfg)
    assert [r["method"] for r in results] == ["telea", "navier_stokes"]
    assert (tmp_path / "results_telea.json").is_file()
    assert (tmp_path / "leaderboard.md").is_file()
    with pytest.raises(ValueError, match="give its checkpoint"):
        run_eval(compose_cfg("eval", [f"out_dir={tmp_path}", "methods=[edgeconnect]"]))


def _env():
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_train_entry_point_multirun(tmp_path):
    """The issue's sweep example, through the installed command."""
    cmd = [
        bin_path("inpaintzoo-train"),
        "-m",
        "experiment=demo",
        "model=edgeconnect",
        "model.variant=tiny",
        "model.stage=1,2",
        "train.max_batches=2",
        "evaluate.enabled=false",
        "callbacks=none",
        "trainer.enable_progress_bar=false",
        "train.val_every_batches=0",
        f"paths.output_root={tmp_path}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(
        p.parent.parent for p in tmp_path.glob("demo/edgeconnect/*/checkpoints/last.ckpt")
    )
    assert len(runs) == 2
    assert "model.stage=1" in runs[0].name and "model.stage=2" in runs[1].name


def test_eval_and_predict_entry_points(trained_run, tmp_path):
    run_dir, _ = trained_run
    proc = subprocess.run(
        [
            bin_path("inpaintzoo-eval"),
            "protocol.num_samples=4",
            "methods=[telea]",
            f"out_dir={tmp_path / 'eval'}",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "eval" / "results_telea.json").is_file()
    _write_pair(tmp_path)
    proc = subprocess.run(
        [
            bin_path("inpaintzoo-predict"),
            f"ckpt={run_dir / 'checkpoints/last.ckpt'}",
            f"image={tmp_path / 'image.png'}",
            f"mask={tmp_path / 'mask.png'}",
            "mask_polarity=white_hole",
            f"out={tmp_path / 'out.png'}",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "out.png").is_file()
    assert not (tmp_path / "predict.log").exists()
