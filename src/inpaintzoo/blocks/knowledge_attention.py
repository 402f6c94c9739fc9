"""Knowledge-consistent attention (KCA) of RFR-Net.

Li, Wang, Zhang, Du, Tao, "Recurrent Feature Reasoning for Image Inpainting", CVPR 2020
(official code: jingyuanli001/RFR-Inpainting ``modules/Attention.py``; facts in
``specs/rfr.md`` §1). An independent implementation, vectorised over the batch, with the
cross-iteration state passed explicitly instead of stored on the module.

For a feature map ``x`` (C channels, N = H W positions) and positions ``p`` (query) and ``q``
(source):

* keys ``k_q = (x_q + eps) / ||x_q + eps||`` (only the keys are L2-normalised; ``eps = 1e-7``);
* similarity ``sim(q, p) = <k_q, x_p>`` (patch size 1: one position per patch);
* propagation: ``sim'(q, p) = sum_{p' in 3x3(p)} sim(q, p')`` over the 3x3 neighbourhood of
  the query position (zero outside the map; the official ``avg_pool2d(., 3, 1, 1) * 9``);
* fresh scores ``s_t(q, p) = softmax_q sim'(q, p)``: every position is a source, holes included;
* consistency with the previous recurrence (the "knowledge"): with the previous scores
  ``s_{t-1}`` and the previous iteration's valid mask ``m_{t-1}`` (1 = valid, at the query
  position), ``s(q, p) = (s_{t-1}(q, p) m_{t-1}(p) + s_t(q, p) r) / (m_{t-1}(p) + r)`` with
  ``r = |ratio| + eps`` (``ratio`` a learned scalar, initially 1). Where the previous iteration
  already had the position valid its scores persist (averaged with the fresh ones, weight
  ``1 : r``); where it was a hole the fresh scores are used alone;
* output ``a_p = sum_q s(q, p) k_q`` (the official transposed conv with the keys), then
  ``combiner(cat[a, x])``, a 1x1 conv ``2C -> C`` with bias.

The mask only decides where earlier scores persist: as in the official code, hole positions
are sources too (their features have been partly filled by the recurrent partial convolutions).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["KCAState", "KnowledgeConsistentAttention"]

#: ``(scores (B, N, H, W), valid (B, 1, H, W))`` carried from one recurrence to the next.
KCAState = tuple[torch.Tensor, torch.Tensor]


class KnowledgeConsistentAttention(nn.Module):
    """Knowledge-consistent attention with its combiner (RFR-Net's ``AttentionModule``).

    Args:
        channels: feature channels ``C`` (512 in RFR-Net).
        propagate_size: side of the square neighbourhood over which similarities are summed
            (official 3; 1 = no propagation).
        eps: the official ``1e-7`` added to the keys before normalising and to ``|ratio|``.

    Shape:
        ``forward(x, valid, previous=None) -> (out, state)``: ``x`` ``(B, C, H, W)``; ``valid``
        ``(B, 1, h, w)`` with 1 = valid (resized to ``H, W`` by nearest neighbour when its width
        differs, as the official code does); ``previous`` the ``state`` returned by the previous
        recurrence (``None`` on the first one); ``out`` ``(B, C, H, W)``; ``state`` =
        ``(scores (B, H W, H, W), valid (B, 1, H, W))``. Memory is ``O((H W)^2)`` per sample.

    Example:
        >>> kca = KnowledgeConsistentAttention(8)
        >>> x, valid = torch.rand(2, 8, 6, 6), torch.ones(2, 1, 6, 6)
        >>> out, state = kca(x, valid)
        >>> out, state = kca(x, valid, state)  # the next recurrence blends with the first
        >>> out.shape, state[0].shape
        (torch.Size([2, 8, 6, 6]), torch.Size([2, 36, 6, 6]))
    """

    def __init__(self, channels: int, propagate_size: int = 3, eps: float = 1e-7) -> None:
        super().__init__()
        if propagate_size < 1 or propagate_size % 2 == 0:
            raise ValueError(f"propagate_size must be odd and >= 1, got {propagate_size}")
        self.channels = int(channels)
        self.propagate_size = int(propagate_size)
        self.eps = float(eps)
        self.ratio = nn.Parameter(torch.ones(1))
        self.combiner = nn.Conv2d(2 * channels, channels, kernel_size=1)

    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, H W, C)``: ``(x_q + eps) / ||x_q + eps||`` per position."""
        keys = x.flatten(2).transpose(1, 2) + self.eps
        return keys / keys.pow(2).sum(dim=-1, keepdim=True).sqrt()

    def fresh_scores(self, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Softmax over sources of the propagated similarities: ``(B, N, H, W)``, summing to 1
        over dim 1 (the source ``q``) at every query position."""
        b, _, h, w = x.shape
        sim = torch.bmm(keys, x.flatten(2)).view(b, h * w, h, w)
        if self.propagate_size > 1:
            k = self.propagate_size
            sim = F.avg_pool2d(sim, k, stride=1, padding=k // 2) * float(k * k)
        return F.softmax(sim, dim=1)

    def blend(self, scores: torch.Tensor, previous: KCAState) -> torch.Tensor:
        """``(s_{t-1} m_{t-1} + s_t r) / (m_{t-1} + r)`` with ``r = |ratio| + eps``."""
        prev_scores, prev_valid = previous
        r = self.ratio.abs() + self.eps
        return (prev_scores * prev_valid + scores * r) / (prev_valid + r)

    def attend(
        self, x: torch.Tensor, valid: torch.Tensor, previous: KCAState | None = None
    ) -> tuple[torch.Tensor, KCAState]:
        """The attention alone (no combiner): ``(a (B, C, H, W), state)``."""
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"KnowledgeConsistentAttention expects (B, {self.channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        b, c, h, w = x.shape
        if valid.shape[-1] != w:
            valid = F.interpolate(valid, size=(h, w), mode="nearest")
        valid = valid.to(x.dtype)
        keys = self.keys(x)
        scores = self.fresh_scores(x, keys)
        if previous is not None:
            scores = self.blend(scores, previous)
        attended = torch.bmm(keys.transpose(1, 2), scores.flatten(2)).view(b, c, h, w)
        return attended, (scores, valid)

    def forward(
        self, x: torch.Tensor, valid: torch.Tensor, previous: KCAState | None = None
    ) -> tuple[torch.Tensor, KCAState]:
        attended, state = self.attend(x, valid, previous)
        return self.combiner(torch.cat([attended, x], dim=1)), state

    def extra_repr(self) -> str:
        return f"channels={self.channels}, propagate_size={self.propagate_size}"
