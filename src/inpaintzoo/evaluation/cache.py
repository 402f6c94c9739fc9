"""The per-sample cache that makes an evaluation resumable.

Every evaluated batch's per-sample results (metric values, hole ratios, FID features when on,
timing) are saved atomically as one chunk file::

    <cache_dir>/<pairs sha256[:16]>/<method slug>-<method key>/chunk_<first index:07d>.pt

A killed run started again loads the chunks and evaluates only the samples they lack. The
folder is keyed by the protocol's pairs hash and by :func:`method_key`, which hashes the method
name, its checkpoint's SHA-256 (or its weights when in memory) and the metric settings, so a
different checkpoint, protocol or metric setting never reuses a cache.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from inpaintzoo.utils.io import atomic_save_torch, sha256_file
from inpaintzoo.utils.naming import slug

__all__ = ["SampleCache", "method_key"]


def method_key(predictor: Any, checkpoint: str | Path | None, settings: dict) -> str:
    """SHA-256 (hex, 16 chars) of what determines a method's per-sample results: the method
    name and module settings (``extra_repr``), the checkpoint's bytes (or, without a checkpoint,
    a learned method's in-memory weights) and ``settings`` (metric settings, ``max_side``)."""
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


class SampleCache:
    """The chunk folder of one method (``key``) on one protocol (``pairs_sha256``) under
    ``root``; created when missing.

    A chunk is a dict of CPU tensors: ``index`` ``(B,)`` long, one ``(B,)`` float64 tensor per
    metric, ``fid_real`` / ``fid_fake`` ``(B, 2048)`` when FID is on, ``seconds`` (scalar) and
    ``hole_ratio`` ``(B,)``.
    """

    def __init__(self, root: str | Path, pairs_sha256: str, method_name: str, key: str) -> None:
        self.dir = Path(root) / pairs_sha256[:16] / f"{slug(method_name)}-{key}"
        self.dir.mkdir(parents=True, exist_ok=True)

    def load(self) -> list[dict[str, Any]]:
        """Every saved chunk, in file-name order (first sample index)."""
        return [
            torch.load(file, map_location="cpu", weights_only=True)
            for file in sorted(self.dir.glob("chunk_*.pt"))
        ]

    def save(self, chunk: dict[str, Any]) -> Path:
        """Write one chunk atomically (a killed run never leaves a partial chunk)."""
        return atomic_save_torch(chunk, self.dir / f"chunk_{int(chunk['index'][0]):07d}.pt")
