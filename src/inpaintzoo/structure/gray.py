"""Grayscale conversion with scikit-image's ``rgb2gray`` coefficients.

EdgeConnect and CTSDG compute their gray input and their Canny edges from
``skimage.color.rgb2gray`` (ITU-R BT.709 luma: ``0.2125 R + 0.7154 G + 0.0721 B``). kornia's
``rgb_to_grayscale`` uses the BT.601 weights (0.299, 0.587, 0.114), so a dedicated function keeps
the maps identical to the originals.
"""

from __future__ import annotations

import torch

__all__ = ["SKIMAGE_GRAY_WEIGHTS", "rgb_to_gray"]

#: ``skimage.color.rgb2gray`` weights for R, G, B (they sum to 1).
SKIMAGE_GRAY_WEIGHTS: tuple[float, float, float] = (0.2125, 0.7154, 0.0721)


def rgb_to_gray(image: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB -> ``(B, 1, H, W)`` gray with scikit-image's coefficients.

    A ``(B, 1, H, W)`` input is returned unchanged. The value range is preserved ([0, 1] in,
    [0, 1] out); the computation runs in the input's floating dtype.
    """
    if image.ndim != 4 or image.shape[1] not in (1, 3):
        raise ValueError(f"expected (B, 3, H, W) or (B, 1, H, W), got {tuple(image.shape)}")
    if image.shape[1] == 1:
        return image
    if not image.is_floating_point():
        image = image.float()
    weights = torch.tensor(SKIMAGE_GRAY_WEIGHTS, dtype=image.dtype, device=image.device)
    return (image * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
