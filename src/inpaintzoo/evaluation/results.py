"""The results dict of one evaluation (schema version 1, docs/CONTRACTS.md): its assembly
(:func:`assemble_result`, the one place that lays out the keys) and its files (JSON, per-sample
CSV)."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from inpaintzoo.evaluation.metric_suite import SampleTable
from inpaintzoo.evaluation.protocol import PairsManifest
from inpaintzoo.evaluation.settings import MethodInfo, PreparedProtocol, RunSettings
from inpaintzoo.utils.io import atomic_write_text, sha256_file

if TYPE_CHECKING:
    from inpaintzoo.predictor import Predictor

__all__ = [
    "SCHEMA_VERSION",
    "EvaluationResult",
    "assemble_result",
    "environment_info",
    "per_sample_records",
    "runtime_block",
    "write_per_sample",
    "write_result",
]

SCHEMA_VERSION = 1


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


def runtime_block(
    table: SampleTable,
    device: torch.device,
    run: RunSettings,
    complete: bool,
    resumed_samples: int,
) -> dict[str, Any]:
    """The results' ``runtime`` block (timed seconds of every sample, cached ones included)."""
    seconds = table.seconds
    return {
        "seconds": round(seconds, 4),
        "images_per_second": round(len(table) / seconds, 2) if seconds > 0 else None,
        "device": str(device),
        "num_samples": len(table),
        "batch_size": run.batch_size,
        "complete": complete,
        "resumed_samples": resumed_samples,
    }


def per_sample_records(table: SampleTable, manifest: PairsManifest) -> list[dict[str, Any]]:
    """One record per sample: its manifest record (index, name, image, mask, hole ratio, bin)
    and its metric values."""
    records = []
    for row, i in enumerate(table.index.tolist()):
        entry = dict(manifest.records[i])
        entry.update({name: float(values[row]) for name, values in table.values.items()})
        records.append(entry)
    return records


def assemble_result(
    predictor: Predictor,
    prepared: PreparedProtocol,
    method: MethodInfo,
    *,
    metrics: dict[str, dict],
    settings: dict[str, Any],
    key: str,
    notes: list[str],
    resized: bool,
    runtime: dict[str, Any],
    outputs: dict[str, Any] | None,
) -> EvaluationResult:
    """The schema-v1 results dict (docs/CONTRACTS.md), in its documented key order.

    Args:
        metrics: the ``metrics`` block (:meth:`MetricSuite.summarize`).
        settings: the metric settings hashed into ``key`` (:meth:`MetricSuite.cache_settings`).
        key: the :func:`method_key`.
        notes: every remark (the caller's, the metric suite's, resize flags).
        resized: whether the predictor resized the protocol images for this method.
        runtime: the ``runtime`` block (:func:`runtime_block`).
        outputs: the ``outputs`` block (:meth:`SampleOutputs.describe`).
    """
    describe = prepared.protocol.describe(prepared.manifest.pairs_sha256, prepared.manifest)
    describe["resized_for_method"] = resized
    num_params = getattr(predictor.model, "num_parameters", None)
    num_params = num_params() if callable(num_params) else num_params
    checkpoint = method.checkpoint
    return EvaluationResult(
        schema_version=SCHEMA_VERSION,
        method=predictor.name,
        label=method.label or predictor.name,
        kind=method.kind or ("learned" if predictor.learned else "classical"),
        protocol=describe,
        metrics=metrics,
        params=num_params,
        checkpoint=(
            {"path": str(checkpoint), "sha256": sha256_file(checkpoint)} if checkpoint else None
        ),
        runtime=runtime,
        environment=environment_info(predictor.device),
        method_key=key,
        settings=settings,
        outputs=outputs,
        notes=list(notes),
        source=None,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


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
