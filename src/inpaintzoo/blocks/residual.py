"""Dilated residual block (EdgeConnect's ``ResnetBlock``).

Nazeri et al., "EdgeConnect: Structure Guided Image Inpainting using Edge Prediction",
ICCVW 2019 (knazeri/edge-connect, ``src/networks.py``); the same block, with affine instance
norm, is the middle of Yang et al. AAAI 2020 (structure knowledge). Layer order (spec
``edgeconnect.md`` §3.1):

    ReflectionPad(d) -> Conv k3 dilation d (pad 0) -> norm -> ReLU
    -> ReflectionPad(1) -> Conv k3 (pad 0) -> norm;   out = x + block(x)

with no activation after the addition.
"""

from __future__ import annotations

import torch
from torch import nn

from inpaintzoo.blocks.conv import conv2d
from inpaintzoo.blocks.layers import norm2d

__all__ = ["DilatedResBlock"]


class DilatedResBlock(nn.Module):
    """Residual block with a dilated 3x3 conv and reflection padding; keeps the shape.

    Args:
        channels: input = output channels ``C``.
        dilation: dilation ``d`` of the first conv (EdgeConnect: 2). Needs ``H, W > d``
            (reflection padding).
        use_spectral_norm: spectral-normalise both convs.
        bias: conv bias; ``None`` means ``not use_spectral_norm`` (EdgeConnect's rule: G1's SN
            blocks are bias-free, G2's have bias).
        norm: a name of :func:`~inpaintzoo.blocks.norm2d` (``"instance"``, the default, or
            ``"none"`` in the official blocks).
        affine: learnable scale/shift in the instance norms (False in EdgeConnect, True in
            structure knowledge).

    Shape:
        ``(B, C, H, W) -> (B, C, H, W)``.

    Example:
        >>> block = DilatedResBlock(32, dilation=2)
        >>> block(torch.rand(2, 32, 16, 16)).shape
        torch.Size([2, 32, 16, 16])
    """

    def __init__(
        self,
        channels: int,
        dilation: int = 2,
        use_spectral_norm: bool = False,
        bias: bool | None = None,
        norm: str = "instance",
        affine: bool = False,
    ) -> None:
        super().__init__()
        if bias is None:
            bias = not use_spectral_norm
        self.channels = channels
        self.dilation = dilation
        # Attribute name and indices follow the original ``conv_block`` Sequential so that a
        # converted official state dict loads as is.
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(dilation),
            conv2d(
                channels,
                channels,
                3,
                dilation=dilation,
                bias=bias,
                use_spectral_norm=use_spectral_norm,
            ),
            norm2d(norm, channels, affine),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            conv2d(channels, channels, 3, bias=bias, use_spectral_norm=use_spectral_norm),
            norm2d(norm, channels, affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``: ``x + block(x)``, no activation after the add."""
        return x + self.conv_block(x)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, dilation={self.dilation}"
