"""Appearance-flow sampling: bilinear warping and StructureFlow's Gaussian sampling.

StructureFlow (Ren et al., ICCV 2019) warps encoder features along a predicted *appearance flow*
field. The official code uses a CUDA extension (``resample2d_package``) that samples each output
pixel from a ``k x k`` window around the flowed position with separable Gaussian weights
(``../shared/specs/structureflow.md`` section 5). This module re-implements both samplers in plain
PyTorch so they run on any device:

* :func:`flow_warp` - bilinear sampling with :func:`torch.nn.functional.grid_sample`
  (border padding), the usual appearance-flow warp.
* :func:`gaussian_sample` / :class:`GaussianSampler` - the Gaussian window sampler. For an output
  pixel ``(x, y)`` with flow ``(dx, dy)`` the source point is ``p = (x + dx, y + dy)``;
  with ``x0 = floor(p.x)``, ``a = p.x - x0`` (likewise ``y0``, ``b``) the window holds columns
  ``x0 - f`` and ``x0 + f + 1`` at distances ``f + a`` and ``f + 1 - a`` for
  ``f = 0 .. k/2 - 1`` (rows likewise), indices clamped to the border, weights
  ``exp(-d^2 / (2 sigma^2))`` per axis, and the output is the weight-normalised sum. The values
  are gathered at integer positions, so the gradient with respect to the flow flows through the
  weights (through ``a`` and ``b``), as in the CUDA backward.

Flow convention (both samplers): ``flow`` is ``(B, 2, H, W)`` in **pixels of the sampled map**,
channel 0 = ``dx`` (columns), channel 1 = ``dy`` (rows); output pixel ``(x, y)`` reads the input at
``(x + dx, y + dy)``. A zero flow is the identity.

Note on small ``sigma``: as ``sigma -> 0`` the nearest window entry dominates, so Gaussian
sampling tends to *nearest-neighbour* sampling (not bilinear); at integer flows it equals the
shifted input exactly, like bilinear sampling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = ["GaussianSampler", "flow_warp", "gaussian_sample"]


def _check(features: torch.Tensor, flow: torch.Tensor, name: str) -> None:
    if features.ndim != 4:
        raise ValueError(f"{name}: features must be (B, C, H, W), got {tuple(features.shape)}")
    b, _, h, w = features.shape
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"{name}: flow must be (B, 2, H, W), got {tuple(flow.shape)}")
    if flow.shape[0] != b or flow.shape[-2:] != (h, w):
        raise ValueError(
            f"{name}: flow {tuple(flow.shape)} must match the features' batch and size "
            f"{(b, 2, h, w)}"
        )


def _base_grid(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates ``(x, y)`` each ``(1, H, W)`` in the flow's dtype/device."""
    h, w = flow.shape[-2:]
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype).view(1, h, 1).expand(1, h, w)
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype).view(1, 1, w).expand(1, h, w)
    return xs, ys


