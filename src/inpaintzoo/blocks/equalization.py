"""Feature equalisation of MEDFE: channel (SE) and spatial (Gaussian + local patch attention).

Liu, Jiang, Song, Huang, Yang, "Rethinking Image Inpainting via a Mutual Encoder-Decoder with
Feature Equalizations", ECCV 2020 (official code: KumapowerLIU/Rethinking-Inpainting-MEDFE
``models/PCconv.py`` ``SELayer`` and ``BASE``, ``util/util.py`` ``gussin``,
``util/Selfpatch.py``; facts in ``specs/medfe.md`` §2). An independent, batched implementation.

:class:`FeatureEqualization` (the official ``BASE``) maps ``x (B, C, H, W)`` to:

1. **channel equalisation** ``y = x * sigmoid(W2 relu(W1 avgpool(x)))``
   (:class:`ChannelEqualization`, squeeze-and-excitation with reduction 16, 1x1 convs with bias);
2. **spatial equalisation** (:class:`SpatialEqualization`) of ``y``:

   * Gaussian aggregation: ``g_p = sum_q G(p, q) y_q`` with ``G(p, q) = exp(-|p - q|^2 /
     (2 sigma^2))`` normalised so that every row sums to 1 (sigma = 1.5 feature pixels, over all
     ``H W`` positions: :func:`gaussian_aggregation_weights`);
   * local patch attention: ``a_p(k) = mean_c sigmoid(y)_p sigmoid(y)_{p+k}`` over the 3x3
     offsets ``k`` (zero padding outside the map), ``w_p = softmax_k a_p(k)``,
     ``c_p = sum_k w_p(k) y_{p+k}`` (zero padding);
   * ``fuse(cat[g, c])``: 1x1 conv ``2C -> C`` without bias, instance norm, LeakyReLU(0.2).

**Layout of the official code** (``layout="official"``, the default): the official ``BASE``
computes ``g`` and ``c`` as ``(H W, C)`` matrices (one row per position) and reads each one back
with ``.view(b, c, h, w)``, a reshape, not a transpose: channel ``k`` of the map it passes on
holds the entries ``k H W ... (k + 1) H W - 1`` of the position-major matrix. The released
weights were trained with this layout, so it is kept by default; ``layout="spatial"`` gives the
plain ``(B, C, H, W)`` maps (the same numbers, transposed into place).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.blocks.layers import ConvNormAct

__all__ = [
    "LAYOUTS",
    "ChannelEqualization",
    "FeatureEqualization",
    "SpatialEqualization",
    "gaussian_aggregation_weights",
    "local_patch_attention",
]

LAYOUTS: tuple[str, ...] = ("official", "spatial")


class ChannelEqualization(nn.Module):
    """Squeeze-and-excitation channel attention (the official ``SELayer``).

    Args:
        channels: ``C``; the bottleneck has ``C // reduction`` channels.
        reduction: 16 in MEDFE.

    Shape:
        ``(B, C, H, W) -> (B, C, H, W)``: every channel scaled by one factor in ``(0, 1)``.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if channels // reduction < 1:
            raise ValueError(f"channels ({channels}) must be >= reduction ({reduction})")
        self.fc = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=(2, 3), keepdim=True))


