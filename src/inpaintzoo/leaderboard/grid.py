"""The visual grid: the same protocol samples across methods (masked input, one column per
method, ground truth), from the composites the runner saved (``results["outputs"]``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["write_visual_grid"]


def _read(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)


def write_visual_grid(
    results: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    max_rows: int = 12,
) -> Path | None:
    """Write a PNG grid of the samples every result saved (same indices for every method).

    Rows: the sample indices all results with saved outputs share (sorted, at most
    ``max_rows``); columns: masked input, each method (by label), ground truth. Results without
    saved outputs (paper rows, older files) are skipped. Returns ``path``, or ``None`` when no
    common sample exists.
    """
    from inpaintzoo.visualize import save_sample_grid

    usable = [
        r
        for r in results
        if isinstance(r.get("outputs"), Mapping) and Path(r["outputs"].get("dir", "")).is_dir()
    ]
    if not usable:
        return None
    common = None
    for r in usable:
        folder = Path(r["outputs"]["dir"])
        present = {int(p.stem) for p in folder.glob("*.png") if p.stem.isdigit()}
        common = present if common is None else common & present
    inputs = Path(
        usable[0]["outputs"].get("inputs_dir") or Path(usable[0]["outputs"]["dir"]).parent
    )
    indices = sorted(
        i
        for i in common or set()
        if (inputs / "masked" / f"{i:06d}.png").is_file()
        and (inputs / "gt" / f"{i:06d}.png").is_file()
    )[:max_rows]
    if not indices:
        return None
    columns: dict[str, torch.Tensor] = {
        "masked input": torch.stack([_read(inputs / "masked" / f"{i:06d}.png") for i in indices])
    }
    for r in usable:
        label = str(r["label"])
        while label in columns:
            label += " "
        folder = Path(r["outputs"]["dir"])
        columns[label] = torch.stack([_read(folder / f"{i:06d}.png") for i in indices])
    columns["ground truth"] = torch.stack([_read(inputs / "gt" / f"{i:06d}.png") for i in indices])
    return save_sample_grid(columns, path, max_rows=max_rows)
