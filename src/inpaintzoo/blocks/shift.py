"""Shift-connection layer (Shift-Net), batched, any mask per sample.

Yan, Li, Li, Zuo, Shan. "Shift-Net: Image Inpainting via Deep Feature Rearrangement", ECCV 2018.
Official code: Zhaoyi-Yan/Shift-Net_pytorch ``models/shift_net/InnerShiftTriple.py``,
``InnerShiftTripleFunction.py``, ``util/NonparametricShift.py`` (``Batch_NonShift``),
``util/util.py`` (``cal_feat_mask``, ``cal_flag_given_mask_thred``). Facts from
``../shared/specs/shiftnet.md`` §1; independent implementation. Patches are 1x1
(``shift_sz = 1``, ``stride = 1``, ``mask_thred = 1``).

At the decoder level ``L - l`` the layer receives the decoder feature ``φ_{L-l}`` ("former") and
the encoder feature ``φ_l`` ("latter") of the same resolution. For every position ``y`` in the
latent hole, the nearest neighbour among the **known** positions of the encoder feature is found
by cosine similarity with the **decoder** feature at ``y``::

    x*(y) = argmax_{x known} <φ_{L-l}(y), φ_l(x)> / (|φ_{L-l}(y)| |φ_l(x)|)

and the shifted feature is ``φ_l(x*(y))`` at hole positions, 0 elsewhere. The layer returns
``cat(former, latter, shifted)`` (3 C channels). First maximum on ties (as ``torch.max``).

Gradients: ``argmax`` has none; the shifted feature is a gather of the encoder feature, so its
gradient flows back to the source positions, ``Wᵀ grad`` (the official custom backward with
``triple_weight = 1``); ``triple_weight`` scales that term. The decoder feature gets no gradient
through the shift, as in the official code.

Differences from the official layer: the mask is per sample (the official batch version needs the
same number of hole positions in every sample and the repository shares one mask across the
batch); a zero-norm feature gives cosine 0 instead of the official ``0 / 0 = NaN``; a sample with
no known position gets a zero shifted feature. Memory: a (B, N, N) cosine matrix, 4 MB per sample
at 32x32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ShiftConnection", "shift_connection", "shift_latent_mask"]


def shift_latent_mask(mask: torch.Tensor, levels: int = 3) -> torch.Tensor:
    """Shift-Net's latent hole mask (official ``util.cal_feat_mask`` + ``cal_flag_given_mask_thred``
    with ``mask_thred = 1``): nearest-neighbour downsampling of ``mask`` (B, 1, H, W), 1 = hole,
    to ``(H // 2**levels, W // 2**levels)`` (the top-left pixel of each block), then ``>= 0.5``.
    Returns a bool (B, 1, h, w) tensor."""
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"shift_latent_mask expects a (B, 1, H, W) mask, got {tuple(mask.shape)}")
    size = (mask.shape[-2] // 2**levels, mask.shape[-1] // 2**levels)
    return F.interpolate(mask.float(), size=size, mode="nearest") >= 0.5


def shift_connection(
    former: torch.Tensor,
    latter: torch.Tensor,
    hole: torch.Tensor,
    triple_weight: float = 1.0,
    return_indices: bool = False,
):
    """The shifted feature (see the module docstring).

    Args:
        former: decoder feature (B, C, H, W) (the queries).
        latter: encoder feature (B, C, H, W) (the sources).
        hole: (B, 1, H, W) latent hole mask (bool or {0, 1}).
        triple_weight: scale of the gradient the shifted feature sends to its sources.
        return_indices: also return the (B, N) source index of every position (raster order;
            meaningful at hole positions).

    Returns:
        shifted (B, C, H, W): ``latter`` at each hole position's nearest known neighbour, zero
        at known positions.
    """
    if former.shape != latter.shape or former.ndim != 4:
        raise ValueError(
            f"shift needs decoder and encoder features of one (B, C, H, W) shape, got "
            f"{tuple(former.shape)} and {tuple(latter.shape)}"
        )
    b, c, h, w = former.shape
    if hole.shape[0] != b or hole.shape[-2:] != (h, w):
        raise ValueError(
            f"shift latent mask of shape {tuple(hole.shape)} does not match the features "
            f"{tuple(former.shape)}"
        )
    n = h * w
    hole = hole.reshape(b, n).bool()
    query = former.detach().flatten(2).transpose(1, 2)  # (B, N, C)
    source = latter.flatten(2).transpose(1, 2)  # (B, N, C)
    keys = source.detach()
    num = torch.bmm(query, keys.transpose(1, 2))  # (B, N, N)
    den = torch.sqrt((query * query).sum(-1)[:, :, None] * (keys * keys).sum(-1)[:, None, :])
    cosine = torch.where(den > 0, num / den.clamp_min(1e-30), torch.zeros_like(num))
    cosine = cosine.masked_fill(hole[:, None, :], float("-inf"))
    index = cosine.argmax(dim=2)  # (B, N)
    gathered = torch.gather(source, 1, index[..., None].expand(b, n, c))
    usable = hole & (~hole).any(dim=1, keepdim=True)
    shifted = gathered * usable[..., None].to(gathered.dtype)
    if triple_weight != 1.0:
        shifted = triple_weight * shifted + (1.0 - triple_weight) * shifted.detach()
    shifted = shifted.transpose(1, 2).reshape(b, c, h, w)
    return (shifted, index) if return_indices else shifted


class ShiftConnection(nn.Module):
    """Shift-Net's shift-connection layer (no parameters).

    Shape:
        ``forward(former (B, C, H, W), latter (B, C, H, W), hole (B, 1, H, W)) ->
        (B, 3C, H, W) = cat(former, latter, shifted)``.

    Example:
        >>> shift = ShiftConnection()
        >>> hole = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
        >>> hole[..., :2, :2] = True
        >>> shift(torch.rand(2, 8, 4, 4), torch.rand(2, 8, 4, 4), hole).shape
        torch.Size([2, 24, 4, 4])
    """

    def __init__(self, triple_weight: float = 1.0) -> None:
        super().__init__()
        self.triple_weight = float(triple_weight)

    def forward(
        self, former: torch.Tensor, latter: torch.Tensor, hole: torch.Tensor
    ) -> torch.Tensor:
        shifted = shift_connection(former, latter, hole, self.triple_weight)
        return torch.cat([former, latter, shifted], dim=1)

    def extra_repr(self) -> str:
        return f"triple_weight={self.triple_weight}"
