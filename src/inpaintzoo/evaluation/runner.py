"""Run one method over a protocol and produce a schema-v1 results dict (docs/CONTRACTS.md).

One responsibility per module:

* :mod:`~inpaintzoo.evaluation.settings`: the grouped options (which pairs, how the method is
  labelled, which metrics, what is kept, how the samples are run);
* :mod:`~inpaintzoo.evaluation.cache`: the resumable per-sample cache (chunks keyed by the pairs
  hash and :func:`method_key`: method, checkpoint or in-memory weights, metric settings);
* :mod:`~inpaintzoo.evaluation.metric_suite`: which metrics, per sample and per bin;
* :mod:`~inpaintzoo.evaluation.outputs`: composites saved per bin and samples kept for grids;
* :mod:`~inpaintzoo.evaluation.results`: the results dict (:func:`assemble_result`) and files;
* here: the batch loop (:func:`run_evaluation`) and its timing (:class:`DeviceTimer`).

The summary is computed from every per-sample value ordered by sample index, so a resumed run
gives the same numbers as an uninterrupted one (for deterministic methods).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from inpaintzoo.evaluation.cache import SampleCache, method_key
from inpaintzoo.evaluation.metric_suite import MetricSuite, SampleTable
from inpaintzoo.evaluation.outputs import SampleOutputs, grid_indices, write_protocol_inputs
from inpaintzoo.evaluation.protocol import EvalProtocol, PairsManifest, collate, pairs_hash
from inpaintzoo.evaluation.results import (
    SCHEMA_VERSION,
    EvaluationResult,
    assemble_result,
    environment_info,
    per_sample_records,
    runtime_block,
    write_per_sample,
    write_result,
)
from inpaintzoo.evaluation.settings import (
    LPIPS_MODES,
    MethodInfo,
    MetricSettings,
    OutputSettings,
    PreparedProtocol,
    RunSettings,
)
from inpaintzoo.predictor import Predictor, resolve_checkpoint

log = logging.getLogger(__name__)


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

    The keyword form of :func:`run_evaluation`: each group of keywords is one settings object
    of :mod:`inpaintzoo.evaluation.settings`, where every option is described.

    * :class:`PreparedProtocol`: ``dataset``, ``manifest``, ``pairs_sha256`` (derived from
      ``protocol`` when not given; a ``pairs_sha256`` that differs from the manifest's raises
      ``ValueError``).
    * :class:`MethodInfo`: ``label``, ``kind``, ``checkpoint``, ``notes``.
    * :class:`MetricSettings`: ``lpips`` (``"imagenet"``, ``"random"``, ``"off"``), ``fid``,
      ``ssim_variants``.
    * :class:`OutputSettings`: ``outputs_dir`` (``dir``), ``outputs_per_bin`` (``per_bin``),
      ``keep_samples``.
    * :class:`RunSettings`: ``batch_size``, ``num_workers``, ``cache_dir`` (resume),
      ``max_batches``.

    Returns a schema-v1 results dict (see :func:`run_evaluation`).
    """
    metrics = MetricSettings(lpips=lpips, fid=fid, ssim_variants=ssim_variants)
    return run_evaluation(
        predictor,
        PreparedProtocol.build(protocol, dataset, manifest, pairs_sha256),
        method=MethodInfo(label, kind, checkpoint, tuple(notes or ())),
        metrics=metrics,
        outputs=OutputSettings(outputs_dir, outputs_per_bin, keep_samples),
        run=RunSettings(batch_size, num_workers, cache_dir, max_batches),
    )


