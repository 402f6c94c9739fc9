"""Run one method over a protocol and produce a schema-v1 results dict (docs/CONTRACTS.md)."""

from __future__ import annotations

import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from inpaintzoo.evaluation.protocol import EvalProtocol, collate, pairs_hash
from inpaintzoo.predictor import Predictor
from inpaintzoo.utils.io import atomic_write_text, sha256_file

SCHEMA_VERSION = 1


def environment_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    import inpaintzoo

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "inpaintzoo": inpaintzoo.__version__,
        "platform": platform.platform(),
        "hardware": platform.processor() or platform.machine(),
        "device": str(device),
    }
    try:
        import pytorch_lightning as pl

        info["pytorch_lightning"] = pl.__version__
    except ImportError:  # pragma: no cover
        pass
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["hardware"] = torch.cuda.get_device_name(0)
    return info


class EvaluationResult(dict):
    """A results dict with the per-sample outputs kept aside for grids (not serialised)."""

    samples: dict[str, torch.Tensor]


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
) -> EvaluationResult:
    """Evaluate ``predictor`` on every pair of ``protocol``; metrics on the composite.

    Returns a schema-v1 results dict; ``result.samples`` holds the first ``keep_samples``
    inputs and outputs (``image``, ``mask``, ``composite`` and any method extras such as
    ``edge``) for sample grids.
    """
    from inpaintzoo.metrics import BinnedMetrics, per_image_metrics

    dataset = dataset if dataset is not None else protocol.dataset()
    pairs_sha256 = pairs_sha256 or pairs_hash(dataset)
    bins = protocol.hole_bins()
    binned = BinnedMetrics(bins)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    kept: dict[str, list[torch.Tensor]] = {}
    n_kept = 0
    seconds = 0.0
    for batch in loader:
        image, mask = batch["image"], batch["mask"]
        if predictor.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = predictor(image, mask)
        if predictor.device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - start
        comp = out["composite"].clamp(0, 1).float().cpu()
        values = per_image_metrics(comp, image)
        ratios = mask.flatten(1).mean(dim=1)
        binned.update(values, ratios)
        if n_kept < keep_samples:
            take = min(keep_samples - n_kept, len(image))
            extras = {k: v for k, v in out.items() if torch.is_tensor(v) and v.ndim == 4}
            for key, value in {"image": image, "mask": mask, **extras}.items():
                kept.setdefault(key, []).append(value[:take].float().cpu())
            n_kept += take
    num_params = getattr(predictor.model, "num_parameters", None)
    num_params = num_params() if callable(num_params) else num_params
    model_kind = kind or ("learned" if predictor.learned else "classical")
    result = EvaluationResult(
        schema_version=SCHEMA_VERSION,
        method=predictor.name,
        label=label or predictor.name,
        kind=model_kind,
        protocol=protocol.describe(pairs_sha256),
        metrics=binned.summary(),
        params=num_params,
        checkpoint=(
            {"path": str(checkpoint), "sha256": sha256_file(checkpoint)} if checkpoint else None
        ),
        runtime={
            "seconds": round(seconds, 4),
            "images_per_second": round(len(dataset) / seconds, 2) if seconds > 0 else None,
            "device": str(predictor.device),
            "num_samples": len(dataset),
        },
        environment=environment_info(predictor.device),
        notes=list(notes or []),
        source=None,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    result.samples = {k: torch.cat(v) for k, v in kept.items()}
    return result


def write_result(result: dict, path: str | Path) -> Path:
    """Write one results dict as JSON, atomically."""
    return atomic_write_text(path, json.dumps(dict(result), indent=2, sort_keys=False) + "\n")
