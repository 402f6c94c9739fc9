"""What an evaluation keeps besides its numbers: composites of the same samples for every
method (the leaderboard's visual grid), their inputs, and samples in memory for grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from inpaintzoo.evaluation.protocol import PairsManifest
from inpaintzoo.evaluation.settings import OutputSettings
from inpaintzoo.utils.io import save_image

__all__ = ["SampleOutputs", "grid_indices", "write_protocol_inputs"]


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


class SampleOutputs:
    """What an evaluation keeps besides its numbers (see :class:`OutputSettings`): the
    composites of :func:`grid_indices` saved as ``<dir>/<index:06d>.png``, and the first
    ``keep_samples`` newly evaluated samples in memory."""

    def __init__(self, settings: OutputSettings, manifest: PairsManifest) -> None:
        self.settings = settings
        self.dir = Path(settings.dir) if settings.dir else None
        self.save_indices = set(grid_indices(manifest, settings.per_bin)) if self.dir else set()
        self._kept: dict[str, list[torch.Tensor]] = {}
        self._n_kept = 0

    def add(self, batch: dict[str, Any], out: dict[str, Any], composite: torch.Tensor) -> None:
        """One evaluated batch: ``batch`` as loaded, the predictor's ``out``, the CPU composite."""
        for row, i in enumerate(torch.as_tensor(batch["index"]).tolist()):
            if i in self.save_indices:
                save_image(composite[row], self.dir / f"{i:06d}.png")
        if self._n_kept >= self.settings.keep_samples:
            return
        take = min(self.settings.keep_samples - self._n_kept, len(batch["image"]))
        extras = {k: v for k, v in out.items() if torch.is_tensor(v) and v.ndim == 4}
        extras["composite"] = composite
        for name, value in {"image": batch["image"], "mask": batch["mask"], **extras}.items():
            self._kept.setdefault(name, []).append(value[:take].float().cpu())
        self._n_kept += take

    def samples(self) -> dict[str, torch.Tensor]:
        """The kept samples, ``name -> (N, C, H, W)`` on the CPU."""
        return {name: torch.cat(values) for name, values in self._kept.items()}

    def describe(self) -> dict[str, Any] | None:
        """The results' ``outputs`` block (``None`` when nothing is saved)."""
        if self.dir is None:
            return None
        return {
            "dir": str(self.dir.resolve()),
            "inputs_dir": str((self.dir.parent / "_inputs").resolve()),
            "indices": sorted(self.save_indices),
            "per_bin": self.settings.per_bin,
        }


def write_protocol_inputs(dataset, indices: list[int], out_dir: str | Path) -> dict[str, list[int]]:
    """Save masked inputs and ground truths of ``indices`` (``masked/<i>.png``, ``gt/<i>.png``)
    once per protocol, for the leaderboard's visual grid."""
    out_dir = Path(out_dir)
    for i in indices:
        item = dataset[i]
        masked = item["image"] * (1 - item["mask"]) + item["mask"]
        save_image(masked, out_dir / "masked" / f"{i:06d}.png")
        save_image(item["image"], out_dir / "gt" / f"{i:06d}.png")
    return {"indices": [int(i) for i in indices]}