def run_evaluation(
    predictor: Predictor,
    prepared: PreparedProtocol,
    *,
    method: MethodInfo | None = None,
    metrics: MetricSettings | None = None,
    outputs: OutputSettings | None = None,
    run: RunSettings | None = None,
) -> EvaluationResult:
    """Evaluate ``predictor`` on every pair of ``prepared``; metrics on the composite.

    Samples already in the cache (``run.cache_dir``) are loaded, the others evaluated batch by
    batch (each batch saved to the cache at once), then all are summarised in index order.

    Returns a schema-v1 results dict; ``result.samples`` holds the first
    ``outputs.keep_samples`` newly evaluated inputs and outputs (``image``, ``mask``,
    ``composite`` and method extras such as ``edge``), ``result.per_sample`` one record per
    sample (index, name, image, mask, hole ratio, bin, metric values).

    Raises:
        RuntimeError: the cache holds samples that do not make up the protocol (delete it).
    """
    method = method or MethodInfo()
    # official weights are labelled "<method>, official weights (<sha256>)"; an
    # inpaintzoo-import folder stands for the model.ckpt inside it
    label = method.label or getattr(predictor, "label", None)
    if method.options:
        shown = ", ".join(f"{k}={v}" for k, v in method.options)
        label = f"{label or predictor.name} ({shown})"
    method = replace(
        method,
        label=label,
        checkpoint=resolve_checkpoint(method.checkpoint) if method.checkpoint else None,
    )
    run = run or RunSettings()
    suite = MetricSuite(metrics or MetricSettings(), predictor.device)
    resize_notes = resize_flags(predictor, prepared.protocol.size)
    settings = suite.cache_settings(predictor.max_side)
    if method.options:
        settings = {**settings, "model_options": dict(method.options)}
    key = method_key(predictor, method.checkpoint, settings)
    cache = None
    if run.cache_dir is not None:
        cache = SampleCache(run.cache_dir, prepared.manifest.pairs_sha256, predictor.name, key)
    cached = cache.load() if cache is not None else []
    resumed = {int(i) for chunk in cached for i in chunk["index"]}
    if resumed:
        log.info(
            "resuming %s: %d of %d samples cached",
            predictor.name,
            len(resumed),
            len(prepared.dataset),
        )
    kept = SampleOutputs(outputs or OutputSettings(), prepared.manifest)
    new, complete = _evaluate_missing(predictor, prepared.dataset, resumed, suite, cache, kept, run)
    table = SampleTable.from_chunks(cached + new)
    if complete and table.index.tolist() != list(range(len(prepared.dataset))):
        raise RuntimeError(
            f"cache {cache.dir if cache is not None else None} is inconsistent: {len(table)} "
            f"cached samples for {len(prepared.dataset)}; delete it and run again"
        )
    result = assemble_result(
        predictor,
        prepared,
        method,
        metrics=suite.summarize(table, prepared.protocol.hole_bins()),
        settings=settings,
        key=key,
        notes=[*method.notes, *suite.notes, *resize_notes],
        resized=bool(resize_notes),
        runtime=runtime_block(table, predictor.device, run, complete, len(resumed)),
        outputs=kept.describe(),
    )
    result.samples = kept.samples()
    result.per_sample = per_sample_records(table, prepared.manifest)
    return result


def _evaluate_missing(
    predictor: Predictor,
    dataset,
    done: set[int],
    suite: MetricSuite,
    cache: SampleCache | None,
    kept: SampleOutputs,
    run: RunSettings,
) -> tuple[list[dict[str, Any]], bool]:
    """Evaluate every sample not in ``done``; ``(new chunks, complete)`` (``complete`` is False
    when ``run.max_batches`` stopped the loop early)."""
    todo = [i for i in range(len(dataset)) if i not in done]
    loader = DataLoader(
        Subset(dataset, todo),
        batch_size=run.batch_size,
        shuffle=False,
        collate_fn=collate,
        num_workers=run.num_workers,
        pin_memory=predictor.device.type == "cuda",
    )
    chunks: list[dict[str, Any]] = []
    for batch_number, batch in enumerate(loader):
        if run.max_batches is not None and batch_number >= run.max_batches:
            return chunks, False
        chunk, out, composite = _evaluate_batch(predictor, batch, suite)
        if cache is not None:
            cache.save(chunk)
        chunks.append(chunk)
        kept.add(batch, out, composite)
    return chunks, True


def _evaluate_batch(
    predictor: Predictor, batch: dict[str, Any], suite: MetricSuite
) -> tuple[dict[str, Any], dict[str, Any], torch.Tensor]:
    """Inpaint and score one batch: ``(cache chunk, predictor outputs, composite on the CPU)``.
    The chunk's ``seconds`` time the predictor and the metrics, not loading or saving."""
    device = predictor.device
    image, mask = batch["image"], batch["mask"]
    index = torch.as_tensor(batch["index"], dtype=torch.long)
    with DeviceTimer(device) as timer:
        out = predictor(image.to(device, non_blocking=True), mask.to(device, non_blocking=True))
        composite = out["composite"].clamp(0, 1).float()
        scores = suite(composite, image.to(device))
    chunk = {
        "index": index,
        **scores,
        "seconds": torch.tensor(timer.seconds, dtype=torch.float64),
        "hole_ratio": (mask > 0.5).double().flatten(1).mean(dim=1),
    }
    return chunk, out, composite.cpu()


class DeviceTimer:
    """``with DeviceTimer(device) as timer: ...`` -> ``timer.seconds``, wall-clock, with CUDA
    synchronised at both ends (its kernels run asynchronously)."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.seconds = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def __enter__(self) -> DeviceTimer:
        self._sync()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self._start


def resize_flags(predictor: Predictor, size: int) -> list[str]:
    """Notes saying how the predictor changed the protocol images' size for this method."""
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


__all__ = [
    "LPIPS_MODES",
    "SCHEMA_VERSION",
    "DeviceTimer",
    "EvaluationResult",
    "MethodInfo",
    "MetricSettings",
    "OutputSettings",
    "PreparedProtocol",
    "RunSettings",
    "SampleOutputs",
    "assemble_result",
    "environment_info",
    "evaluate",
    "grid_indices",
    "method_key",
    "pairs_hash",
    "per_sample_records",
    "resize_flags",
    "run_evaluation",
    "runtime_block",
    "write_per_sample",
    "write_protocol_inputs",
    "write_result",
]