def flow_warp(features: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Warp ``features`` along ``flow`` with ``grid_sample`` (border padding).

    Args:
        features: ``(B, C, H, W)``.
        flow: ``(B, 2, H, W)`` offsets in pixels (channel 0 = dx, 1 = dy).
        mode: ``"bilinear"`` or ``"nearest"``.

    Returns:
        ``(B, C, H, W)``: ``out[..., y, x] = features[..., y + dy, x + dx]`` (interpolated,
        coordinates clamped to the border).
    """
    _check(features, flow, "flow_warp")
    h, w = features.shape[-2:]
    xs, ys = _base_grid(flow)
    px = xs + flow[:, 0]
    py = ys + flow[:, 1]
    # align_corners=True: -1 and 1 are the centres of the first and last pixels.
    gx = 2.0 * px / max(w - 1, 1) - 1.0
    gy = 2.0 * py / max(h - 1, 1) - 1.0
    grid = torch.stack([gx, gy], dim=-1).to(features.dtype)
    return F.grid_sample(features, grid, mode=mode, padding_mode="border", align_corners=True)


def gaussian_sample(
    features: torch.Tensor, flow: torch.Tensor, kernel_size: int = 4, sigma: float = 2.0
) -> torch.Tensor:
    """StructureFlow's Gaussian sampling (``Resample2d(kernel_size, sigma)``) in PyTorch.

    Args:
        features: ``(B, C, H, W)`` map to sample from.
        flow: ``(B, 2, H, W)`` offsets in pixels of ``features`` (channel 0 = dx, 1 = dy).
        kernel_size: even window side ``k`` (the official nets use 16 and 4).
        sigma: Gaussian standard deviation in pixels (official: 4 for k=16, 2 for k=4).

    Returns:
        ``(B, C, H, W)``. Differentiable in ``features`` and ``flow``.

    Memory: window rows are checkpointed when gradients are on, so only one
    ``(B, C, k, H, W)`` gather is alive at a time (recomputed row by row in backward).
    """
    _check(features, flow, "gaussian_sample")
    if kernel_size < 2 or kernel_size % 2:
        raise ValueError(f"gaussian_sample: kernel_size must be even and >= 2, got {kernel_size}")
    if not sigma > 0:
        raise ValueError(f"gaussian_sample: sigma must be > 0, got {sigma}")
    b, c, h, w = features.shape
    half = kernel_size // 2
    flow = flow.to(features.dtype)
    xs, ys = _base_grid(flow)
    px = xs + flow[:, 0]  # (B, H, W)
    py = ys + flow[:, 1]
    x0 = torch.floor(px.detach())
    y0 = torch.floor(py.detach())
    alpha = px - x0  # differentiable w.r.t. the flow
    beta = py - y0
    # window offsets relative to floor(p): -(half-1) .. half, with distances to p
    offsets = torch.arange(-(half - 1), half + 1, device=flow.device, dtype=flow.dtype)
    off = offsets.view(1, -1, 1, 1)  # (1, k, 1, 1)
    # distance = |offset - frac|: offset -f gives f + a, offset f + 1 gives f + 1 - a
    inv = 1.0 / (2.0 * float(sigma) ** 2)
    wx = torch.exp(-((off - alpha.unsqueeze(1)) ** 2) * inv)  # (B, k, H, W)
    wy = torch.exp(-((off - beta.unsqueeze(1)) ** 2) * inv)
    norm = wx.sum(1) * wy.sum(1)  # (B, H, W): separable normaliser
    cols = (x0.unsqueeze(1) + off).clamp(0, w - 1).long()  # (B, k, H, W)
    rows = (y0.unsqueeze(1) + off).clamp(0, h - 1).long()
    flat = features.reshape(b, c, h * w)
    out = features.new_zeros(b, c, h, w)
    # With gradients on, each window row is checkpointed: its (B, C, k, H, W) gather is
    # recomputed in backward instead of being stored (k times less memory, k=16 in G_t).
    recompute = torch.is_grad_enabled() and (features.requires_grad or flow.requires_grad)
    for r in range(kernel_size):
        index = rows[:, r].unsqueeze(1) * w + cols  # (B, k, H, W)
        if recompute:
            row = checkpoint(_window_row, flat, index, wx, wy[:, r], use_reentrant=False)
        else:
            row = _window_row(flat, index, wx, wy[:, r])
        out = out + row
    return out / norm.unsqueeze(1)


def _window_row(
    flat: torch.Tensor, index: torch.Tensor, wx: torch.Tensor, wy_row: torch.Tensor
) -> torch.Tensor:
    """One window row: ``wy_row * sum_cols wx * features[index]`` -> (B, C, H, W)."""
    b, c, _ = flat.shape
    k, h, w = index.shape[1:]
    gathered = torch.gather(flat, 2, index.reshape(b, 1, k * h * w).expand(b, c, -1))
    gathered = gathered.view(b, c, k, h, w)
    return (gathered * wx.unsqueeze(1)).sum(2) * wy_row.unsqueeze(1)


class GaussianSampler(nn.Module):
    """Module form of :func:`gaussian_sample` (no parameters).

    Args:
        kernel_size: even window side (16 or 4 in StructureFlow).
        sigma: Gaussian sigma in pixels (4 or 2).

    Shape: ``forward(features (B, C, H, W), flow (B, 2, H, W)) -> (B, C, H, W)``.
    """

    def __init__(self, kernel_size: int = 4, sigma: float = 2.0) -> None:
        super().__init__()
        if kernel_size < 2 or kernel_size % 2:
            raise ValueError(f"GaussianSampler: kernel_size must be even >= 2, got {kernel_size}")
        if not sigma > 0:
            raise ValueError(f"GaussianSampler: sigma must be > 0, got {sigma}")
        self.kernel_size = int(kernel_size)
        self.sigma = float(sigma)

    def forward(self, features: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return gaussian_sample(features, flow, self.kernel_size, self.sigma)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, sigma={self.sigma}"
