"""The README's stage-by-stage recipe, run as written (plus overrides that only shrink the run).

The commands are read from the README block after the ``staged-recipe`` marker, so the test and
the documentation cannot drift apart. Each stage trains into its own folder; the second command
starts from the first one's checkpoint (its edge generator), and the same stage without
``init_from`` refuses to start with one clear line.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# shrink the run: tiny widths, no VGG (offline), 4 batches, a 4-sample evaluation, no workers
SHRINK = [
    "model.variant=tiny",
    "model.perceptual_backbone=off",
    "train.max_batches=4",
    "train.ckpt_every_batches=4",
    "train.val_every_batches=0",
    "protocol.num_samples=4",
    "evaluate.batch_size=4",
    "evaluate.compare=[]",
    "evaluate.grid_samples=2",
    "data.num_workers=0",
    "data.persistent_workers=false",
    "callbacks=none",
    "trainer.enable_progress_bar=false",
]


def staged_recipe() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- staged-recipe.*?-->\s*```bash\n(.*?)```", text, re.S)
    assert block, "README.md lost its staged-recipe block"
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


def run(argv: list[str], cwd: Path, shared_data: Path):
    exe = Path(sys.executable).parent / argv[0]
    if not exe.exists():
        pytest.skip(f"{argv[0]} is not installed (pip install -e .)")
    env = {**os.environ, "INPAINTZOO_SHARED_DATA": str(shared_data), "PYTHONUNBUFFERED": "1"}
    env.pop("INPAINTZOO_DEBUG", None)
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [str(exe), *argv[1:], *SHRINK], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


@pytest.mark.data
def test_readme_stage_by_stage_recipe(tmp_path, celeba64, nvidia_masks):
    shared = celeba64.parent
    first, second = staged_recipe()
    assert "model.stage=1" in first and any(a.startswith("init_from=") for a in second)

    # the later stage without its predecessor: one clear line, nothing trained
    alone = [a for a in second if not a.startswith("init_from=")]
    proc = run(alone, tmp_path, shared)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "needs a trained edge_generator" in proc.stderr and "init_from" in proc.stderr

    for argv in (first, second):
        proc = run(argv, tmp_path, shared)
        assert proc.returncode == 0, proc.stderr[-3000:]
    stage1 = tmp_path / "outputs/celeba64/edgeconnect_stage1"
    stage3 = tmp_path / "outputs/celeba64/edgeconnect_stage3"
    ckpt1 = torch.load(stage1 / "checkpoints/last.ckpt", weights_only=True)
    ckpt3 = torch.load(stage3 / "checkpoints/last.ckpt", weights_only=True)
    assert ckpt1["inpaintzoo"]["trained_batches"] == {"edge_generator": 4, "edge_discriminator": 4}
    # stage 3 started from stage 1's edge generator and trained the inpainting networks
    assert ckpt3["inpaintzoo"]["init_from"].endswith("edgeconnect_stage1/checkpoints/last.ckpt")
    assert ckpt3["inpaintzoo"]["trained_batches"]["inpaint_generator"] == 4
    g1 = {k: v for k, v in ckpt1["state_dict"].items() if k.startswith("edge_generator.")}
    assert g1 and all(torch.equal(v, ckpt3["state_dict"][k]) for k, v in g1.items())
    notes = " ".join(json.loads((stage3 / "results.json").read_text())["notes"])
    assert "stage 3 (edge-inpaint) only" in notes and "initialised from" in notes
    notes1 = " ".join(json.loads((stage1 / "results.json").read_text())["notes"])
    assert "stage 1 (edge) only" in notes1

    # rerunning the second command resumes its own finished run; it never re-evaluates stage 1
    proc = run(second, tmp_path, shared)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "already complete" in proc.stdout + proc.stderr
