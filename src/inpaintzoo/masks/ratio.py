"""Hole ratios and hole-ratio bins (the evaluation protocol groups results by them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["CTSDG_BINS", "NVIDIA6_BINS", "HoleRatioBins", "hole_ratio", "hole_ratio_batch"]


def hole_ratio_batch(masks: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Per-sample hole ratio of a mask batch.

    Args:
        masks: ``(B, 1, H, W)`` or ``(B, H, W)``, 1 = hole (values above 0.5 count as hole).

    Returns:
        ``(B,)`` float tensor (float32, on the masks' device) for a tensor input, float64 numpy
        array for a numpy input.
    """
    if masks.ndim == 4:
        if masks.shape[1] != 1:
            raise ValueError(f"mask batch must be (B, 1, H, W), got {tuple(masks.shape)}")
    elif masks.ndim != 3:
        raise ValueError(f"mask batch must be (B, 1, H, W) or (B, H, W), got {tuple(masks.shape)}")
    if isinstance(masks, torch.Tensor):
        return (masks > 0.5).flatten(1).float().mean(dim=1)
    masks = np.asarray(masks)
    return (masks > 0.5).reshape(masks.shape[0], -1).mean(axis=1)


def hole_ratio(mask: torch.Tensor | np.ndarray) -> float | torch.Tensor | np.ndarray:
    """Fraction of hole pixels (values above 0.5; 1 = hole).

    * numpy ``(H, W)`` (or ``(1, H, W)`` / ``(H, W, 1)``) -> Python ``float``;
    * torch ``(B, 1, H, W)`` -> ``(B,)`` tensor (as :func:`hole_ratio_batch`);
      torch ``(H, W)`` / ``(1, H, W)`` -> 0-d tensor;
    * numpy ``(B, 1, H, W)`` -> ``(B,)`` array.
    """
    if isinstance(mask, torch.Tensor):
        if mask.ndim == 4:
            return hole_ratio_batch(mask)
        if mask.ndim in (2, 3):
            return (mask > 0.5).float().mean()
        raise ValueError(f"mask must be (H, W), (1, H, W) or (B, 1, H, W), got {tuple(mask.shape)}")
    mask = np.asarray(mask)
    if mask.ndim == 4:
        return hole_ratio_batch(mask)
    if mask.ndim == 2 or (mask.ndim == 3 and 1 in (mask.shape[0], mask.shape[-1])):
        return float((mask > 0.5).mean()) if mask.size else 0.0
    raise ValueError(f"mask must be (H, W) or (B, 1, H, W), got {tuple(mask.shape)}")


def _percent(value: float) -> str:
    return f"{round(value * 100, 6):g}"


@dataclass(frozen=True)
class HoleRatioBins:
    """Consecutive hole-ratio bins given by their edges.

    Bin ``i`` covers ``[edges[i], edges[i + 1])``; a ratio equal to the last edge belongs to the
    last bin; a ratio outside ``[edges[0], edges[-1]]`` has index ``-1``.

    >>> bins = HoleRatioBins((0.0, 0.2, 0.4, 0.6))
    >>> bins.index(0.2), bins.label(1), len(bins)
    (1, '20-40%', 3)
    """

    edges: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6)

    def __post_init__(self) -> None:
        edges = tuple(float(e) for e in self.edges)
        if len(edges) < 2:
            raise ValueError(f"HoleRatioBins needs at least 2 edges, got {edges}")
        if any(b <= a for a, b in zip(edges[:-1], edges[1:])):
            raise ValueError(f"HoleRatioBins edges must be strictly increasing, got {edges}")
        if edges[0] < 0.0 or edges[-1] > 1.0:
            raise ValueError(f"HoleRatioBins edges must lie in [0, 1], got {edges}")
        object.__setattr__(self, "edges", edges)

    def __len__(self) -> int:
        return len(self.edges) - 1

    def index(self, ratio: float) -> int:
        """Bin index of one hole ratio, ``-1`` when outside the edges."""
        ratio = float(ratio)
        if ratio == self.edges[-1]:
            return len(self) - 1
        if not self.edges[0] <= ratio < self.edges[-1]:
            return -1
        return int(np.searchsorted(self.edges, ratio, side="right")) - 1

    def indices(self, ratios: Sequence[float] | np.ndarray | torch.Tensor) -> np.ndarray:
        """Vectorised :meth:`index`: int64 array of bin indices (``-1`` outside)."""
        if isinstance(ratios, torch.Tensor):
            ratios = ratios.detach().cpu().numpy()
        return np.array([self.index(r) for r in np.asarray(ratios, dtype=np.float64).ravel()])

    def label(self, i: int) -> str:
        """Human label of bin ``i``, e.g. ``"0-20%"``."""
        if not 0 <= i < len(self):
            raise IndexError(f"bin index {i} out of range for {len(self)} bins")
        return f"{_percent(self.edges[i])}-{_percent(self.edges[i + 1])}%"

    @property
    def labels(self) -> list[str]:
        """Labels of all bins, in order."""
        return [self.label(i) for i in range(len(self))]

    def label_of(self, ratio: float) -> str | None:
        """Label of the bin holding ``ratio``, ``None`` when outside."""
        i = self.index(ratio)
        return None if i < 0 else self.label(i)

    @classmethod
    def uniform(cls, step: float, stop: float, start: float = 0.0) -> HoleRatioBins:
        """Bins of equal width, e.g. ``uniform(0.1, 0.6)`` -> 0-10 %, ..., 50-60 %."""
        count = round((stop - start) / step)
        if count < 1 or abs(start + count * step - stop) > 1e-9:
            raise ValueError(f"({stop} - {start}) is not a positive multiple of {step}")
        return cls(tuple(round(start + k * step, 10) for k in range(count + 1)))


#: CTSDG's table (Guo et al., ICCV 2021): 0-20 %, 20-40 %, 40-60 % of the NVIDIA test masks.
CTSDG_BINS = HoleRatioBins((0.0, 0.2, 0.4, 0.6))
#: The six 10 % bins of the NVIDIA irregular mask test set (Liu et al., 2018): 0-10 % ... 50-60 %.
NVIDIA6_BINS = HoleRatioBins.uniform(0.1, 0.6)
