"""Fault tolerance: kill -9 and resume, damaged checkpoints, non-finite losses, speed switches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir

from helpers import embedded_batch, fit
from inpaintzoo import zoo
from inpaintzoo.callbacks import BatchCheckpoint
from inpaintzoo.cli.train import read_resume_state, resolve_resume

CONF = Path(__file__).resolve().parents[1] / "conf"
CKPT_EVERY = 3
MAX_BATCHES = 12


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides)


def _tiny(**kwargs):
    torch.manual_seed(0)
    return zoo.create_model(
        "edgeconnect",
        variant="tiny",
        canny_sigma=1.0,
        perceptual_weight=0,
        style_weight=0,
        **kwargs,
    )


def _fit(model, batches: int, callbacks=(), **trainer_kwargs) -> pl.Trainer:
    return fit(model, embedded_batch(2, 32), batches, callbacks=callbacks, **trainer_kwargs)


# ---------------------------------------------------------------------- kill -9
def _train_cmd(root: Path) -> list[str]:
    exe = Path(sys.executable).parent / "inpaintzoo-train"
    if not exe.exists():
        pytest.skip("inpaintzoo-train is not installed in this environment (pip install -e .)")
    return [
        str(exe),
        "experiment=demo",
        "model.stage=2",  # G2 and D2 step every batch
        "callbacks=none",
        "logger=none",
        f"train.max_batches={MAX_BATCHES}",
        f"train.ckpt_every_batches={CKPT_EVERY}",
        "train.val_every_batches=0",
        "evaluate.enabled=false",
        "trainer.enable_progress_bar=false",
        "data.train.samples_per_epoch=64",
        "data.batch_size=4",
        f"paths.output_root={root}",
    ]


def test_kill_minus_9_then_rerun_resumes(tmp_path):
    """SIGKILL after the first periodic checkpoint; the same command resumes from it."""
    cmd = _train_cmd(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    last = tmp_path / "demo" / "edgeconnect_stage2" / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert last.exists(), "no checkpoint was written before the deadline"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL  # killed, not finished
    at_kill = read_resume_state(last)["batches_seen"]
    assert at_kill % CKPT_EVERY == 0 and CKPT_EVERY <= at_kill < MAX_BATCHES

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-3000:]
    text = rerun.stdout + rerun.stderr
    assert f"(batch {at_kill} of {MAX_BATCHES})" in text  # resumed where the checkpoint was
    final = torch.load(last, map_location="cpu", weights_only=True)
    assert final["inpaintzoo"]["batches_seen"] == MAX_BATCHES
    # stage 2 steps D2 and G2 per batch; the counter continued from the checkpoint (a restart
    # from scratch would give the same count, so check Adam's own step counter too)
    assert final["global_step"] == 2 * MAX_BATCHES
    assert float(final["optimizer_states"][2]["state"][0]["step"]) == MAX_BATCHES
    assert (last.parent / "step0.ckpt").is_file()


# ---------------------------------------------------------------------- damaged checkpoints
@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    """A real 2-batch run's checkpoints (last.ckpt at batch 2, step0.ckpt)."""
    folder = tmp_path_factory.mktemp("ckpts")
    _fit(_tiny(stage=2), 2, callbacks=[BatchCheckpoint(folder, every_batches=1)])
    return folder


def test_truncated_last_ckpt_is_refused_with_a_clear_error(checkpoint_dir, tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    data = (checkpoint_dir / "last.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(data[: len(data) // 2])
    cfg = _compose([f"run_dir={tmp_path}"])
    with pytest.raises(RuntimeError, match=r"cannot resume from .*last\.ckpt.*corrupt or trunc"):
        resolve_resume(cfg, folder)
    # the remedy the message names works: resume from another checkpoint
    (folder / "step0.ckpt").write_bytes((checkpoint_dir / "step0.ckpt").read_bytes())
    cfg = _compose([f"run_dir={tmp_path}", f"resume={folder / 'step0.ckpt'}"])
    assert resolve_resume(cfg, folder) == str(folder / "step0.ckpt")
    cfg = _compose([f"run_dir={tmp_path}", "resume=false"])
    assert resolve_resume(cfg, folder) is None and not folder.exists()


def test_leftover_temp_file_of_an_interrupted_save_is_ignored(checkpoint_dir, tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "last.ckpt").write_bytes((checkpoint_dir / "last.ckpt").read_bytes())
    (folder / ".last.ckpt.tmp").write_bytes(b"half a checkpoint")  # killed mid-save
    cfg = _compose([f"run_dir={tmp_path}"])
    assert resolve_resume(cfg, folder) == str(folder / "last.ckpt")
    assert read_resume_state(folder / "last.ckpt")["batches_seen"] == 2


def test_checkpoint_writes_are_atomic(checkpoint_dir, tmp_path, monkeypatch):
    """A save that dies half-way leaves the previous last.ckpt intact."""
    from inpaintzoo.callbacks import save_checkpoint_atomic

    model = _tiny(stage=2)
    trainer = _fit(model, 1)
    target = tmp_path / "last.ckpt"
    target.write_bytes((checkpoint_dir / "last.ckpt").read_bytes())

    def dying_save(path, weights_only=False):
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(trainer, "save_checkpoint", dying_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint_atomic(trainer, target)
    assert read_resume_state(target)["batches_seen"] == 2  # the old, complete file


def test_missing_resume_path_is_a_clear_error(tmp_path):
    cfg = _compose([f"run_dir={tmp_path}", f"resume={tmp_path / 'nope.ckpt'}"])
    with pytest.raises(FileNotFoundError, match="resume checkpoint not found"):
        resolve_resume(cfg, tmp_path / "checkpoints")


# ---------------------------------------------------------------------- non-finite losses
def test_isolated_nonfinite_losses_are_skipped_counted_and_checkpointed(tmp_path):
    model = _tiny(stage=2, max_nonfinite=3)
    orig = model._inpaint_step
    calls = {"n": 0}

    def sometimes_inf(image, edge_in, mask):
        out, loss, logs = orig(image, edge_in, mask)
        calls["n"] += 1
        return out, (loss * float("inf") if calls["n"] in (2, 3) else loss), logs

    model._inpaint_step = sometimes_inf
    _fit(model, 5, callbacks=[BatchCheckpoint(tmp_path, every_batches=5, save_step0=False)])
    assert model.batches_seen == 5  # two bad batches in a row (< 3) do not stop the run
    assert model.nonfinite_total == 2 and model.nonfinite_in_a_row == 0
    assert read_resume_state(tmp_path / "last.ckpt")["nonfinite_total"] == 2
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ---------------------------------------------------------------------- precision switches
def test_bf16_mixed_on_cpu_trains():
    model = _tiny(stage=2)
    before = [p.detach().clone() for p in model.inpaint_generator.parameters()]
    _fit(model, 1, precision="bf16-mixed")
    assert model.nonfinite_total == 0
    after = list(model.inpaint_generator.parameters())
    assert all(p.dtype == torch.float32 for p in after)  # master weights stay fp32
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


def test_deferred_grad_clip_clips_after_unscaling():
    """16-mixed: clipping waits for on_before_optimizer_step (gradients unscaled by then)."""
    model = _tiny(stage=2, grad_clip=1e-3)
    params = list(model.inpaint_generator.parameters())
    for p in params:
        p.grad = torch.ones_like(p)
    opt = torch.optim.Adam(params)
    model._deferred_clip[id(opt)] = 1e-3
    model.on_before_optimizer_step(opt)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
    assert float(norm) == pytest.approx(1e-3, rel=1e-3)
    assert model._deferred_clip == {}
