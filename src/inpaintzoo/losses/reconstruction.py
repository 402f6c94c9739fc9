"""Pixel reconstruction losses (masks: ``(B, 1, H, W)``, 1 = hole).

* :func:`l1_loss` - mean absolute error over everything.
* :func:`hole_normalized_l1` - EdgeConnect's L1 (knazeri/edge-connect ``src/models.py``):
  ``mean|pred - target| / mean(mask)``, the whole-image L1 scaled up by the inverse hole ratio
  of the batch.
* :func:`masked_l1` - mean absolute error over the hole (or the valid region) only:
  ``sum(|pred - target| * region) / (sum(region) * C)``.
"""

from __future__ import annotations

import torch

__all__ = ["hole_normalized_l1", "l1_loss", "masked_l1"]


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (scalar, float32)."""
    return (pred.float() - target.float()).abs().mean()


def hole_normalized_l1(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, min_hole_ratio: float = 0.01
) -> torch.Tensor:
    """EdgeConnect's ``mean|pred - target| / mean(mask)`` (scalar).

    Guard: ``mean(mask)`` is clamped to at least ``min_hole_ratio`` (default 1 %), so a batch
    whose masks are (almost) all known scales the L1 by at most ``1 / min_hole_ratio`` instead
    of dividing by zero. The official code has no guard (its masks always have a hole).
    """
    ratio = mask.float().mean().clamp_min(min_hole_ratio)
    return l1_loss(pred, target) / ratio


def masked_l1(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, region: str = "hole"
) -> torch.Tensor:
    """Mean absolute error over the hole (``region="hole"``) or the known pixels (``"valid"``).

    ``sum(|pred - target| * r) / (sum(r) * C)`` with ``r = mask`` or ``1 - mask`` broadcast over
    the ``C`` channels, summed over the whole batch. An empty region gives 0 (the denominator
    is clamped to at least 1).
    """
    if region == "hole":
        weight = mask.float()
    elif region == "valid":
        weight = 1.0 - mask.float()
    else:
        raise ValueError(f"unknown region {region!r}; choose 'hole' or 'valid'")
    diff = (pred.float() - target.float()).abs()
    denominator = weight.expand_as(diff).sum().clamp_min(1.0)  # sum(region) * C
    return (diff * weight).sum() / denominator
