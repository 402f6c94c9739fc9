"""Run one method over a protocol and produce a schema-v1 results dict (docs/CONTRACTS.md).

Resumable: with ``cache_dir`` every evaluated batch's per-sample results (metric values, hole
ratios, FID features when on, timing) are saved atomically as one chunk file under
``cache_dir/<pairs sha[:16]>/<method key>/``. A killed run started again loads the chunks, skips
their samples and evaluates only the rest; the summary is computed from all per-sample values
ordered by sample index, so it is identical to an uninterrupted run (for deterministic methods).
The method key hashes the method name, its checkpoint's SHA-256 (or its weights when in memory),
the predictor settings and the metric settings, so a different checkpoint never reuses a cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from inpaintzoo.evaluation.protocol import (
    EvalProtocol,
    PairsManifest,
    collate,
    pairs_hash,
    protocol_manifest,
)
from inpaintzoo.predictor import Predictor
from inpaintzoo.utils.io import atomic_save_torch, atomic_write_text, sha256_file

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
LPIPS_MODES = ("imagenet", "random", "off")


def environment_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Library versions and hardware, recorded in every results file."""
    import inpaintzoo

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "inpaintzoo": inpaintzoo.__version__,
        "platform": platform.platform(),
        "hardware": platform.processor() or platform.machine(),
        "device": str(device),
        "cpu_threads": torch.get_num_threads(),
    }
    from importlib.metadata import PackageNotFoundError, version

    packages = (
        "pytorch-lightning",
        "torchmetrics",
        "kornia",
        "lpips",
        "torch-fidelity",
        "opencv-python-headless",
        "numpy",
        "pypatchmatch",
    )
    for package in packages:
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            pass
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["hardware"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


class EvaluationResult(dict):
    """A results dict with the per-sample outputs kept aside for grids (not serialised)."""

    samples: dict[str, torch.Tensor]
    per_sample: list[dict[str, Any]]


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def method_key(predictor: Predictor, checkpoint: str | Path | None, settings: dict) -> str:
    """SHA-256 (hex, 16 chars) of what determines a method's per-sample results."""
    digest = hashlib.sha256()
    digest.update(predictor.name.encode())
    digest.update(repr(getattr(predictor.model, "extra_repr", lambda: "")()).encode())
    if checkpoint:
        digest.update(sha256_file(checkpoint).encode())
    elif predictor.learned:  # in-memory weights (end-of-training evaluation)
        for name, tensor in sorted(predictor.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _lpips_metrics(mode: str, device: torch.device) -> tuple[dict[str, Any], dict[str, str]]:
    """``({key: LPIPSMetric}, {key: na_reason})`` for alex and vgg."""
    from inpaintzoo.metrics import LPIPS_NETS, LPIPSMetric, lpips_availability

    if mode not in LPIPS_MODES:
        raise ValueError(f"lpips must be one of {', '.join(LPIPS_MODES)}, got {mode!r}")
    metrics: dict[str, Any] = {}
    na: dict[str, str] = {}
    for net in LPIPS_NETS:
        key = f"lpips_{net}"
        if mode == "off":
            na[key] = "LPIPS switched off (evaluate lpips=off)"
            continue
        if mode == "imagenet":
            ok, reason = lpips_availability(net)
            if not ok:
                na[key] = reason
                continue
        metrics[key] = LPIPSMetric(net, weights=mode).to(device)
    return metrics, na


def _resize_flags(predictor: Predictor, size: int) -> list[str]:
    flags = []
    if predictor.min_size > size:
        flags.append(
            f"{predictor.name} needs at least {predictor.min_size} px: the {size} px protocol "
            f"images were resized up to {predictor.min_size} px (bilinear) and the output back "
            "down (the predictor's resize strategy); not a native-resolution result"
        )
    elif predictor.learned and size % max(1, predictor.size_multiple):
        flags.append(
            f"{size} px is not a multiple of {predictor.size_multiple}: images were padded "
            "(reflect) and cropped back"
        )
    return flags


def _save_png(tensor: torch.Tensor, path: Path) -> None:
    from PIL import Image

    array = (tensor.clamp(0, 1) * 255).round().byte()
    if array.shape[0] == 1:
        array = array.expand(3, -1, -1)
    image = Image.fromarray(array.permute(1, 2, 0).cpu().numpy())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG")
    tmp.replace(path)


def grid_indices(manifest: PairsManifest, per_bin: int) -> list[int]:
    """The first ``per_bin`` sample indices of every hole-ratio bin (the same for every method:
    the samples the leaderboard's visual grid shows)."""
    chosen: dict[str, list[int]] = {}
    for record in manifest.records:
        if record["bin"] is None:
            continue
        group = chosen.setdefault(record["bin"], [])
        if len(group) < per_bin:
            group.append(record["index"])
    return sorted(i for group in chosen.values() for i in group)


def evaluate(
    predictor: Predictor,
    protocol: EvalProtocol,
    *,
    label: str | None = None,
    kind: str | None = None,
    checkpoint: str | Path | None = None,
    notes: list[str] | None = None,
    batch_size: int = 8,
    keep_samples: int = 8,
    dataset=None,
    pairs_sha256: str | None = None,
    manifest: PairsManifest | None = None,
    cache_dir: str | Path | None = None,
    outputs_dir: str | Path | None = None,
    outputs_per_bin: int = 4,
    lpips: str = "imagenet",
    fid: bool = True,
    ssim_variants: bool = True,
    max_batches: int | None = None,
    num_workers: int = 0,
) -> EvaluationResult:
    """Evaluate ``predictor`` on every pair of ``protocol``; metrics on the composite.

    Args:
        predictor: the method (learned or classical) behind the predictor's size handling.
        protocol: the evaluation set; ``dataset``/``manifest``/``pairs_sha256`` may be passed
            when already built (they are derived from ``protocol`` otherwise).
        cache_dir: per-sample cache root (resume); ``None``: no cache.
        outputs_dir: save the composites of :func:`grid_indices` (``outputs_per_bin`` per bin)
            as ``<outputs_dir>/<index>.png``; ``None``: none saved.
        lpips: ``"imagenet"`` (n/a with the reason when the backbone is absent), ``"random"``
            (random backbone, for tests; the result says so), ``"off"``.
        fid: compute FID (n/a with the reason when the Inception weights are absent).
        ssim_variants: also report ``ssim_lbam`` (LBAM/CTSDG evaluation-code SSIM).
        max_batches: stop after this many newly evaluated batches (tests of resume); the
            result is then marked ``"complete": False`` in ``runtime``.
        num_workers: DataLoader worker processes (0: load in the main process).

    Returns a schema-v1 results dict; ``result.samples`` holds the first ``keep_samples``
    evaluated inputs and outputs (``image``, ``mask``, ``composite`` and method extras such as
    ``edge``), ``result.per_sample`` one record per sample (index, name, mask, hole ratio, bin,
    metric values).
    """
    from inpaintzoo.metrics import (
        FIDFeatures,
        fid_availability,
        fid_from_features,
        per_image_metrics,
        ssim,
        summarize,
    )

    dataset = dataset if dataset is not None else protocol.dataset()
    if manifest is None:
        manifest = protocol_manifest(protocol, dataset)
    pairs_sha256 = pairs_sha256 or manifest.pairs_sha256
    if pairs_sha256 != manifest.pairs_sha256:
        raise ValueError("pairs_sha256 does not match the protocol manifest's")
    device = predictor.device
    notes = list(notes or [])
    lpips_metrics, na_reasons = _lpips_metrics(lpips, device)
    if lpips == "random" and lpips_metrics:
        notes.append("LPIPS with a RANDOM backbone (lpips=random): test/timing only, meaningless")
    fid_extractor = None
    if fid:
        ok, reason = fid_availability()
        if ok:
            fid_extractor = FIDFeatures().to(device)
        else:
            na_reasons["fid"] = reason
    else:
        na_reasons["fid"] = "FID switched off (evaluate fid=false)"
    flags = _resize_flags(predictor, protocol.size)
    notes.extend(flags)
    settings = {
        "lpips": lpips,
        "fid": fid_extractor is not None,
        "ssim_variants": ssim_variants,
        "max_side": predictor.max_side,
    }
    key = method_key(predictor, checkpoint, settings)
    chunk_dir = None
    if cache_dir is not None:
        chunk_dir = Path(cache_dir) / pairs_sha256[:16] / f"{_slug(predictor.name)}-{key}"
        chunk_dir.mkdir(parents=True, exist_ok=True)
    chunks: list[dict[str, Any]] = []
    done: set[int] = set()
    if chunk_dir is not None:
        for file in sorted(chunk_dir.glob("chunk_*.pt")):
            chunk = torch.load(file, map_location="cpu", weights_only=True)
            chunks.append(chunk)
            done.update(int(i) for i in chunk["index"])
        if done:
            log.info(
                "resuming %s: %d of %d samples cached", predictor.name, len(done), len(dataset)
            )
    todo = [i for i in range(len(dataset)) if i not in done]
    save_set = set(grid_indices(manifest, outputs_per_bin)) if outputs_dir else set()
    loader = DataLoader(
        Subset(dataset, todo),
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    kept: dict[str, list[torch.Tensor]] = {}
    n_kept = 0
    complete = True
    for batch_number, batch in enumerate(loader):
        if max_batches is not None and batch_number >= max_batches:
            complete = False
            break
        image, mask = batch["image"], batch["mask"]
        index = torch.as_tensor(batch["index"], dtype=torch.long)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = predictor(image.to(device, non_blocking=True), mask.to(device, non_blocking=True))
        comp_dev = out["composite"].clamp(0, 1).float()
        target_dev = image.to(device)
        values = per_image_metrics(comp_dev, target_dev)
        if ssim_variants:
            values["ssim_lbam"] = ssim(comp_dev, target_dev, variant="lbam")
        for name, metric in lpips_metrics.items():
            values[name] = metric(comp_dev, target_dev)
        chunk: dict[str, Any] = {
            "index": index,
            **{name: v.detach().double().cpu() for name, v in values.items()},
        }
        if fid_extractor is not None:
            chunk["fid_real"] = fid_extractor(target_dev)
            chunk["fid_fake"] = fid_extractor(comp_dev)
        if device.type == "cuda":
            torch.cuda.synchronize()
        chunk["seconds"] = torch.tensor(time.perf_counter() - start, dtype=torch.float64)
        comp = comp_dev.cpu()
        chunk["hole_ratio"] = (mask > 0.5).double().flatten(1).mean(dim=1)
        if chunk_dir is not None:
            atomic_save_torch(chunk, chunk_dir / f"chunk_{int(index[0]):07d}.pt")
        chunks.append(chunk)
        for row, i in enumerate(index.tolist()):
            if i in save_set:
                _save_png(comp[row], Path(outputs_dir) / f"{i:06d}.png")
        if n_kept < keep_samples:
            take = min(keep_samples - n_kept, len(image))
            extras = {k: v for k, v in out.items() if torch.is_tensor(v) and v.ndim == 4}
            extras["composite"] = comp
            for name, value in {"image": image, "mask": mask, **extras}.items():
                kept.setdefault(name, []).append(value[:take].float().cpu())
            n_kept += take

    # gather every sample, ordered by index: the summary does not depend on interruptions
    index = torch.cat([c["index"] for c in chunks]) if chunks else torch.zeros(0, dtype=torch.long)
    order = torch.argsort(index)
    index = index[order]
    if complete and index.tolist() != list(range(len(dataset))):
        raise RuntimeError(
            f"cache {chunk_dir} is inconsistent: {len(index)} cached samples for "
            f"{len(dataset)}; delete it and run again"
        )
    metric_names = (
        [k for k in chunks[0] if k not in ("index", "seconds", "hole_ratio")] if chunks else []
    )
    metric_names = [k for k in metric_names if not k.startswith("fid_")]
    values = {name: torch.cat([c[name] for c in chunks])[order] for name in metric_names}
    ratios = torch.cat([c["hole_ratio"] for c in chunks])[order] if chunks else torch.zeros(0)
    bins = protocol.hole_bins()
    metrics = summarize(values, ratios, bins, na_reasons)
    if fid_extractor is not None and chunks:
        real = torch.cat([c["fid_real"] for c in chunks])[order]
        fake = torch.cat([c["fid_fake"] for c in chunks])[order]
        bin_index = torch.tensor([bins.index(float(r)) for r in ratios])
        groups = [("overall", None)] + [(lab, i) for i, lab in enumerate(bins.labels)]
        for group, i in groups:
            select = slice(None) if i is None else bin_index == i
            value = fid_from_features(real[select], fake[select])
            n = int(len(real[select]))
            entry = {"mean": value, "ci95": None, "n": n}
            if value is None:
                entry["na_reason"] = "FID needs at least 2 samples"
            target = metrics["overall"] if i is None else metrics["bins"][group]
            target["fid"] = entry
    seconds = float(sum(float(c["seconds"]) for c in chunks))
    num_params = getattr(predictor.model, "num_parameters", None)
    num_params = num_params() if callable(num_params) else num_params
    model_kind = kind or ("learned" if predictor.learned else "classical")
    describe = protocol.describe(pairs_sha256, manifest)
    describe["resized_for_method"] = bool(flags)
    per_sample = []
    records = manifest.records
    for row, i in enumerate(index.tolist()):
        entry = dict(records[i])
        entry.update({name: float(values[name][row]) for name in metric_names})
        per_sample.append(entry)
    result = EvaluationResult(
        schema_version=SCHEMA_VERSION,
        method=predictor.name,
        label=label or predictor.name,
        kind=model_kind,
        protocol=describe,
        metrics=metrics,
        params=num_params,
        checkpoint=(
            {"path": str(checkpoint), "sha256": sha256_file(checkpoint)} if checkpoint else None
        ),
        runtime={
            "seconds": round(seconds, 4),
            "images_per_second": round(len(index) / seconds, 2) if seconds > 0 else None,
            "device": str(device),
            "num_samples": len(index),
            "batch_size": batch_size,
            "complete": complete,
            "resumed_samples": len(done),
        },
        environment=environment_info(device),
        method_key=key,
        settings=settings,
        outputs=(
            {
                "dir": str(Path(outputs_dir).resolve()),
                "inputs_dir": str((Path(outputs_dir).parent / "_inputs").resolve()),
                "indices": sorted(save_set),
                "per_bin": outputs_per_bin,
            }
            if outputs_dir
            else None
        ),
        notes=notes,
        source=None,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    result.samples = {k: torch.cat(v) for k, v in kept.items()}
    result.per_sample = per_sample
    return result


def write_result(result: dict, path: str | Path) -> Path:
    """Write one results dict as JSON, atomically."""
    return atomic_write_text(path, json.dumps(dict(result), indent=2, sort_keys=False) + "\n")


def write_per_sample(result: EvaluationResult, path: str | Path) -> Path:
    """Per-sample CSV (index, name, image, mask, hole ratio, bin, metrics), atomically."""
    rows = getattr(result, "per_sample", [])
    if not rows:
        return atomic_write_text(path, "")
    columns = list(rows[0])
    lines = [",".join(columns)]
    for row in rows:
        cells = []
        for column in columns:
            value = row[column]
            cells.append(f"{value:.6f}" if isinstance(value, float) else str(value or ""))
        lines.append(",".join(cells))
    return atomic_write_text(path, "\n".join(lines) + "\n")


def write_protocol_inputs(dataset, indices: list[int], out_dir: str | Path) -> dict[str, list[str]]:
    """Save masked inputs and ground truths of ``indices`` (``masked/<i>.png``, ``gt/<i>.png``)
    once per protocol, for the leaderboard's visual grid."""
    out_dir = Path(out_dir)
    for i in indices:
        item = dataset[i]
        masked = item["image"] * (1 - item["mask"]) + item["mask"]
        _save_png(masked, out_dir / "masked" / f"{i:06d}.png")
        _save_png(item["image"], out_dir / "gt" / f"{i:06d}.png")
    return {"indices": [int(i) for i in indices]}


__all__ = [
    "LPIPS_MODES",
    "SCHEMA_VERSION",
    "EvaluationResult",
    "environment_info",
    "evaluate",
    "grid_indices",
    "method_key",
    "pairs_hash",
    "write_per_sample",
    "write_protocol_inputs",
    "write_result",
]
