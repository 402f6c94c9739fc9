"""Albumentations pipelines for uint8 ``(H, W, 3)`` images.

Albumentations is imported lazily (it costs ~2 s) and with its on-import update check
switched off (``NO_ALBUMENTATIONS_UPDATE=1`` unless already set): that check contacts PyPI,
which offline machines cannot reach.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import cv2

__all__ = ["as_hw", "eval_transform", "train_transform"]


def _albumentations() -> Any:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations

    return albumentations


def as_hw(size: int | Sequence[int]) -> tuple[int, int]:
    """``64`` -> ``(64, 64)``; ``(h, w)`` -> ``(h, w)``."""
    if isinstance(size, int):
        height = width = size
    else:
        height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size}")
    return height, width


def _shortest_side_resize(A: Any, sides: int | list[int]) -> Any:
    # INTER_AREA when shrinking (anti-aliased), bilinear when enlarging.
    return A.SmallestMaxSize(
        max_size=sides, interpolation=cv2.INTER_LINEAR, area_for_downscale="image"
    )


def train_transform(
    size: int | Sequence[int],
    resize: bool = True,
    flip: bool = True,
    scale: Sequence[float] = (1.0, 1.0),
    crop: str = "random",
    seed: int | None = None,
) -> Any:
    """Training pipeline: [resize the shortest side] -> crop ``size`` -> [horizontal flip].

    Args:
        size: output size, ``int`` or ``(H, W)``.
        resize: resize the shortest side to ``max(H, W) * s`` first, ``s`` uniform in ``scale``
            (a random zoom; ``scale=(1, 1)`` fits the shortest side to the crop). ``False``
            crops at the file's own resolution (the image must be at least ``size``).
        flip: horizontal flip with p = 0.5.
        scale: ``(low, high)`` zoom range for ``resize=True``, ``low >= 1``.
        crop: ``"random"`` (uniform position) or ``"center"``.
        seed: albumentations' own seed (:class:`~inpaintzoo.data.InpaintDataset` reseeds it
            per item from torch's RNG, so DataLoader worker seeding applies).
    """
    A = _albumentations()
    height, width = as_hw(size)
    low, high = (float(v) for v in scale)
    if not 1.0 <= low <= high:
        raise ValueError(f"scale must be (low, high) with 1 <= low <= high, got {tuple(scale)}")
    if crop not in ("random", "center"):
        raise ValueError(f"crop must be 'random' or 'center', got {crop!r}")
    steps: list[Any] = []
    if resize:
        side = max(height, width)
        sides = list(range(round(side * low), round(side * high) + 1))
        steps.append(_shortest_side_resize(A, sides if len(sides) > 1 else sides[0]))
    steps.append(A.RandomCrop(height, width) if crop == "random" else A.CenterCrop(height, width))
    if flip:
        steps.append(A.HorizontalFlip(p=0.5))
    return A.Compose(steps, seed=seed)


def eval_transform(size: int | Sequence[int], resize: bool = True) -> Any:
    """Deterministic pipeline: [resize the shortest side to ``max(H, W)``] -> centre crop."""
    A = _albumentations()
    height, width = as_hw(size)
    steps: list[Any] = []
    if resize:
        steps.append(_shortest_side_resize(A, max(height, width)))
    steps.append(A.CenterCrop(height, width))
    return A.Compose(steps, seed=0)
