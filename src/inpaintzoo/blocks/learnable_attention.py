"""LBAM's learnable bidirectional attention layers.

Xie et al., "Image Inpainting with Learnable Bidirectional Attention Maps", ICCV 2019. Facts from
``specs/lbam.md`` §2 (official Vious/LBAM_Pytorch ``models/forwardAttentionLayer.py``,
``models/reverseAttentionLayer.py``); this is an independent implementation.

PConv re-normalises features with a hand-made rule and updates the mask with a hard dilation.
LBAM learns both: a convolution ``W_m`` over the current **soft** mask (1 = valid) gives

* the attention map ``A = g_A(W_m * M)`` (:class:`~inpaintzoo.blocks.gaussian_activation.
  AsymmetricGaussian`) that multiplies the features ``W_f * X``, and
* the next layer's soft mask ``g_M(W_m * M) = ReLU(W_m * M) ** 0.8``.

:class:`ForwardAttentionConv` is the encoder layer; :class:`ReverseAttentionConv` runs the same
mask branch on the inverted mask ``1 - M`` (the hole seen from the decoder side);
:class:`ReverseAttentionUp` is the decoder layer: a transposed conv, the encoder skip in front,
and the product with ``[forward map, reverse map]``.

Masks in these blocks are **1 = valid** (LBAM's convention); LBAM's network converts
inpaintzoo's hole mask once. Every conv is bias-free and initialised N(0, 0.02) as officially.
"""

from __future__ import annotations

import torch
from torch import nn

from inpaintzoo.blocks.gaussian_activation import AsymmetricGaussian, mask_update
from inpaintzoo.blocks.layers import norm2d

__all__ = [
    "FORWARD_GAUSSIAN_INIT",
    "REVERSE_GAUSSIAN_INIT",
    "ForwardAttentionConv",
    "ReverseAttentionConv",
    "ReverseAttentionUp",
]

#: ``(a, mu, sigma1, sigma2)`` of the encoder-side ``g_A`` (official ``ForwardAttentionLayer``).
FORWARD_GAUSSIAN_INIT: tuple[float, float, float, float] = (1.1, 2.0, 1.0, 1.0)
#: ``(a, mu, sigma1, sigma2)`` of the reverse-mask ``g_A`` (official ``ReverseMaskConv``).
REVERSE_GAUSSIAN_INIT: tuple[float, float, float, float] = (1.1, 1.0, 0.5, 0.5)


def _init_normal(*convs: nn.Module) -> None:
    for conv in convs:
        nn.init.normal_(conv.weight, 0.0, 0.02)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)