def gaussian_aggregation_weights(
    height: int,
    width: int,
    sigma: float,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``(H W, H W)`` row-normalised Gaussian weights between the positions of an ``H x W``
    map (row ``p`` = the weights that position ``p`` gives every position ``q``, rows sum to 1);
    positions in row-major order. The official ``util.gussin(1.5)`` for ``H = W = 32``.

    Example:
        >>> g = gaussian_aggregation_weights(4, 4, 1.5)
        >>> g.shape, bool(torch.allclose(g.sum(1), torch.ones(16)))
        (torch.Size([16, 16]), True)
    """
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    pos = torch.stack([grid_y.reshape(-1), grid_x.reshape(-1)], dim=1)
    d2 = (pos[:, None, :] - pos[None, :, :]).pow(2).sum(-1)
    weights = torch.exp(-d2 / (2.0 * sigma * sigma))
    return weights / weights.sum(dim=1, keepdim=True)


def _neighbours(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C, 9, H, W)``: the 3x3 neighbourhood of every position (zero
    padding), offsets in row-major order."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    return torch.stack(
        [padded[..., dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], dim=2
    )


def local_patch_attention(x: torch.Tensor) -> torch.Tensor:
    """The official ``Selfpatch`` attention over 3x3 neighbourhoods, ``(B, C, H, W) -> (B, C, H,
    W)`` in spatial layout: ``sum_k softmax_k(mean_c s_p s_{p+k}) x_{p+k}`` with ``s =
    sigmoid(x)`` (zero padding after the sigmoid, as the official code pads)."""
    s = torch.sigmoid(x)
    affinity = (s.unsqueeze(2) * _neighbours(s)).mean(dim=1)  # (B, 9, H, W)
    weights = F.softmax(affinity, dim=1)
    return (weights.unsqueeze(1) * _neighbours(x)).sum(dim=2)


class SpatialEqualization(nn.Module):
    """Gaussian aggregation + local patch attention, fused by a 1x1 conv (see the module doc).

    Args:
        channels: ``C``.
        sigma: Gaussian sigma in feature pixels (1.5).
        layout: ``"official"`` (the official reshape, see the module docstring) or
            ``"spatial"``.

    Shape:
        ``(B, C, H, W) -> (B, C, H, W)``; the Gaussian needs ``(H W)^2`` memory.
    """

    def __init__(self, channels: int, sigma: float = 1.5, layout: str = "official") -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
        self.sigma = float(sigma)
        self.layout = layout
        self.fuse = ConvNormAct(
            2 * channels, channels, 1, padding=0, norm="instance", activation="leaky_relu",
            bias=False,
        )  # fmt: skip

    def _relayout(self, spatial: torch.Tensor) -> torch.Tensor:
        """Spatial ``(B, C, H, W)`` -> the layout this module passes on."""
        if self.layout == "spatial":
            return spatial
        b, c, h, w = spatial.shape
        return spatial.flatten(2).transpose(1, 2).contiguous().reshape(b, c, h, w)

    def gaussian(self, x: torch.Tensor) -> torch.Tensor:
        """Gaussian aggregation in spatial layout."""
        b, c, h, w = x.shape
        # float64 weights cast once (the official table is computed in float64); MPS has none
        exact = torch.float32 if x.device.type == "mps" else torch.float64
        weights = gaussian_aggregation_weights(h, w, self.sigma, x.device, exact).to(x.dtype)
        aggregated = torch.matmul(weights, x.flatten(2).transpose(1, 2))  # (B, HW, C)
        return aggregated.transpose(1, 2).reshape(b, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gaussian = self._relayout(self.gaussian(x))
        patches = self._relayout(local_patch_attention(x))
        return self.fuse(torch.cat([gaussian, patches], dim=1))

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}, layout={self.layout!r}"


class FeatureEqualization(nn.Module):
    """MEDFE's feature equalisation (the official ``BASE``): channel, then spatial.

    Args:
        channels: ``C`` (512 in MEDFE).
        reduction: SE reduction (16).
        sigma: Gaussian sigma in feature pixels (1.5).
        layout: see :class:`SpatialEqualization`.

    Shape:
        ``(B, C, H, W) -> (B, C, H, W)``.

    Example:
        >>> eq = FeatureEqualization(32)
        >>> eq(torch.rand(2, 32, 8, 8)).shape
        torch.Size([2, 32, 8, 8])
    """

    def __init__(
        self, channels: int, reduction: int = 16, sigma: float = 1.5, layout: str = "official"
    ) -> None:
        super().__init__()
        self.channel = ChannelEqualization(channels, reduction)
        self.spatial = SpatialEqualization(channels, sigma, layout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
