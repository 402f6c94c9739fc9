#!/usr/bin/env python
"""Evaluation runner throughput vs the bare model forward, full-size EdgeConnect.

Prints images/s of

* **bare**: ``model.inpaint(image, mask)`` under ``torch.no_grad()`` on batches already in
  memory on the device (the network's own cost: G1 edges + G2 inpainting, composite);
* **runner**: :func:`inpaintzoo.evaluation.evaluate` on the *same* protocol items with the same
  batch size: data loading, the predictor (checks, padding), the metrics (PSNR, SSIM in two
  variants, L1; LPIPS/FID off unless ``--lpips random``), per-sample bookkeeping;

and the ratio runner / bare (goal >= 0.8). The two sides are interleaved ``--repeats`` times
and the medians compared, so both see the same machine load. No assertion: information only.
The VGG losses are switched off when building the model (training-only; inference is
unaffected). Weights are random: speed does not depend on them.

Usage::

    python benchmarks/eval_throughput.py                         # full EdgeConnect, 256 px
    python benchmarks/eval_throughput.py --size 64 --num-samples 16 --batch-size 8 \\
        --variant tiny --repeats 1                               # a quick check (~1 min on CPU)
    python benchmarks/eval_throughput.py --device cuda --num-samples 256 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_images_per_second(model, batches, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    count = 0
    with torch.no_grad():
        for image, mask in batches:
            out = model.inpaint(image.to(device), mask.to(device))
            out["composite"].float().cpu()  # the runner also brings the composite back
            count += len(image)
    _sync(device)
    return count / (time.perf_counter() - start)


def runner_images_per_second(predictor, protocol, dataset, manifest, args) -> float:
    from inpaintzoo.evaluation import evaluate

    _sync(predictor.device)
    start = time.perf_counter()
    result = evaluate(
        predictor,
        protocol,
        dataset=dataset,
        manifest=manifest,
        batch_size=args.batch_size,
        keep_samples=0,
        lpips=args.lpips,
        fid=False,
        num_workers=args.workers,
    )
    _sync(predictor.device)
    return result["runtime"]["num_samples"] / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="full", choices=["full", "tiny"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--num-samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="runner DataLoader workers")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--lpips", default="off", choices=["off", "random"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also save the numbers here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from inpaintzoo import zoo
    from inpaintzoo.evaluation import EvalProtocol, protocol_manifest
    from inpaintzoo.evaluation.protocol import collate
    from inpaintzoo.predictor import Predictor

    device = torch.device(args.device)
    model = zoo.create_model(
        "edgeconnect", variant=args.variant, perceptual_weight=0.0, style_weight=0.0
    )
    model.to(device).eval()
    predictor = Predictor(model, device=device)
    protocol = EvalProtocol(name="smoke", size=args.size, num_samples=args.num_samples)
    dataset = protocol.dataset()
    manifest = protocol_manifest(protocol, dataset)
    batches = []
    for start in range(0, len(dataset), args.batch_size):
        items = [dataset[i] for i in range(start, min(start + args.batch_size, len(dataset)))]
        batch = collate(items)
        batches.append((batch["image"], batch["mask"]))

    # warm-up (cuDNN autotune, allocator, lazy imports), untimed
    bare_images_per_second(model, batches[:1], device)
    runner_images_per_second(predictor, protocol, dataset, manifest, args)

    bare, runner = [], []
    for _ in range(args.repeats):
        bare.append(bare_images_per_second(model, batches, device))
        runner.append(runner_images_per_second(predictor, protocol, dataset, manifest, args))
    bare_median, runner_median = statistics.median(bare), statistics.median(runner)
    ratio = runner_median / bare_median
    numbers = {
        "variant": args.variant,
        "params": model.num_parameters()
        if callable(getattr(model, "num_parameters", None))
        else None,
        "size": args.size,
        "num_samples": args.num_samples,
        "batch_size": args.batch_size,
        "device": str(device),
        "hardware": torch.cuda.get_device_name(0)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "bare_images_per_second": bare,
        "runner_images_per_second": runner,
        "ratio": ratio,
    }
    print(
        f"EdgeConnect ({args.variant}, {numbers['params']} params) at {args.size} px, "
        f"{args.num_samples} images, batch {args.batch_size}, {device} "
        f"({numbers['hardware']}, {numbers['threads']} threads, load {numbers['loadavg']})"
    )
    print(f"  bare forward : {bare_median:8.2f} img/s  (runs: {[round(v, 2) for v in bare]})")
    print(f"  eval runner  : {runner_median:8.2f} img/s  (runs: {[round(v, 2) for v in runner]})")
    mark = "ok" if ratio >= 0.8 else "below goal"
    print(f"  ratio runner / bare = {ratio:.3f}  (goal >= 0.8: {mark})")
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2) + "\n")
    return numbers


if __name__ == "__main__":
    main()
