"""Bad input at the command line: one line naming the problem, non-zero exit, no traceback.

Each row of docs/RELIABILITY.md's bad-input table that a person can hit from an entry point is
run through the installed command as a subprocess. ``INPAINTZOO_DEBUG=1`` brings the traceback
back (last test).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintzoo import zoo


def bin_path(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.skip(f"{name} is not installed in this environment (pip install -e .)")
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny EdgeConnect checkpoint, an image, masks and damaged files."""
    import pytorch_lightning as pl

    root = tmp_path_factory.mktemp("bad_inputs")
    model = zoo.create_model("edgeconnect", variant="tiny", perceptual_backbone="off")
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(root / "model.ckpt")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(root / "image.png")
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:40] = 255
    Image.fromarray(mask).save(root / "mask.png")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(root / "small_mask.png")
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    data = (root / "model.ckpt").read_bytes()
    (root / "truncated.ckpt").write_bytes(data[: len(data) // 3])

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"state_dict": {}, "payload": Payload()}, root / "code.ckpt")
    (root / "empty").mkdir()
    return root


def run(command: str, *args: str, cwd: Path, env: dict | None = None):
    quiet = {
        k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "INPAINTZOO_DEBUG")
    }
    environment = {**quiet, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [bin_path(command), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=300,
    )


def predict(f: Path, **overrides: str) -> list[str]:
    args = {
        "ckpt": f / "model.ckpt",
        "image": f / "image.png",
        "mask": f / "mask.png",
        "out": f / "out.png",
        "mask_polarity": "white_hole",
        **overrides,
    }
    return [f"{k}={v}" for k, v in args.items()]


TRAIN = [
    "experiment=demo",
    "model.variant=tiny",
    "train.max_batches=3",
    "train.val_every_batches=0",
    "evaluate.enabled=false",
    "callbacks=none",
    "logger=none",
    "trainer.enable_progress_bar=false",
]

# (id, command, arguments given the files folder, text the one error line must contain)
CASES = [
    ("missing image", "inpaintzoo-predict", lambda f: predict(f, image=f / "nope.png"),
     "image file not found"),
    ("missing mask", "inpaintzoo-predict", lambda f: predict(f, mask=f / "nope.png"),
     "not found"),
    ("missing checkpoint", "inpaintzoo-predict", lambda f: predict(f, ckpt=f / "nope.ckpt"),
     "checkpoint not found"),
    ("corrupt image", "inpaintzoo-predict", lambda f: predict(f, image=f / "corrupt.png"),
     "corrupt.png"),
    ("mask of another size", "inpaintzoo-predict",
     lambda f: predict(f, mask=f / "small_mask.png"), "same size"),
    ("truncated checkpoint", "inpaintzoo-predict", lambda f: predict(f, ckpt=f / "truncated.ckpt"),
     "corrupt or truncated"),
    ("pickle carrying code", "inpaintzoo-predict", lambda f: predict(f, ckpt=f / "code.ckpt"),
     "refusing to load"),
    ("checkpoint of another method", "inpaintzoo-eval",
     lambda f: [f"methods=[ctsdg:{f / 'model.ckpt'}]", "protocol.num_samples=2",
                f"out_dir={f / 'eval'}"], "'edgeconnect' checkpoint, but 'ctsdg' was requested"),
    ("unknown method", "inpaintzoo-eval",
     lambda f: ["methods=[edgeconect]", f"out_dir={f / 'eval'}"], "unknown model 'edgeconect'"),
    ("missing resume checkpoint", "inpaintzoo-train",
     lambda f: [*TRAIN, f"resume={f / 'nope.ckpt'}", f"run_dir={f / 'run1'}"],
     "resume checkpoint not found"),
    ("empty data folder", "inpaintzoo-train",
     lambda f: [*TRAIN, "data=folder", f"data.train.root={f / 'empty'}",
                f"data.val.root={f / 'empty'}", f"run_dir={f / 'run2'}"], "no images found"),
    ("stage without its trained predecessor", "inpaintzoo-train",
     lambda f: [*TRAIN, "model.stage=3", f"run_dir={f / 'run3'}"],
     "needs a trained edge_generator"),
    ("VGG weights absent", "inpaintzoo-train",
     lambda f: [*TRAIN, "model.perceptual_backbone=imagenet", f"run_dir={f / 'run4'}"],
     "MissingWeightsError"),
    ("unknown export format", "inpaintzoo-export",
     lambda f: [f"ckpt={f / 'model.ckpt'}", f"out={f / 'export'}", "formats=[tflite]"],
     "unknown export format"),
    ("missing results for the leaderboard", "inpaintzoo-leaderboard",
     lambda f: [str(f / "no_results"), "--out", str(f / "board")], "no_results"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "make_args", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_input_is_one_clear_line(files, command, make_args, expected):
    if expected == "MissingWeightsError":
        from inpaintzoo.losses import vgg19_weights_path

        if vgg19_weights_path().is_file():
            pytest.skip("the VGG19 ImageNet file is in this machine's torch cache")
    proc = run(command, *[str(a) for a in make_args(files)], cwd=files)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors, proc.stderr[-3000:]
    assert any(expected in line for line in errors), proc.stderr[-3000:]


def test_unknown_config_key_names_the_key_without_a_traceback(files):
    proc = run("inpaintzoo-train", "experiment=demo", "model.l1_wieght=2", cwd=files)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "l1_wieght" in proc.stderr


def test_debug_flag_shows_the_traceback(files):
    proc = run(
        "inpaintzoo-predict",
        *predict(files, image=files / "nope.png"),
        cwd=files,
        env={"INPAINTZOO_DEBUG": "1"},
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr
