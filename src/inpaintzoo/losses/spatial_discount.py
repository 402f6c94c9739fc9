"""Spatially discounted L1 (Yu et al., "Generative Image Inpainting with Contextual Attention",
CVPR 2018, §3.1; official JiahuiYu/generative_inpainting v1.0.0 ``inpaint_ops.py``
``spatial_discounting_mask``; ``specs/deepfill_v1.md`` §6).

Pixels deep inside a hole have many plausible completions, so their reconstruction loss is
discounted. The official weight map over the ``H x W`` local patch is

    ``W[i, j] = max(gamma ** min(i, H - i), gamma ** min(j, W - j))``

(1 on the patch border, decaying towards the centre; indices from 0, so the last row gets
``gamma ** 1``). The paper states ``gamma = 0.99``; the released v1.0.0 ``inpaint.yml`` uses
``SPATIAL_DISCOUNTING_GAMMA: 0.9``. The loss is the plain mean of ``|pred - target| * W`` over
all elements (the official ``reduce_mean``).
"""

from __future__ import annotations

import torch

__all__ = ["spatial_discounting_mask", "spatially_discounted_l1"]


def spatial_discounting_mask(
    height: int,
    width: int,
    gamma: float,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The ``(1, 1, height, width)`` weight map ``max(gamma^min(i, H-i), gamma^min(j, W-j))``.

    Example:
        >>> spatial_discounting_mask(4, 4, 0.5)[0, 0, 2].tolist()
        [1.0, 0.5, 0.25, 0.5]
    """
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must lie in (0, 1], got {gamma}")
    i = torch.arange(height, dtype=torch.float64)
    j = torch.arange(width, dtype=torch.float64)
    rows = gamma ** torch.minimum(i, height - i)
    cols = gamma ** torch.minimum(j, width - j)
    weights = torch.maximum(rows[:, None], cols[None, :])
    return weights.to(device=device, dtype=dtype)[None, None]


def spatially_discounted_l1(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """``mean(|pred - target| * weights)`` (scalar, float32); ``weights`` broadcasts, e.g. the
    ``(1, 1, H, W)`` map of :func:`spatial_discounting_mask`."""
    return ((pred.float() - target.float()).abs() * weights.float()).mean()