class ForwardAttentionConv(nn.Module):
    """Encoder layer with a learnable forward attention map.

    ``raw = W_f * X``, ``m = W_m * M``, ``A = g_A(m)``; output ``LReLU_0.2(BN?(raw * A))``, next
    mask ``g_M(m)``.

    Args:
        in_channels, out_channels: of the feature conv ``W_f``.
        kernel_size, stride, padding: of both convs (LBAM: 4, 2, 1).
        mask_channels: input channels of the mask conv ``W_m`` (default ``in_channels``; LBAM's
            first layer takes a 4-channel input but a 3-channel mask).
        batch_norm: BatchNorm after the attention (the paper's version; the released model has
            none).
        gaussian: initial ``(a, mu, sigma1, sigma2)`` of ``g_A``.
        alpha: exponent of ``g_M``.
        negative_slope: of the LeakyReLU.

    Shape:
        ``forward(x (B, in, H, W), mask (B, mask_channels, H, W))`` ->
        ``(features, next_mask, raw, attention)``: ``features`` and ``raw`` (the pre-attention
        conv output, LBAM's decoder skip) ``(B, out, H', W')``, ``next_mask`` (``>= 0``) and
        ``attention`` (``> 0``) of the same shape; ``H' = (H + 2p - k) // s + 1``.

    Example:
        >>> layer = ForwardAttentionConv(4, 8, mask_channels=3)
        >>> out, mask, raw, att = layer(torch.rand(1, 4, 16, 16), torch.ones(1, 3, 16, 16))
        >>> out.shape, mask.shape
        (torch.Size([1, 8, 8, 8]), torch.Size([1, 8, 8, 8]))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 4,
        stride: int = 2,
        padding: int = 1,
        mask_channels: int | None = None,
        batch_norm: bool = False,
        gaussian: tuple[float, float, float, float] = FORWARD_GAUSSIAN_INIT,
        alpha: float = 0.8,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        mask_channels = in_channels if mask_channels is None else mask_channels
        self.feature_conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, bias=False
        )
        self.mask_conv = nn.Conv2d(
            mask_channels, out_channels, kernel_size, stride, padding, bias=False
        )
        self.attention = AsymmetricGaussian(*gaussian)
        self.norm = norm2d("batch", out_channels) if batch_norm else None
        self.activation = nn.LeakyReLU(negative_slope)
        self.alpha = float(alpha)
        _init_normal(self.feature_conv, self.mask_conv)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        raw = self.feature_conv(x)
        response = self.mask_conv(mask)
        attention = self.attention(response)
        out = raw * attention
        if self.norm is not None:
            out = self.norm(out)
        return self.activation(out), mask_update(response, self.alpha), raw, attention


class ReverseAttentionConv(nn.Module):
    """The reverse-mask branch: ``m = W_r * M_r`` -> ``(g_A(m), g_M(m))``.

    ``M_r`` starts as ``1 - M`` (1 = hole) and is the previous layer's ``g_M`` output after that.

    Args:
        in_channels, out_channels, kernel_size, stride, padding: of the mask conv (4, 2, 1).
        gaussian: initial ``(a, mu, sigma1, sigma2)`` (official: 1.1, 1.0, 0.5, 0.5).
        alpha: exponent of ``g_M``.

    Shape:
        ``(B, in, H, W) -> (attention, next_mask)``, both ``(B, out, H', W')``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 4,
        stride: int = 2,
        padding: int = 1,
        gaussian: tuple[float, float, float, float] = REVERSE_GAUSSIAN_INIT,
        alpha: float = 0.8,
    ) -> None:
        super().__init__()
        self.mask_conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, bias=False
        )
        self.attention = AsymmetricGaussian(*gaussian)
        self.alpha = float(alpha)
        _init_normal(self.mask_conv)

    def forward(self, reverse_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        response = self.mask_conv(reverse_mask)
        return self.attention(response), mask_update(response, self.alpha)


class ReverseAttentionUp(nn.Module):
    """Decoder layer: ``LReLU_0.2(BN?(cat(skip, ConvT(x)) * cat(forward map, reverse map)))``.

    Args:
        in_channels, out_channels: of the transposed conv (k4 s2 p1, bias-free).
        skip_channels: channels of the encoder skip (default ``out_channels``).
        batch_norm: BatchNorm over the ``skip + out`` channels (paper version only).
        negative_slope: of the LeakyReLU.

    Shape:
        ``forward(skip (B, skip, 2H, 2W), x (B, in, H, W), attention (B, skip + out, 2H, 2W))``
        -> ``(B, skip + out, 2H, 2W)``. The encoder skip comes first, so the forward map must
        come first in ``attention`` (official comment in ``reverseAttentionLayer.py``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        skip_channels: int | None = None,
        batch_norm: bool = False,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        skip_channels = out_channels if skip_channels is None else skip_channels
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False)
        self.norm = norm2d("batch", skip_channels + out_channels) if batch_norm else None
        self.activation = nn.LeakyReLU(negative_slope)
        _init_normal(self.conv)

    def forward(self, skip: torch.Tensor, x: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        out = torch.cat([skip, self.conv(x)], dim=1) * attention
        if self.norm is not None:
            out = self.norm(out)
        return self.activation(out)
