#!/usr/bin/env python
"""Speed ratios of the training speed switches, measured in ONE run, on whatever hardware.

Trains EdgeConnect stage 3 (frozen G1 forward, D2 step, G2 step with adversarial +
hole-normalised L1; VGG losses off: no ImageNet weights offline) through ``pl.Trainer`` under
each switch and prints the median ms per batch and the ratio to fp32:

* ``fp32``           ``trainer.precision=32-true`` (the reference)
* ``bf16-mixed``     ``trainer.precision=bf16-mixed`` (autocast; fp32 master weights)
* ``16-mixed``       ``trainer.precision=16-mixed`` (autocast + grad scaler; GPU only)
* ``channels_last``  ``train.channels_last=true``
* ``compile``        ``train.compile=true`` (``torch.compile`` of the generators, in place)
* ``all``            bf16-mixed + channels_last + compile

A batch's time is the interval between consecutive ``on_train_batch_start`` calls (the whole
loop iteration), synchronised on CUDA; medians after ``--warmup`` batches (compilation happens
in the warm-up). Every switch starts from the same weights and batch. No timed assertions:
these machines are shared, read the load average printed with the numbers.

Usage::

    python benchmarks/speed_switches.py                       # CPU: short (~1-3 min)
    python benchmarks/speed_switches.py --variant small --size 256 --batch-size 8   # on a GPU
    python benchmarks/speed_switches.py --switches fp32 bf16-mixed --steps 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

SWITCHES: dict[str, dict[str, Any]] = {
    "fp32": {"precision": "32-true"},
    "bf16-mixed": {"precision": "bf16-mixed"},
    "16-mixed": {"precision": "16-mixed"},
    "channels_last": {"precision": "32-true", "channels_last": True},
    "compile": {"precision": "32-true", "compile": True},
    "all": {"precision": "bf16-mixed", "channels_last": True, "compile": True},
}
#: EdgeConnect width overrides: tiny = the registered tiny variant, small = in between
VARIANTS: dict[str, dict[str, Any]] = {
    "tiny": {"variant": "tiny"},
    "small": {
        "variant": "tiny",
        "base_channels": 32,
        "num_residual_blocks": 8,
        "disc_channels": 32,
    },
    "full": {"variant": "full"},
}


class _Repeat(Dataset):
    def __init__(self, batch: dict[str, torch.Tensor], length: int) -> None:
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        n = len(self.batch["image"])
        return {k: v[i % n] for k, v in self.batch.items()}


class _Timer(pl.Callback):
    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.starts: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        self.starts.append(time.perf_counter())

    def intervals(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:])]


def make_batch(batch_size: int, size: int) -> dict[str, torch.Tensor]:
    """Embedded photos (centre crops) with seeded free-form masks."""
    import numpy as np

    from inpaintzoo.data import embedded_split, image_to_tensor, read_image
    from inpaintzoo.masks import free_form_mask

    files, _ = embedded_split()
    rng = np.random.default_rng(0)
    images, masks = [], []
    for i in range(batch_size):
        array = read_image(files[i % len(files)])
        h, w = array.shape[:2]
        s = min(h, w)
        crop = image_to_tensor(array[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 :][:, :s])
        images.append(
            torch.nn.functional.interpolate(crop[None], size=(size, size), mode="area")[0]
        )
        masks.append(torch.from_numpy(free_form_mask(size, size, rng))[None].float())
    return {"image": torch.stack(images).clamp(0, 1), "mask": torch.stack(masks)}


def time_switch(
    name: str,
    state: dict[str, torch.Tensor],
    batch: dict[str, torch.Tensor],
    model_kwargs: dict[str, Any],
    steps: int,
    warmup: int,
    accelerator: str,
) -> dict[str, Any]:
    """Median seconds per batch of ``steps`` timed batches under switch ``name``."""
    from inpaintzoo import zoo
    from inpaintzoo.callbacks import BatchBudget

    spec = SWITCHES[name]
    model = zoo.create_model("edgeconnect", stage=3, perceptual_backbone="off", **model_kwargs)
    model.load_state_dict(state)
    model.trained_batches = {"edge_generator": 1}  # timing only: stage 3 runs on any G1
    model.configure_speed(
        channels_last=spec.get("channels_last", False), compile=spec.get("compile", False)
    )
    timer = _Timer(cuda=accelerator == "gpu")
    total = warmup + steps
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=spec["precision"],
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[BatchBudget(total), timer],
    )
    loader = DataLoader(_Repeat(batch, len(batch["image"]) * total), batch_size=len(batch["image"]))
    trainer.fit(model, train_dataloaders=loader)
    times = timer.intervals()[warmup:]
    return {
        "switch": name,
        "median_ms": 1000 * statistics.median(times),
        "min_ms": 1000 * min(times),
        "warmup_ms": [round(1000 * t, 1) for t in timer.intervals()[:warmup]],
        "nonfinite": int(model.nonfinite_total),
    }


def run(
    switches: list[str],
    variant: str = "tiny",
    size: int = 64,
    batch_size: int = 8,
    steps: int | None = None,
    warmup: int | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    from inpaintzoo import zoo

    cuda = torch.cuda.is_available() if device == "auto" else device in ("cuda", "gpu")
    accelerator = "gpu" if cuda else "cpu"
    steps = steps if steps is not None else (20 if cuda else 4)
    warmup = warmup if warmup is not None else 3
    if not cuda and "16-mixed" in switches:
        switches = [s for s in switches if s != "16-mixed"]  # fp16 autocast+scaler: GPU only
    if cuda:
        torch.backends.cudnn.benchmark = True
    pl.seed_everything(0, verbose=False)
    model_kwargs = VARIANTS[variant]
    reference = zoo.create_model("edgeconnect", stage=3, perceptual_backbone="off", **model_kwargs)
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    batch = make_batch(batch_size, size)
    results = []
    for name in switches:
        try:
            results.append(
                time_switch(name, state, batch, model_kwargs, steps, warmup, accelerator)
            )
        except Exception as err:  # e.g. no C++ compiler for inductor: report, go on
            results.append({"switch": name, "error": f"{type(err).__name__}: {err}"[:300]})
    base = next(
        (r["median_ms"] for r in results if r["switch"] == "fp32" and "median_ms" in r), None
    )
    for r in results:
        if base and "median_ms" in r:
            r["speedup_vs_fp32"] = base / r["median_ms"]
    return {
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
        "accelerator": accelerator,
        "torch": torch.__version__,
        "variant": variant,
        "size": size,
        "batch_size": batch_size,
        "steps": steps,
        "warmup": warmup,
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "results": results,
    }


def print_report(report: dict[str, Any]) -> None:
    print(
        f"EdgeConnect stage 3, {report['variant']} widths, {report['size']} px, batch "
        f"{report['batch_size']} on {report['accelerator']} ({report['device']}), torch "
        f"{report['torch']}; {report['steps']} timed batches after {report['warmup']} warm-up; "
        f"load average {report['load_average']}"
    )
    print(f"{'switch':<15}{'ms/batch':>10}{'min ms':>10}{'speed vs fp32':>15}")
    for r in report["results"]:
        if "error" in r:
            print(f"{r['switch']:<15}  failed: {r['error']}")
            continue
        ratio = r.get("speedup_vs_fp32")
        ratio_text = f"{ratio:.2f}x" if ratio else "-"
        print(f"{r['switch']:<15}{r['median_ms']:>10.1f}{r['min_ms']:>10.1f}{ratio_text:>15}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switches", nargs="+", default=list(SWITCHES), choices=list(SWITCHES))
    parser.add_argument("--variant", default="tiny", choices=list(VARIANTS))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=None, help="timed batches (4 CPU, 20 GPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed batches (3)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning_fabric").setLevel(logging.ERROR)
    logging.getLogger("inpaintzoo").setLevel(logging.ERROR)
    report = run(
        args.switches,
        args.variant,
        args.size,
        args.batch_size,
        args.steps,
        args.warmup,
        args.device,
    )
    print_report(report)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
