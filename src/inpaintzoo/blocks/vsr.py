"""PRVS's visual structure reconstruction (VSR) layer.

Li, He, Zhang, Du, Tao, "Progressive Reconstruction of Visual Structure for Image Inpainting",
ICCV 2019. Facts from ``specs/prvs.md`` §1 (official jingyuanli001/PRVS-Image-Inpainting
``modules/VSRLayer.py``); this is an independent implementation.

A VSR layer grows the structure (edge) map of the image one ring at a time, alongside the
features, with partial convolutions (:class:`~inpaintzoo.blocks.partial_conv.PartialConv2d`,
masks **1 = valid**):

1. edge generator: ``PConv(in + 1 -> e, k x k, s1, no bias)`` on ``[features, edge]`` with the mask
   ``[m, m_1]`` (``m_1`` = the first mask channel), a ResNet bottleneck, a 1x1 conv ``e -> 1``:
   generated edge logits ``g``; the partial conv's updated mask ``m'`` (the valid region grown
   by ``k // 2`` pixels);
2. the edge is updated **only in the ring that just became valid**:
   ``edge' = edge * m_1 + g * (m'_1 - m_1)`` (known edges kept, still-unknown pixels 0);
3. ``PConv(in + 1 -> out, k x k, stride, bias)`` on ``[features, edge']`` with the mask
   ``[m, m'_1]``, optionally a transposed conv (x2), BatchNorm and the activation.

The output mask is the feature PConv's updated mask times ``m'_1``, both resized (nearest) to the
output size. The edge map passed in is resized (nearest) to the features' size first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.blocks.layers import activation as make_activation
from inpaintzoo.blocks.layers import norm2d
from inpaintzoo.blocks.partial_conv import PartialConv2d

__all__ = ["ResidualBottleneck", "VisualStructureReconstruction"]


class ResidualBottleneck(nn.Module):
    """ResNet bottleneck: 1x1 ``c -> h``, 3x3 ``h -> h``, 1x1 ``h -> c`` (bias-free, BN after each,
    ReLU after the first two), plus the identity, ReLU (PRVS's ``Bottleneck(c, h)``: ``h = c //
    4``, the edge generator's and the output resolver's).

    Shape: ``(B, c, H, W) -> (B, c, H, W)``.
    """

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv3 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + x)


class VisualStructureReconstruction(nn.Module):
    """One VSR layer (see the module docstring).

    Args:
        in_channels, out_channels: feature channels in and out.
        kernel_size: of both partial convs (padding ``k // 2``).
        stride: of the feature partial conv (the edge generator always runs at stride 1).
        batch_norm: BatchNorm2d after the feature conv (and the transposed conv).
        activation: a name of :func:`~inpaintzoo.blocks.activation` (``"relu"``,
            ``"leaky_relu"``) or ``"none"``.
        upsample: a transposed conv (k4 s2 p1, with bias) after the feature conv (PRVS's
            ``deconv=True`` decoder layer).
        edge_channels: width of the edge generator (PRVS: 64); its bottleneck is
            ``edge_channels // 4`` wide.

    Shape:
        ``forward(x (B, in, H, W), valid (B, in, H, W), edge (B, 1, h, w))`` ->
        ``(features (B, out, H', W'), valid' (B, out, H', W'), edge' (B, 1, H, W))`` with
        ``H' = H / stride`` (``x2`` with ``upsample``). Masks: 1 = valid. ``edge'`` stays at the
        input resolution: known edges, generated edge logits in the new ring, 0 elsewhere.

    Example:
        >>> vsr = VisualStructureReconstruction(3, 16, kernel_size=7, edge_channels=8)
        >>> x, valid = torch.rand(1, 3, 32, 32), torch.ones(1, 3, 32, 32)
        >>> edge = torch.zeros(1, 1, 32, 32)
        >>> [tuple(t.shape) for t in vsr(x, valid, edge)]
        [(1, 16, 16, 16), (1, 16, 16, 16), (1, 1, 32, 32)]
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 2,
        batch_norm: bool = True,
        activation: str = "relu",
        upsample: bool = False,
        edge_channels: int = 64,
    ) -> None:
        super().__init__()
        padding = kernel_size // 2
        self.edge_conv = PartialConv2d(
            in_channels + 1, edge_channels, kernel_size, 1, padding, bias=False
        )
        self.edge_resolver = ResidualBottleneck(edge_channels, max(1, edge_channels // 4))
        self.edge_out = nn.Conv2d(edge_channels, 1, 1, bias=False)
        self.feature_conv = PartialConv2d(
            in_channels + 1, out_channels, kernel_size, stride, padding, bias=True
        )
        self.upsample = (
            nn.ConvTranspose2d(out_channels, out_channels, 4, 2, 1) if upsample else None
        )
        self.norm = norm2d("batch", out_channels) if batch_norm else None
        self.activation = None if activation == "none" else make_activation(activation, 0.2)

    def generate_edge(
        self, x: torch.Tensor, valid: torch.Tensor, edge: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The edge generator alone: ``(generated edge logits (B, 1, H, W), its updated mask
        (B, edge_channels, H, W))``; ``edge`` must already have the size of ``x``."""
        features, edge_valid = self.edge_conv(
            torch.cat([x, edge], dim=1), torch.cat([valid, valid[:, :1]], dim=1)
        )
        return self.edge_out(self.edge_resolver(features)), edge_valid

    def forward(
        self, x: torch.Tensor, valid: torch.Tensor, edge: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if edge.shape[-2:] != x.shape[-2:]:
            edge = F.interpolate(edge, size=x.shape[-2:], mode="nearest")
        generated, edge_valid = self.generate_edge(x, valid, edge)
        known, grown = valid[:, :1], edge_valid[:, :1].to(x.dtype)
        edge = edge * known + generated * (grown - known)
        out, out_valid = self.feature_conv(
            torch.cat([x, edge], dim=1), torch.cat([valid, grown], dim=1)
        )
        if self.upsample is not None:
            out = self.upsample(out)
        if self.norm is not None:
            out = self.norm(out)
        if self.activation is not None:
            out = self.activation(out)
        size = out.shape[-2:]
        if out_valid.shape[-2:] != size:
            out_valid = F.interpolate(out_valid, size=size, mode="nearest")
        if grown.shape[-2:] != size:
            grown = F.interpolate(grown, size=size, mode="nearest")
        return out, out_valid * grown, edge
