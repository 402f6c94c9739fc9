"""Contextual Feature Aggregation (CFA) of CTSDG (Guo, Yang, Huang, ICCV 2021).

Facts from ``specs/ctsdg.md`` §3.6 (xiefan-guo/ctsdg ``models/generator/cfa.py``) and the paper
(Eq. 4-7); an independent implementation. ``CFA(x) = MSFA(RAL(x, x))``:

**RAL** (region affinity learning; kernel 3, stride 1, rate 2, softmax scale 10):

1. the foreground is downsampled by ``1/rate`` (bilinear, ``align_corners=True``);
2. every 3x3 patch of it (zero padding 1, stride 1) is L2-normalised (norm clamped at 1e-4) and
   used as a key; the score of key ``j`` at position ``i`` is its dot product with the
   (unnormalised) 3x3 window around ``i`` — the paper's cosine affinity up to the query norm;
3. softmax over the keys of ``scale * score`` (scale 10), clamped at 1e-8;
4. "raw" ``2 rate x 2 rate`` patches of the full-resolution background (zero padding
   ``rate / 2``, stride ``rate``), one per key, are pasted back with the attention weights
   (a transposed convolution, stride ``rate``, padding ``rate / 2``) and divided by 4 (each output
   pixel is covered by 4 patches).

No hole masking of candidate patches (unlike DeepFill's contextual attention): every position is
a candidate, and the foreground acts as keys and queries (self-affinity on one map). The official
code loops over the batch with ``conv2d`` / ``conv_transpose2d``; here the same sums are batched
matrix products (``unfold`` / ``fold``), checked against the per-sample formulation in the tests.
Memory: the score matrix is ``(H W / rate^2)^2`` per sample (4096 x 4096 at CTSDG's 128 px).

**MSFA** (multi-scale feature aggregation): four conv3x3 + ReLU branches with dilation 1, 2, 4, 8
(padding = dilation) and a weight branch conv3x3 + ReLU -> conv1x1 (4 maps) + ReLU -> softmax over
the 4 maps; output ``sum_k w_k * branch_k(x)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CFA", "MSFA", "RegionAffinityLearning"]


class RegionAffinityLearning(nn.Module):
    """RAL: attention over patches of a downsampled map, pasting full-resolution patches.

    Args:
        kernel_size: key/query patch size on the downsampled map (3; odd).
        rate: downsampling factor and raw-patch stride (2; even).
        softmax_scale: multiplier of the scores before the softmax (10).
        norm_eps: lower bound of a key's L2 norm (1e-4).
        attention_floor: lower clamp of the attention weights (1e-8).

    No parameters.

    Shape:
        ``forward(background (B, C, H, W), foreground (B, C, H, W) = background) ->
        (B, C, H, W)``; ``H, W`` divisible by ``rate``. ``attention(foreground)`` returns the
        ``(B, L, L)`` weights (keys ``j`` along dim 1, positions ``i`` along dim 2,
        ``L = H W / rate^2``).

    Example:
        >>> ral = RegionAffinityLearning()
        >>> ral(torch.rand(2, 8, 32, 32)).shape
        torch.Size([2, 8, 32, 32])
    """

    def __init__(
        self,
        kernel_size: int = 3,
        rate: int = 2,
        softmax_scale: float = 10.0,
        norm_eps: float = 1e-4,
        attention_floor: float = 1e-8,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        if rate < 2 or rate % 2:
            raise ValueError(f"rate must be even and >= 2, got {rate}")
        self.kernel_size = int(kernel_size)
        self.rate = int(rate)
        self.softmax_scale = float(softmax_scale)
        self.norm_eps = float(norm_eps)
        self.attention_floor = float(attention_floor)

    def attention(self, foreground: torch.Tensor) -> torch.Tensor:
        """Attention weights ``(B, L, L)`` (keys along dim 1) of a full-resolution foreground."""
        small = F.interpolate(
            foreground, scale_factor=1.0 / self.rate, mode="bilinear", align_corners=True
        )
        k = self.kernel_size
        windows = F.unfold(small, k, padding=k // 2)  # (B, C k k, L)
        norms = windows.norm(dim=1, keepdim=True).clamp_min(self.norm_eps)
        keys = windows / norms
        scores = torch.bmm(keys.transpose(1, 2), windows)  # (B, L_keys, L_positions)
        attention = F.softmax(scores * self.softmax_scale, dim=1)
        return attention.clamp_min(self.attention_floor)

    def forward(
        self, background: torch.Tensor, foreground: torch.Tensor | None = None
    ) -> torch.Tensor:
        foreground = background if foreground is None else foreground
        if background.ndim != 4 or foreground.shape != background.shape:
            raise ValueError(
                "RegionAffinityLearning expects background and foreground of the same shape "
                f"(B, C, H, W), got {tuple(background.shape)} and {tuple(foreground.shape)}"
            )
        h, w = background.shape[-2:]
        r = self.rate
        if h % r or w % r:
            raise ValueError(f"RegionAffinityLearning needs H, W divisible by {r}, got {h}x{w}")
        attention = self.attention(foreground)
        raw = F.unfold(background, 2 * r, padding=r // 2, stride=r)  # (B, C 4r^2, L)
        if raw.shape[-1] != attention.shape[-1]:  # pragma: no cover - guarded by the size check
            raise RuntimeError("raw patches and attention disagree on the number of positions")
        pasted = torch.bmm(raw, attention)  # (B, C 4r^2, L_positions)
        out = F.fold(pasted, (h, w), 2 * r, padding=r // 2, stride=r)
        return out / 4.0

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, rate={self.rate}, "
            f"softmax_scale={self.softmax_scale:g}"
        )


class MSFA(nn.Module):
    """Multi-scale feature aggregation: dilated conv branches mixed by learned pixel weights.

    Args:
        in_channels, out_channels: 64 and 64 in CTSDG.
        rates: dilation of each branch ((1, 2, 4, 8)).

    Shape:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``. ``branch_weights(x)`` gives the
        ``(B, len(rates), H, W)`` softmax weights. Parameters for 64/64 and 4 rates: 184,900.
    """

    def __init__(
        self, in_channels: int = 64, out_channels: int = 64, rates: Sequence[int] = (1, 2, 4, 8)
    ) -> None:
        super().__init__()
        self.rates = tuple(int(r) for r in rates)
        if not self.rates or any(r < 1 for r in self.rates):
            raise ValueError(f"rates must be positive dilations, got {rates}")
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=r, dilation=r), nn.ReLU())
            for r in self.rates
        )
        self.weight_calc = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(out_channels, len(self.rates), 1),
            nn.ReLU(),
            nn.Softmax(dim=1),
        )

    def branch_weights(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight_calc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.branch_weights(x)
        out = 0
        for k, branch in enumerate(self.branches):
            out = out + weights[:, k : k + 1] * branch(x)
        return out


class CFA(nn.Module):
    """Contextual feature aggregation: ``MSFA(RAL(background, foreground))``.

    Args:
        in_channels, out_channels: 64 / 64 in CTSDG.
        kernel_size, rate, softmax_scale: of :class:`RegionAffinityLearning` (3, 2, 10).
        rates: MSFA dilations ((1, 2, 4, 8)).

    Shape:
        ``forward(background (B, C, H, W), foreground=None) -> (B, out_channels, H, W)``;
        ``foreground`` defaults to ``background`` (CTSDG calls ``CFA(x, x)``). ``H, W`` divisible
        by ``rate``.

    Example:
        >>> cfa = CFA(8, 8)
        >>> cfa(torch.rand(1, 8, 32, 32)).shape
        torch.Size([1, 8, 32, 32])
    """

    def __init__(
        self,
        in_channels: int = 64,
        out_channels: int = 64,
        kernel_size: int = 3,
        rate: int = 2,
        softmax_scale: float = 10.0,
        rates: Sequence[int] = (1, 2, 4, 8),
    ) -> None:
        super().__init__()
        self.ral = RegionAffinityLearning(kernel_size, rate, softmax_scale)
        self.msfa = MSFA(in_channels, out_channels, rates)

    def forward(
        self, background: torch.Tensor, foreground: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.msfa(self.ral(background, foreground))
