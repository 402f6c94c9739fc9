#!/usr/bin/env python
"""Speed ratios of inpaintzoo's training path, measured in ONE run (``make bench``).

(a) **Lightning overhead**: EdgeConnect stage 3 (inpaint on predicted edges: frozen G1 forward,
    D2 step, G2 step with adversarial + hole-normalised L1) trained by ``pl.Trainer`` versus a
    bare PyTorch loop doing the same work (same nets, copied state dict; two
    ``torch.optim.Adam`` with the same lr / betas; gray + Canny edges computed on both sides as
    ``EdgeConnect.prepare_batch`` does). Prints median ms per batch and the ratio
    lightning / bare (goal <= 1.05). The VGG losses (perceptual, style) are OFF on both sides:
    ImageNet weights cannot be downloaded here.

    Lightning side: the time between consecutive ``on_train_batch_start`` calls (the whole
    training-loop iteration: fetching the batch from an in-memory dataset, hooks, the module's
    step, logging, callbacks), plus, for information, the time inside the step
    (``on_train_batch_start`` -> ``on_train_batch_end``). Bare side: the time of one call of
    the plain step on a batch already in memory. The two sides are interleaved batch by batch
    in one run (after each Lightning batch a callback runs one bare step, whose time is
    subtracted from that Lightning interval), so both see the same machine load, caches and
    CPU clock; medians after warm-up. Parity: the first (untimed) batch of each side starts
    from the same weights and batch, and their D and G losses are compared, so the two sides
    provably do the same work.

(b) **Data-loader throughput**: ``InpaintDataModule`` over the embedded photos at 256 px,
    free-form masks, batch 16, 2 workers; images per second after warm-up (goal >= 500). Edges
    are not computed in the workers (methods compute them on the accelerator). When the goal
    is missed, a single-process breakdown of one item (resize/crop, mask, tensor conversion,
    collate) says where the time goes.

No timed assertions: this script prints numbers (and ``--json PATH`` saves them); the
pass/fail markers are information, not a test. These machines are noisy and shared: read the
load average printed with the results.

Usage::

    python benchmarks/train_step.py                 # everything (~5 min on 2 idle CPU cores)
    python benchmarks/train_step.py --quick         # shorter: tiny variant only (~1 min)
    python benchmarks/train_step.py --sizes 64 --variant tiny --steps 20 --batch-size 8
    python benchmarks/train_step.py --skip-loader --json bench.json
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from inpaintzoo import zoo  # noqa: E402
from inpaintzoo.callbacks import BatchBudget  # noqa: E402
from inpaintzoo.data import embedded_split, image_to_tensor, read_image  # noqa: E402
from inpaintzoo.losses import hole_normalized_l1  # noqa: E402
from inpaintzoo.masks import free_form_mask  # noqa: E402
from inpaintzoo.nets.edgeconnect import build_edgeconnect_nets  # noqa: E402
from inpaintzoo.structure import canny_edges, rgb_to_gray  # noqa: E402

RATIO_GOAL = 1.05
LOADER_GOAL = 500.0  # images / s
VGG_NOTE = (
    "VGG-based losses (perceptual 0.1, style 250) are OFF on both sides: no ImageNet weights "
    "offline; the step is adversarial + hole-normalised L1 only."
)

# Not a terminal (make bench | tee, CI logs): wide enough that the table is not truncated.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)


# --------------------------------------------------------------------------- helpers
def canny_sigma_for(size: int) -> float:
    """EdgeConnect's Canny sigma: 2 at 256 px, about 1 at 64 px (a data setting)."""
    return 2.0 if size >= 192 else (1.5 if size >= 96 else 1.0)


