"""The options of one evaluation, grouped by what they decide (see :func:`run_evaluation`).

* :class:`PreparedProtocol`: which pairs (the protocol, its dataset and pairs manifest, built
  once and shared by every method of a comparison).
* :class:`MethodInfo`: how the method is labelled in its results (label, kind, checkpoint, notes).
* :class:`MetricSettings`: which metrics are computed (part of the per-sample cache key).
* :class:`OutputSettings`: what is kept besides the numbers (composites saved per bin, samples
  kept in memory for grids).
* :class:`RunSettings`: how the samples are run (batch size, loader workers, the resume cache,
  a batch limit for tests of resume).

:func:`~inpaintzoo.evaluation.evaluate` takes the same options as flat keywords.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpaintzoo.evaluation.protocol import EvalProtocol, PairsManifest, protocol_manifest

__all__ = [
    "LPIPS_MODES",
    "MethodInfo",
    "MetricSettings",
    "OutputSettings",
    "PreparedProtocol",
    "RunSettings",
]

#: ``imagenet``: real backbone (n/a with the reason when its file is absent); ``random``:
#: random backbone (tests/timing; the results say so); ``off``
LPIPS_MODES = ("imagenet", "random", "off")


@dataclass(frozen=True)
class PreparedProtocol:
    """A protocol with its deterministic dataset and pairs manifest (hashes, per-item records)."""

    protocol: EvalProtocol
    dataset: Any
    manifest: PairsManifest

    @classmethod
    def build(
        cls,
        protocol: EvalProtocol,
        dataset: Any = None,
        manifest: PairsManifest | None = None,
        pairs_sha256: str | None = None,
    ) -> PreparedProtocol:
        """Derive what is not given from ``protocol``.

        Raises:
            ValueError: ``pairs_sha256`` is given and differs from the manifest's.
        """
        dataset = dataset if dataset is not None else protocol.dataset()
        if manifest is None:
            manifest = protocol_manifest(protocol, dataset)
        if (pairs_sha256 or manifest.pairs_sha256) != manifest.pairs_sha256:
            raise ValueError("pairs_sha256 does not match the protocol manifest's")
        return cls(protocol, dataset, manifest)


@dataclass(frozen=True)
class MethodInfo:
    """How the evaluated method appears in its results.

    Args:
        label: display label (default: the method's registry name).
        kind: ``learned`` / ``untrained`` / ``classical`` (default: from the predictor).
        checkpoint: the checkpoint file the weights came from (hashed into the results and the
            cache key); ``None`` for classical methods or in-memory weights.
        notes: remarks copied into the results' ``notes``.
        options: model options the checkpoint was loaded with (e.g. GLCIC's
            ``postprocess``): part of the cache key and of the default label.
    """

    label: str | None = None
    kind: str | None = None
    checkpoint: str | Path | None = None
    notes: tuple[str, ...] = ()
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class MetricSettings:
    """Which metrics are computed besides PSNR, SSIM and L1 (always on).

    Args:
        lpips: one of :data:`LPIPS_MODES`.
        fid: compute FID (n/a with the reason when the Inception weights are absent).
        ssim_variants: also report ``ssim_lbam`` (the LBAM/CTSDG evaluation code's SSIM).

    Raises:
        ValueError: an unknown ``lpips`` mode.
    """

    lpips: str = "imagenet"
    fid: bool = True
    ssim_variants: bool = True

    def __post_init__(self) -> None:
        if self.lpips not in LPIPS_MODES:
            raise ValueError(f"lpips must be one of {', '.join(LPIPS_MODES)}, got {self.lpips!r}")

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> MetricSettings:
        """From a config section with optional ``lpips`` and ``fid`` keys (``inpaintzoo-eval``'s
        top level, ``inpaintzoo-train``'s ``evaluate``)."""
        return cls(lpips=str(section.get("lpips", "imagenet")), fid=bool(section.get("fid", True)))


@dataclass(frozen=True)
class OutputSettings:
    """What an evaluation keeps besides its numbers.

    Args:
        dir: save the composites of :func:`~inpaintzoo.evaluation.grid_indices` (``per_bin``
            per hole-ratio bin) as ``<dir>/<index:06d>.png``; ``None``: none saved.
        per_bin: samples saved per bin.
        keep_samples: the first this many newly evaluated samples are kept in memory
            (``EvaluationResult.samples``) for sample grids.
    """

    dir: str | Path | None = None
    per_bin: int = 4
    keep_samples: int = 8


@dataclass(frozen=True)
class RunSettings:
    """How the samples are run.

    Args:
        batch_size: samples per predictor call (and per cache chunk).
        num_workers: DataLoader worker processes (0: load in the main process).
        cache_dir: per-sample cache root (resume); ``None``: no cache.
        max_batches: stop after this many newly evaluated batches (tests of resume); the
            result is then marked ``"complete": False`` in ``runtime``.
    """

    batch_size: int = 8
    num_workers: int = 0
    cache_dir: str | Path | None = None
    max_batches: int | None = None
