"""Sobel gradient maps (kornia), e.g. the 6-channel RGB map of the structure-knowledge model.

Yang et al. (AAAI 2020, YoungGod/sturcture-inpainting) feed and predict
``tf.image.sobel_edges`` of the RGB image: per channel ``(dy, dx)`` with the unnormalised 3x3
Sobel kernels ``dy = [[-1,-2,-1],[0,0,0],[1,2,1]]``, ``dx`` its transpose, stacked as
``[R_dy, R_dx, G_dy, G_dx, B_dy, B_dx]``. :func:`sobel_gradients` computes the same map with
``kornia.filters.spatial_gradient(mode="sobel", normalized=False)`` by default, so a ramp of
slope ``s`` per pixel gives ``8 s`` (normalised kernels, ``normalized=True``, give ``s``).
Sign: positive where the value increases downwards (dy) / to the right (dx).

Differences from TensorFlow: kornia replicates the border, TF's ``sobel_edges`` reflects it, so
only the outermost row/column differ. The original computes the map on ``[-1, 1]`` images,
i.e. twice the values on ``[0, 1]``; pass the image in the range the model expects.
"""

from __future__ import annotations

import kornia
import torch

__all__ = ["gradient_magnitude", "sobel_gradients"]


def _spatial_gradient(image: torch.Tensor, normalized: bool) -> torch.Tensor:
    if image.ndim != 4:
        raise ValueError(f"expected (B, C, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        image = image.float()
    # (B, C, 2, H, W) with index 0 = d/dx, 1 = d/dy
    return kornia.filters.spatial_gradient(image, mode="sobel", order=1, normalized=normalized)


def sobel_gradients(image: torch.Tensor, normalized: bool = False) -> torch.Tensor:
    """Per-channel Sobel responses ``(B, C, H, W) -> (B, 2C, H, W)`` ordered ``(dy, dx)``.

    For RGB the channels are ``[R_dy, R_dx, G_dy, G_dx, B_dy, B_dx]`` (TF ``sobel_edges``
    reshaped as in the structure-knowledge model). Differentiable.
    """
    grad = _spatial_gradient(image, normalized)
    batch, channels, _, height, width = grad.shape
    return grad.flip(2).reshape(batch, 2 * channels, height, width)


def gradient_magnitude(
    image: torch.Tensor, normalized: bool = False, eps: float = 1e-12
) -> torch.Tensor:
    """Per-channel Sobel magnitude ``sqrt(dx^2 + dy^2 + eps)``, ``(B, C, H, W)``.

    ``eps`` keeps the gradient finite on flat regions (it adds at most ``sqrt(eps)`` = 1e-6).
    """
    grad = _spatial_gradient(image, normalized)
    return torch.sqrt(grad.pow(2).sum(dim=2) + eps)