def fixed_batch(size: int, batch_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Centre crops of embedded training photos (area-resized) + seeded free-form masks."""
    train_files, _ = embedded_split()
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for i in range(batch_size):
        array = read_image(train_files[i % len(train_files)])
        h, w = array.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        crop = image_to_tensor(array[top : top + s, left : left + s])[None]
        crop = torch.nn.functional.interpolate(crop, size=(size, size), mode="area")[0]
        images.append(crop.clamp(0, 1))
        mask = free_form_mask(size, size, rng)
        while not 0.1 <= float(mask.mean()) <= 0.5:
            mask = free_form_mask(size, size, rng)
        masks.append(torch.from_numpy(mask)[None])
    return {"image": torch.stack(images).contiguous(), "mask": torch.stack(masks).float()}


class RepeatBatch(Dataset):
    """The same ``batch`` served ``num_batches`` times (an in-memory dataset, one epoch)."""

    def __init__(self, batch: dict[str, torch.Tensor], num_batches: int) -> None:
        self.batch = batch
        self.batch_size = len(batch["image"])
        self.num_batches = int(num_batches)

    def __len__(self) -> int:
        return self.batch_size * self.num_batches

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        i = index % self.batch_size
        return {k: v[i] for k, v in self.batch.items()}


def clocks() -> tuple[float, float]:
    """(wall, process CPU) seconds."""
    return time.perf_counter(), time.process_time()


class InterleavedTimer(pl.Callback):
    """Times the Lightning loop and, after each Lightning batch, runs and times one bare step.

    Wall (perf_counter) and CPU (process_time) clocks are read at every
    ``on_train_batch_start`` / ``on_train_batch_end``. In ``on_train_batch_end`` one bare
    iteration runs on the same batch (a plain function call, no Lightning involved) and its
    duration is recorded, then subtracted from that Lightning loop interval. Alternating batch
    by batch, both sides see the same machine load, caches and CPU clock.
    """

    def __init__(self, bare: BareStage3 | None = None, batch=None) -> None:
        self.bare = bare
        self.batch = batch
        self.starts: list[tuple[float, float]] = []
        self.ends: list[tuple[float, float]] = []
        self.bare_times: list[tuple[float, float]] = []
        self.first_bare_losses: dict[str, float] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.starts.append(clocks())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.ends.append(clocks())
        if self.bare is not None:
            before = clocks()
            losses = self.bare.step(self.batch["image"], self.batch["mask"])
            after = clocks()
            self.bare_times.append((after[0] - before[0], after[1] - before[1]))
            if not self.first_bare_losses:
                self.first_bare_losses = {k: float(v) for k, v in losses.items()}

    def lightning_loop(self) -> list[tuple[float, float]]:
        """Start-to-start intervals of the Lightning loop, less the bare step run in between."""
        loop = intervals(self.starts, self.starts[1:])
        if self.bare is None:
            return loop
        return [(w - bw, c - bc) for (w, c), (bw, bc) in zip(loop, self.bare_times)]

    def lightning_in_step(self) -> list[tuple[float, float]]:
        return intervals(self.starts, self.ends)


def quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # The module warns at every fit that the VGG losses are off: said once by this script.
    logging.getLogger("inpaintzoo").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*num_workers.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="pytorch_lightning")
    warnings.filterwarnings("ignore", message=".*treespec.*")


def make_trainer(budget: int, timer: InterleavedTimer | None = None) -> pl.Trainer:
    callbacks: list[pl.Callback] = [BatchBudget(budget)]
    if timer is not None:
        callbacks.append(timer)
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )


def interleaved_run(model, bare: BareStage3, batch: dict[str, torch.Tensor], n: int):
    """One ``pl.Trainer`` fit of ``n`` batches on the repeated ``batch``, with one bare step
    after each Lightning batch. Returns the timer."""
    timer = InterleavedTimer(bare, batch)
    trainer = make_trainer(model.batches_seen + n, timer)
    loader = DataLoader(
        RepeatBatch(batch, n + 2), batch_size=len(batch["image"]), shuffle=False, num_workers=0
    )
    trainer.fit(model, train_dataloaders=loader)
    return timer


class BareStage3:
    """EdgeConnect stage 3 written as a plain PyTorch loop (the reference for the ratio)."""

    def __init__(self, model) -> None:
        nets = build_edgeconnect_nets(model.variant, init=False)
        self.g1 = nets["edge_generator"]
        self.g2 = nets["inpaint_generator"]
        self.d2 = nets["inpaint_discriminator"]
        self.g1.load_state_dict(model.edge_generator.state_dict())
        self.g2.load_state_dict(model.inpaint_generator.state_dict())
        self.d2.load_state_dict(model.inpaint_discriminator.state_dict())
        self.g1.eval()  # frozen in stage 3
        self.g2.train()
        self.d2.train()
        for p in self.g1.parameters():
            p.requires_grad_(True)  # as in the module: frozen by no_grad, not by flags
        self.sigma = model.canny_sigma
        self.w_adv = model.weights["adversarial"]
        self.w_l1 = model.weights["l1"]
        self.adv = copy.deepcopy(model.adversarial_loss)
        self.opt_g = torch.optim.Adam(self.g2.parameters(), lr=model.lr, betas=model.betas)
        self.opt_d = torch.optim.Adam(
            self.d2.parameters(), lr=model.lr * model.d2g_lr, betas=model.betas
        )

    def step(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
        gray = rgb_to_gray(image)
        edge = canny_edges(gray, sigma=self.sigma)
        with torch.no_grad():
            pred_edge = self.g1(torch.cat([gray * (1 - mask) + mask, edge * (1 - mask), mask], 1))
        edge_in = (pred_edge * mask + edge * (1 - mask)).detach()
        out = self.g2(torch.cat([image * (1 - mask) + mask, edge_in], 1))
        real_logits, _ = self.d2(image)
        fake_logits, _ = self.d2(out.detach())
        d_loss = (self.adv(real_logits, True) + self.adv(fake_logits, False)) / 2
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        g_logits, _ = self.d2(out)
        adv = self.adv(g_logits, True, for_discriminator=False)
        l1 = hole_normalized_l1(out, image, mask)
        g_loss = self.w_adv * adv + self.w_l1 * l1
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return {"inpaint_d": d_loss.detach(), "inpaint_g": g_loss.detach()}


def intervals(first: list[tuple], second: list[tuple]) -> list[tuple[float, float]]:
    """Pairwise (wall, CPU) differences ``second[i] - first[i]``."""
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(first, second)]


def record_first_losses(model) -> list[dict[str, float]]:
    """Record the losses of the model's first training batch, then get out of the way (the
    instance attribute is removed, so later batches call the class method directly)."""
    seen: list[dict[str, float]] = []
    original = model.training_batch

    def first(b):
        del model.training_batch
        logs = original(b)
        seen.append({k: float(v.detach()) for k, v in logs.items()})
        return logs

    model.training_batch = first
    return seen


def compare_losses(lightning: dict[str, float], bare: dict[str, float]) -> dict[str, Any]:
    """Parity of the first batch: both sides start from the same weights and batch."""
    diffs = {k: abs(lightning[k] - bare[k]) for k in bare}
    return {
        "lightning": {k: lightning[k] for k in bare},
        "bare": bare,
        "max_abs_diff": max(diffs.values()),
        "same": all(d <= 1e-4 * max(1.0, abs(bare[k])) for k, d in diffs.items()),
    }


def summary(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
    return {"median": statistics.median(values), "p25": q[0], "p75": q[2], "n": len(values)}


def spread(stats: dict[str, float]) -> float:
    """Inter-quartile range relative to the median."""
    return (stats["p75"] - stats["p25"]) / stats["median"]


def bench_step(size: int, variant: str, batch_size: int, steps: int, warmup: int):
    """Lightning vs bare for one configuration; ``steps`` timed batches per side."""
    torch.manual_seed(0)
    batch = fixed_batch(size, batch_size)
    model = zoo.create_model(
        "edgeconnect",
        variant=variant,
        stage=3,
        perceptual_backbone="off",
        canny_sigma=canny_sigma_for(size),
    )
    model.trained_batches = {"edge_generator": 1}  # timing only: stage 3 runs on any G1
    bare = BareStage3(model)  # a copy of the weights before any training
    first_lightning = record_first_losses(model)
    # `warmup` untimed batches per side (first-call allocations, Adam state); one more
    # Lightning batch closes the last start-to-start interval.
    timer = interleaved_run(model, bare, batch, steps + warmup + 1)
    parity = compare_losses(first_lightning[0], timer.first_bare_losses)
    lit_loop = timer.lightning_loop()[warmup : warmup + steps]
    lit_step = timer.lightning_in_step()[warmup : warmup + steps]
    ref = timer.bare_times[warmup : warmup + steps]
    stats = {
        "lightning_s": summary([w for w, _ in lit_loop]),
        "lightning_in_step_s": summary([w for w, _ in lit_step]),
        "bare_s": summary([w for w, _ in ref]),
        "lightning_cpu_s": summary([c for _, c in lit_loop]),
        "bare_cpu_s": summary([c for _, c in ref]),
    }
    ratio = stats["lightning_s"]["median"] / stats["bare_s"]["median"]
    # Paired ratios (batch i of each side ran back to back): robust to slow drifts of load.
    paired = [lw / bw for (lw, _), (bw, _) in zip(lit_loop, ref)]
    noisy = max(spread(stats["lightning_s"]), spread(stats["bare_s"])) > 0.15
    return {
        "size": size,
        "variant": variant,
        "batch_size": batch_size,
        "canny_sigma": canny_sigma_for(size),
        **stats,
        "overhead_ms": 1e3 * (stats["lightning_s"]["median"] - stats["bare_s"]["median"]),
        "ratio": ratio,
        "ratio_paired_median": statistics.median(paired),
        "ratio_in_step": stats["lightning_in_step_s"]["median"] / stats["bare_s"]["median"],
        "ratio_cpu": stats["lightning_cpu_s"]["median"] / stats["bare_cpu_s"]["median"],
        "goal": RATIO_GOAL,
        "pass": ratio <= RATIO_GOAL,
        "noisy": noisy,
        "parity": parity,
    }


# --------------------------------------------------------------------------- loader
def loader_module(size: int, batch_size: int, num_workers: int, num_batches: int):
    from inpaintzoo.data import InpaintDataModule

    return InpaintDataModule(
        train={
            "source": "embedded",
            "split": "train",
            "size": size,
            "samples_per_epoch": batch_size * num_batches,
            "mask": {"kind": "free_form"},
        },
        batch_size=batch_size,
        num_workers=num_workers,
    )


def bench_loader(size: int, batch_size: int, num_workers: int, batches: int, warmup: int):
    """Images per second from the train loader after ``warmup`` batches (workers started,
    photos decoded into each worker's cache)."""
    dm = loader_module(size, batch_size, num_workers, warmup + batches + 4)
    loader = dm.train_dataloader()
    it = iter(loader)
    t0 = time.perf_counter()
    for _ in range(warmup):
        next(it)
    t_warm = time.perf_counter() - t0
    start = time.perf_counter()
    images = 0
    for _ in range(batches):
        images += len(next(it)["image"])
    elapsed = time.perf_counter() - start
    del it
    rate = images / elapsed
    return {
        "size": size,
        "batch_size": batch_size,
        "num_workers": num_workers,
        "batches": batches,
        "warmup_batches": warmup,
        "warmup_s": t_warm,
        "images_per_s": rate,
        "goal": LOADER_GOAL,
        "pass": rate >= LOADER_GOAL,
    }


def profile_loader(size: int, batch_size: int, items: int) -> dict[str, Any]:
    """Single-process breakdown of one training item (the same calls as
    ``InpaintDataset.__getitem__``, on the images as the dataset caches them), with 1 torch
    thread, as in a worker."""
    from torch.utils.data import default_collate

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dm = loader_module(size, batch_size, 0, max(items // batch_size, 2))
        ds = dm.dataset("train")
        n_files = len(ds.files)
        shapes = {}
        t = time.perf_counter()
        for f in ds.files:
            shapes[f.name] = list(read_image(f).shape[:2])
        decode_ms = (time.perf_counter() - t) / n_files * 1e3
        t = time.perf_counter()
        cached = [ds._image(i) for i in range(n_files)]  # what a worker keeps (once per file)
        cache_ms = (time.perf_counter() - t) / n_files * 1e3
        rng = np.random.default_rng(0)
        timings = {"resize_crop_flip": 0.0, "mask": 0.0, "to_tensor": 0.0}
        t_total = time.perf_counter()
        for i in range(items):
            t = time.perf_counter()
            ds.transform.set_random_seed(i)
            out = ds.transform(image=cached[i % n_files])["image"]
            t2 = time.perf_counter()
            mask = ds.mask_source(i, size, size, rng)
            t3 = time.perf_counter()
            image_to_tensor(out)
            torch.from_numpy(np.ascontiguousarray(mask))[None]
            t4 = time.perf_counter()
            timings["resize_crop_flip"] += t2 - t
            timings["mask"] += t3 - t2
            timings["to_tensor"] += t4 - t3
        parts_s = time.perf_counter() - t_total
        t = time.perf_counter()
        samples = [ds[i] for i in range(items)]
        getitem_ms = (time.perf_counter() - t) / items * 1e3
        t = time.perf_counter()
        n_batches = 0
        for k in range(0, items - batch_size + 1, batch_size):
            default_collate(samples[k : k + batch_size])
            n_batches += 1
        collate_ms = (time.perf_counter() - t) / max(n_batches, 1) / batch_size * 1e3
        per_file = {}
        for i, f in enumerate(ds.files):
            t = time.perf_counter()
            for k in range(5):
                ds.transform.set_random_seed(k)
                ds.transform(image=cached[i])
            per_file[f.name] = {
                "file_shape": shapes[f.name],
                "cached_shape": list(cached[i].shape[:2]),
                "transform_ms": (time.perf_counter() - t) / 5 * 1e3,
            }
        per_item = {k: v / items * 1e3 for k, v in timings.items()}
        per_item["other_getitem_overhead"] = max(0.0, getitem_ms - parts_s / items * 1e3)
        per_item["collate_per_image"] = collate_ms
        return {
            "items": items,
            "decode_ms_per_file": decode_ms,
            "cache_fill_ms_per_file_once": cache_ms,
            "getitem_ms": getitem_ms,
            "per_item_ms": per_item,
            "per_file_transform_ms": per_file,
            "single_worker_images_per_s": 1e3 / (getitem_ms + collate_ms),
        }
    finally:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- output
def mark(ok: bool) -> str:
    return "[green]PASS[/green]" if ok else "[red]MISS[/red]"


def print_step_table(results: list[dict[str, Any]]) -> None:
    table = Table(title="EdgeConnect stage 3 training step: Lightning vs bare PyTorch (CPU)")
    right = {"justify": "right"}
    for col, kw in [
        ("size", right),
        ("variant", {}),
        ("batch", right),
        ("lightning ms/batch", right),
        ("in step", right),
        ("bare ms/batch", right),
        ("overhead ms", right),
        ("ratio", right),
        ("paired", right),
        ("CPU-time ratio", right),
        ("goal", right),
        ("", {}),
        ("same losses", {"justify": "center"}),
    ]:
        table.add_column(col, **kw)

    def ms(stats: dict[str, float]) -> str:
        return (
            f"{stats['median'] * 1e3:.1f} "
            f"[dim]({stats['p25'] * 1e3:.0f}-{stats['p75'] * 1e3:.0f})[/dim]"
        )

    for r in results:
        parity = r["parity"]
        table.add_row(
            f"{r['size']}",
            r["variant"],
            f"{r['batch_size']}",
            ms(r["lightning_s"]),
            f"{r['lightning_in_step_s']['median'] * 1e3:.1f}",
            ms(r["bare_s"]),
            f"{r['overhead_ms']:+.1f}",
            f"[bold]{r['ratio']:.3f}[/bold]",
            f"{r['ratio_paired_median']:.3f}",
            f"{r['ratio_cpu']:.3f}",
            f"<= {r['goal']:.2f}",
            mark(r["pass"]) + (" [yellow]noisy[/yellow]" if r["noisy"] else ""),
            "yes" if parity["same"] else f"[red]no ({parity['max_abs_diff']:.2g})[/red]",
        )
    console.print(table)
    console.print(
        "Medians over the timed batches, (p25-p75) in brackets. 'lightning' = one whole "
        "training-loop iteration (batch fetch, hooks, step, logging); 'in step' = "
        "on_train_batch_start -> on_train_batch_end; 'bare' = one plain step (the two sides "
        "alternate batch by batch); ratio = lightning / bare (wall-clock medians); paired = "
        "median of the per-batch ratios of back-to-back batches; CPU-time ratio = the medians of "
        "process CPU time (steadier on a shared machine with --threads 1). 'noisy': an "
        "inter-quartile range over "
        "15 % of the median - rerun on a quieter machine. 'same losses': one batch from the same "
        "weights gives the same D and G losses on both sides."
    )
    console.print(VGG_NOTE)


def print_loader(result: dict[str, Any], profile: dict[str, Any] | None) -> None:
    console.print(
        f"\n[bold]Data loader[/bold] (embedded photos, {result['size']} px, free-form masks, "
        f"batch {result['batch_size']}, {result['num_workers']} workers, "
        f"{result['batches']} batches after {result['warmup_batches']} warm-up): "
        f"[bold]{result['images_per_s']:.0f} img/s[/bold] (goal >= {result['goal']:.0f}) "
        f"{mark(result['pass'])}"
    )
    if profile is None:
        return
    table = Table(
        title=f"Where one training item's time goes (1 process, 1 thread, {profile['items']} items)"
    )
    table.add_column("part")
    table.add_column("ms / image", justify="right")
    table.add_column("share", justify="right")
    total = profile["getitem_ms"] + profile["per_item_ms"]["collate_per_image"]
    labels = {
        "resize_crop_flip": "albumentations: shortest-side resize + crop + flip",
        "mask": "free-form mask generation",
        "to_tensor": "uint8 HWC -> float CHW tensor (image + mask)",
        "other_getitem_overhead": "rest of __getitem__ (seeding, checks, dict)",
        "collate_per_image": "default_collate (per image)",
    }
    for key, label in labels.items():
        ms = profile["per_item_ms"][key]
        table.add_row(label, f"{ms:.2f}", f"{100 * ms / total:.0f} %")
    table.add_row("[bold]total[/bold]", f"[bold]{total:.2f}[/bold]", "100 %")
    console.print(table)
    slow = sorted(profile["per_file_transform_ms"].items(), key=lambda kv: -kv[1]["transform_ms"])
    console.print(
        "slowest transforms by file (file -> cached size): "
        + ", ".join(
            f"{name} {v['file_shape'][0]}x{v['file_shape'][1]} -> "
            f"{v['cached_shape'][0]}x{v['cached_shape'][1]}: {v['transform_ms']:.1f} ms"
            for name, v in slow[:4]
        )
    )
    console.print(
        f"paid once per file per worker: decode {profile['decode_ms_per_file']:.1f} ms, cache "
        f"fill (decode + any pre-shrink) {profile['cache_fill_ms_per_file_once']:.1f} ms; "
        f"one worker alone: {profile['single_worker_images_per_s']:.0f} img/s"
    )


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="tiny variant only, fewer steps / batches (~1 min)"
    )
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 256], help="image sizes (px)")
    p.add_argument(
        "--variant",
        nargs="+",
        choices=["tiny", "full"],
        default=None,
        help="EdgeConnect variants (default: tiny and full at <= 128 px, full above; "
        "--quick: tiny only)",
    )
    p.add_argument("--steps", type=int, default=None, help="timed batches per side")
    p.add_argument("--warmup", type=int, default=1, help="untimed first batches per side")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="batch size (default: 8 up to 128 px; above, 2 for full and 4 for tiny)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--skip-step", action="store_true", help="skip the Lightning/bare ratio")
    p.add_argument("--skip-loader", action="store_true", help="skip the data-loader benchmark")
    p.add_argument("--loader-batches", type=int, default=None, help="timed loader batches")
    p.add_argument("--loader-workers", type=int, default=2)
    p.add_argument("--profile-loader", action="store_true", help="always print the breakdown")
    p.add_argument("--json", type=Path, default=None, help="save the numbers to this file")
    return p.parse_args(argv)


