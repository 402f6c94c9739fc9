"""Sweeps across methods: launcher configs compose, and a tiny two-job sweep evaluates each job
at the end of training and one command builds the combined leaderboard from the sweep folder."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


def _compose(overrides: list[str]):
    with warnings.catch_warnings():
        # the launcher files share the plugins' schema names (validated against them)
        warnings.simplefilter("ignore", UserWarning)
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose("train", overrides=overrides, return_hydra_config=True)


def test_joblib_launcher_config_composes():
    cfg = _compose(["hydra/launcher=joblib", "experiment=demo", "hydra.launcher.n_jobs=3"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("joblib_launcher.JoblibLauncher")
    assert launcher.n_jobs == 3 and launcher.prefer == "processes"


def test_submitit_slurm_launcher_config_composes_and_instantiates():
    cfg = _compose(
        [
            "hydra/launcher=submitit_slurm",
            "experiment=celeba64",
            "hydra.launcher.partition=gpu",
            "hydra.launcher.account=lab",
        ]
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.account == "lab"
    assert launcher.gpus_per_node == 1 and launcher.timeout_min == 1440
    # the plugin class accepts every key (nothing is submitted: no setup() / launch())
    from hydra.utils import instantiate

    instance = instantiate(launcher)
    assert type(instance).__name__ == "SlurmLauncher"
    # every job of a sweep evaluates at the end of training with the experiment's protocol
    assert cfg.evaluate.enabled and cfg.protocol.name == "ctsdg_celeba64"
    assert cfg.hydra.sweep.dir.endswith("celeba64")


def _bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.skip(f"{name} is not installed in this environment (pip install -e .)")
    return str(path)


def test_two_job_sweep_then_one_combined_leaderboard(tmp_path):
    """~45 s on 2 busy CPU cores: two tiny EdgeConnect jobs (2 batches each), each evaluated
    with the smoke protocol beside Telea; then ``inpaintzoo-leaderboard <sweep folder>``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    cmd = [
        _bin("inpaintzoo-train"),
        "-m",
        "experiment=demo",
        "model=edgeconnect",
        "model.variant=tiny",
        "model.stage=1,2",
        "train.max_batches=2",
        "train.val_every_batches=0",
        "protocol.num_samples=6",
        "evaluate.compare=[telea]",
        "evaluate.lpips=off",
        "evaluate.outputs_per_bin=1",
        "callbacks=none",
        "trainer.enable_progress_bar=false",
        f"paths.output_root={tmp_path}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "demo"
    assert len(list(sweep.rglob("results.json"))) == 2
    out = tmp_path / "board"
    proc = subprocess.run(
        [_bin("inpaintzoo-leaderboard"), str(sweep), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    markdown = (out / "leaderboard.md").read_text()
    rows = [
        line for line in markdown.splitlines() if line.startswith("| ") and "Method" not in line
    ]
    labels = sorted(line.split("|")[1].strip() for line in rows)
    assert len(labels) == 3 and labels[2] == "telea"  # telea once, though both jobs ran it
    assert "[model.stage=1" in labels[0] and "[model.stage=2" in labels[1]
    assert "**" in markdown  # best per column in bold
    assert (out / "grid.png").is_file() and (out / "leaderboard.html").is_file()
