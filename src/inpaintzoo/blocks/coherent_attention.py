"""Coherent semantic attention (CSA), batched.

Liu, Jiang, Xiao, Yang. "Coherent Semantic Attention for Image Inpainting", ICCV 2019
(arXiv:1905.12384). Official code: KumapowerLIU/CSA-inpainting ``models/CSA_model.py``,
``models/CSAFunction.py``, ``util/util.py``, ``util/NonparametricShift.py``,
``util/MaxCoord.py`` (facts from ``../shared/specs/csa.md`` §5; this is an independent
implementation). Patches are 1x1 feature vectors (``shift_sz = 1``, ``stride = 1``).

For one sample with features ``f_p`` (``p`` over the ``N = H W`` positions, raster order) and a
latent hole set ``M`` (the rest is known, ``K``):

1. **Search.** ``k̂_k = f_k / (|f_k| + 1e-8)`` for known ``k``; every position gets
   ``s_{p,k} = <f_p, k̂_k>`` (the query is *not* normalised, as in the official 1x1 conv),
   ``ind_p = argmax_k s_{p,k}`` and ``v_p = max_k s_{p,k}`` (first maximum on ties).
2. **Generation**, hole positions in raster order ``i_1 < i_2 < ...``: the first one copies its
   best known patch, ``m_1 = f_{ind}``; every later one mixes the previously generated patch
   with its own best match::

       D_t = <f̂_{i_t}, m_{t-1}>        (f̂ = f / (|f| + 1e-8), m unnormalised)
       m_t = D_t / (D_t + v_{i_t}) · m_{t-1} + v_{i_t} / (D_t + v_{i_t}) · f_{ind_{i_t}}

   so the attention row of ``i_t`` is ``D/(D+v)`` times the previous hole's row plus
   ``v/(D+v)`` at ``ind_{i_t}``: hole rows only ever weight **known** positions.
3. **Output** ``= A f``: known positions keep a one-hot row on themselves (unchanged features),
   hole positions get ``m_t``. (The official code takes the known positions' argmax, which is the
   position itself unless another known feature is exactly parallel to it; the identity is used
   here.)

**Gradient** (official ``CSAFunction.backward``): the attention is a constant and
``grad_in = grad_out + triple_weight · Aᵀ grad_out``: hole positions pass their gradient straight
through and the sources receive the attention-weighted gradient of the positions that copied them.

**Batching.** The search is one ``bmm`` for the whole batch (``(B, N, N)`` scores). The
generation is sequential by definition (each hole patch needs the previous one), so it runs one
step per hole position, for all samples of the batch at once: step ``t`` takes the ``t``-th hole
position of every sample (samples with fewer holes are masked out). There is no Python loop over
the batch; the number of steps is the largest number of latent hole positions in the batch
(at most 1024 at 32x32). Memory: the ``(B, N, N)`` attention, 4 MB per sample at 32x32 in float32.

A sample without any known latent position is returned unchanged (the official code cannot run
it). Any batch size, one mask per sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CoherentSemanticAttention",
    "coherent_attention_matrix",
    "coherent_semantic_attention",
    "csa_latent_mask",
]

_EPS = 1e-8


def csa_latent_mask(
    mask: torch.Tensor, levels: int = 3, threshold: float = 5.0 / 16.0
) -> torch.Tensor:
    """The CSA layer's latent hole mask (official ``util.cal_feat_mask``).

    ``mask`` (B, 1, H, W), 1 = hole, is convolved ``levels`` times with a 4x4, stride-2, pad-1
    kernel of 1/16 (zero padding) and thresholded ``> threshold`` -> bool ``(B, 1, H / 2**levels,
    W / 2**levels)``.
    """
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"csa_latent_mask expects a (B, 1, H, W) mask, got {tuple(mask.shape)}")
    x = mask.float()
    kernel = x.new_full((1, 1, 4, 4), 1.0 / 16.0)
    for _ in range(levels):
        x = F.conv2d(x, kernel, stride=2, padding=1)
    return x > threshold


@torch.no_grad()
def coherent_attention_matrix(feature: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """The attention ``A`` (B, N, N) of the CSA layer (rows: output positions, columns: source
    positions, raster order), computed as the module docstring says.

    Args:
        feature: (B, C, H, W) features.
        hole: (B, 1, H, W) or (B, H, W) latent hole mask (bool or {0, 1}).
    """
    b, c, h, w = feature.shape
    n = h * w
    f = feature.detach()
    if f.dtype in (torch.float16, torch.bfloat16):
        f = f.float()  # the search and the recurrence in float32 (float64 stays float64)
    f = f.flatten(2).transpose(1, 2)  # (B, N, C)
    hole = hole.reshape(b, n).bool()
    known = ~hole
    hole = hole & known.any(dim=1, keepdim=True)  # no known source: leave the sample unchanged
    known = ~hole
    fhat = f * (1.0 / (f.norm(dim=2, keepdim=True) + _EPS))  # (B, N, C), also the queries f̂
    scores = torch.bmm(f, fhat.transpose(1, 2))  # s[p, k] = <f_p, k̂_k>
    scores = scores.masked_fill(~known[:, None, :], float("-inf"))
    vmax, ind = scores.max(dim=2)  # (B, N)

    positions = torch.arange(n, device=f.device)
    attention = torch.diag_embed(known.to(f.dtype))  # known rows: one-hot on themselves
    counts = hole.sum(dim=1)
    steps = int(counts.max()) if b else 0
    if steps == 0:
        return attention
    # hole positions of each sample in raster order, padded with known positions at the end
    order = torch.argsort(positions + n * known.long(), dim=1)[:, :steps]  # (B, T)
    rows = f.new_zeros(b, steps, n)
    batch = torch.arange(b, device=f.device)
    prev_m = f.new_zeros(b, c)
    prev_row = f.new_zeros(b, n)
    started = torch.zeros(b, dtype=torch.bool, device=f.device)
    for t in range(steps):
        p = order[:, t]
        valid = t < counts
        v = vmax[batch, p]
        k = ind[batch, p]
        d_ad = (fhat[batch, p] * prev_m).sum(dim=1)
        denom = torch.where(started, d_ad + v, torch.ones_like(v))
        a = torch.where(started, d_ad / denom, torch.zeros_like(v))
        s = torch.where(started, v / denom, torch.ones_like(v))
        m = a[:, None] * prev_m + s[:, None] * f[batch, k]
        row = (a[:, None] * prev_row).scatter_add(1, k[:, None], s[:, None])
        rows[:, t] = row
        keep = valid[:, None]
        prev_m = torch.where(keep, m, prev_m)
        prev_row = torch.where(keep, row, prev_row)
        started = started | valid
    valid = torch.arange(steps, device=f.device)[None, :] < counts[:, None]  # (B, T)
    target = attention[batch[:, None], order]  # (B, T, N) current rows (zeros for holes)
    attention[batch[:, None], order] = torch.where(valid[..., None], rows, target)
    return attention


class _ApplyAttention(torch.autograd.Function):
    """``out = A f`` with the official gradient ``grad + triple_weight · Aᵀ grad``."""

    @staticmethod
    def forward(ctx, flat: torch.Tensor, attention: torch.Tensor, triple_weight: float):
        ctx.save_for_backward(attention)
        ctx.triple_weight = float(triple_weight)
        return torch.bmm(attention.to(flat.dtype), flat)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (attention,) = ctx.saved_tensors
        spread = torch.bmm(attention.to(grad.dtype).transpose(1, 2), grad)
        return grad + ctx.triple_weight * spread, None, None


def coherent_semantic_attention(
    feature: torch.Tensor,
    hole: torch.Tensor,
    triple_weight: float = 1.0,
    return_attention: bool = False,
):
    """Functional CSA layer: ``feature`` (B, C, H, W), ``hole`` (B, 1, H, W) latent mask ->
    (B, C, H, W) (and the (B, N, N) attention when ``return_attention``)."""
    if feature.ndim != 4:
        raise ValueError(f"CSA expects (B, C, H, W) features, got {tuple(feature.shape)}")
    b, c, h, w = feature.shape
    if hole.shape[0] != b or hole.shape[-2:] != (h, w):
        raise ValueError(
            f"CSA latent mask of shape {tuple(hole.shape)} does not match the features "
            f"{tuple(feature.shape)}"
        )
    attention = coherent_attention_matrix(feature, hole)
    flat = feature.flatten(2).transpose(1, 2)  # (B, N, C)
    out = _ApplyAttention.apply(flat, attention, triple_weight)
    out = out.transpose(1, 2).reshape(b, c, h, w)
    return (out, attention) if return_attention else out


class CoherentSemanticAttention(nn.Module):
    """The CSA layer as a module (no parameters).

    Args:
        triple_weight: weight of the attention-redistributed gradient (official 1).

    Shape:
        ``forward(feature (B, C, H, W), hole (B, 1, H, W) bool) -> (B, C, H, W)``; known positions
        unchanged, hole positions generated as the module docstring says.

    Example:
        >>> csa = CoherentSemanticAttention()
        >>> hole = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
        >>> hole[..., 1:3, 1:3] = True
        >>> out = csa(torch.rand(1, 8, 4, 4), hole)
        >>> out.shape
        torch.Size([1, 8, 4, 4])
    """

    def __init__(self, triple_weight: float = 1.0) -> None:
        super().__init__()
        self.triple_weight = float(triple_weight)

    def forward(self, feature: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return coherent_semantic_attention(feature, hole, self.triple_weight)

    def extra_repr(self) -> str:
        return f"triple_weight={self.triple_weight}"