def plan(args: argparse.Namespace) -> list[tuple[int, str, int, int]]:
    """(size, variant, batch, steps) per configuration."""
    configs = []
    for size in args.sizes:
        small = size <= 128
        if args.variant:
            variants = args.variant
        elif args.quick:
            variants = ["tiny"]
        else:
            variants = ["tiny", "full"] if small else ["full"]
        for variant in variants:
            heavy = variant == "full" and not small
            batch = args.batch_size or (8 if small else (2 if variant == "full" else 4))
            if args.steps:
                steps = args.steps
            elif args.quick:
                steps = 4 if heavy else (6 if variant == "full" or not small else 16)
            else:
                steps = 4 if heavy else (14 if variant == "full" else 40)
            configs.append((size, variant, batch, steps))
    return configs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_lightning()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    meta = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "lightning": pl.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": list(load),
        "notes": [VGG_NOTE],
    }
    console.print(
        f"[bold]inpaintzoo benchmarks[/bold] - {meta['date']}, {meta['machine']}, torch "
        f"{meta['torch']} ({meta['torch_threads']} threads), Lightning {meta['lightning']}; "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
        + (
            " [yellow](the machine is busy: expect noisy numbers)[/yellow]"
            if load[0] > (os.cpu_count() or 1) * 0.5
            else ""
        )
    )
    out: dict[str, Any] = {"meta": meta, "train_step": [], "loader": None, "loader_profile": None}

    if not args.skip_step:
        for size, variant, batch, steps in plan(args):
            console.print(
                f"  timing {variant} at {size} px, batch {batch}: {steps} batches per side, "
                "interleaved batch by batch ...",
                style="dim",
            )
            result = bench_step(size, variant, batch, steps, args.warmup)
            out["train_step"].append(result)
        print_step_table(out["train_step"])

    if not args.skip_loader:
        batches = args.loader_batches or (80 if args.quick else 300)
        warm = 10 if args.quick else 20
        console.print(
            f"  loading {batches} batches of 16 at 256 px with {args.loader_workers} workers ...",
            style="dim",
        )
        out["loader"] = bench_loader(256, 16, args.loader_workers, batches, warm)
        if args.profile_loader or not out["loader"]["pass"]:
            out["loader_profile"] = profile_loader(256, 16, 96 if args.quick else 192)
        print_loader(out["loader"], out["loader_profile"])

    out["meta"]["elapsed_s"] = time.perf_counter() - started
    console.print(f"\ndone in {out['meta']['elapsed_s']:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        console.print(f"numbers saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
