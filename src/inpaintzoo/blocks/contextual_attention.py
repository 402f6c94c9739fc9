"""Contextual attention (Yu et al., "Generative Image Inpainting with Contextual Attention",
CVPR 2018), shared by DeepFill v1 and DeepFill v2 (the same layer in both releases).

Facts from ``specs/deepfill_v1.md`` §4 (official JiahuiYu/generative_inpainting, ``inpaint_ops.py``
``contextual_attention``, identical on branches v1.0.0 and master); an independent
implementation. For a foreground map ``f`` (the positions to fill) and a background map ``b``
(the candidates, usually ``f`` itself) with a hole mask:

1. **raw patches**: ``2 rate x 2 rate`` windows of the full-resolution ``b`` at stride ``rate``
   (TF 'SAME' zero padding: ``rate // 2`` before, the rest after), one per position of the
   downscaled grid; they are what gets pasted;
2. ``f`` and ``b`` are downscaled by ``1 / rate`` with nearest sampling (every ``rate``-th pixel);
3. **keys**: the ``3 x 3`` windows (zero padding 1, stride 1) of the downscaled ``b``, each
   divided by ``max(||window||_2, 1e-4)``; the **score** of key ``l`` at position ``p`` is its
   dot product with the (unnormalised) ``3 x 3`` window of the downscaled ``f`` around ``p``;
4. **fuse** (attention propagation): seen as an image of (positions x keys) in raster order, the
   scores are convolved with a ``3 x 3`` identity kernel (summing each score with its diagonal
   neighbours, zero outside, the raster order wrapping across rows as in the official code), the
   (y, x) order of both axes is transposed, the identity convolution is applied again, and the
   order transposed back;
5. **mask**: a key is a valid source only when its ``3 x 3`` window of the downscaled hole mask
   has no hole (zero padding counts as known); scores of invalid keys are set to 0, the softmax
   over keys of ``10 x score`` is taken, and the weights of invalid keys are set to 0 (as the
   official code: zeroed scores still take part in the softmax, so the valid weights sum to
   less than 1 where most keys are holes). The mask applies after the fuse step, so a valid
   key's fused score includes its neighbours' scores, hole keys included; what is pasted never
   comes from the hole (a valid key's 4 x 4 window lies inside its hole-free 3 x 3 cells);
6. **paste**: the raw patches weighted by the attention are overlap-added with stride ``rate``
   (the official ``conv2d_transpose``) and divided by 4 (each pixel is covered by 4 patches).

Vectorised over the batch, with no Python loop over the samples: the official code loops over
them with ``conv2d`` (keys as kernels, ``9 C`` multiply-adds per score) and ``conv2d_transpose``
(raw patches as kernels, ``16 C`` per weight). Here the same sums are regrouped for the whole
batch (``B x Nf x Nb`` score and weight matrices, ``Nf``/``Nb`` the downscaled foreground /
background cells):

* scores: one batched product of the per-cell features (``C`` per score), then the ``3 x 3``
  window sum as diagonal shifted additions that move the position and the key together, and the
  division by the keys' norms (from a box filter of the squared features);
* fuse: shifted additions in row-major order, then in column-major order on the same memory
  (rectangles with and without the carry into the next column) instead of two transposes;
* paste: output pixel ``rate t + o`` only ever receives phase ``o`` of the background (pixels
  ``rate m + o``), so each of the ``rate^2`` output phases is one batched product of that phase
  with the weights summed along two diagonals (``4 C`` per weight instead of ``16 C``).

The shifted additions are custom autograd functions whose backward is the same sum with negated
shifts (no zero-filled slice gradients); under ONNX tracing they are plain shifted slices of a
padded copy, so the block exports with dynamic sizes (no ``fold``). Tests check equality with a
written-out per-sample reference of the official formulation, values and gradients (float64).

Differences from the official layer (documented in docs/methods/deepfill_v1.md):

* **one mask per sample** (the official layer takes one mask for the whole batch, ``m[0]``);
* the mask is reduced to the matching grid by **max pooling** by default (any hole pixel in a
  cell makes the cell a hole), so a source patch never contains a hole pixel, thin strokes
  included; ``mask_pooling="nearest"`` samples every ``rate``-th pixel as the official resize
  does (which can miss strokes thinner than the sampling step). Only the official *nearest* kind
  of sampling is reproduced, not TF1's ``align_corners=True`` index rounding;
* **any size**: ``f`` and ``b`` are zero-padded at the bottom/right to a multiple of ``rate``
  (padded cells count as holes, never sources) and the output is cropped back;
* the colour-coded flow image of the official layer (visualisation only) is not produced;
  :meth:`ContextualAttention.offsets` gives the argmax source of each position instead.

Memory (float32): the score matrix is ``(H W / rate^2)^2`` per sample, ``1024 x 1024`` (4 MiB)
for DeepFill's 64 x 64 attention features at 256 px. Measured on CPU at 64 x 64 features
(256 px images): the tensors saved for backward take 27 MiB per sample at C = 96 (DeepFill v2)
and 28 MiB at C = 128 (DeepFill v1); a forward + backward of a batch of 16 grows the process by
about 0.7 GiB at its peak (about 45 MiB per sample). The matrices grow with the fourth power of
the side: 64 MiB each per sample at 512 px. Speed (``benchmarks/contextual_attention.py``):
forward + backward of a batch of 16 at C = 96 is about 3x faster than the official per-sample
formulation on a (shared, memory-bound) CPU; on such a CPU one sample at a time through this
block is as fast as the batch (each sample's 4 MiB matrices stay in cache); the batch pays on a
GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MASK_POOLING", "ContextualAttention"]

#: How the hole mask is reduced to the matching grid (see the module docstring).
MASK_POOLING: tuple[str, ...] = ("max", "nearest")


def _shifted_sum(x: torch.Tensor, dims: tuple[int, int], offsets: tuple[int, ...]) -> torch.Tensor:
    """``out[.., t, .., m, ..] = sum_{d in offsets} x[.., t + d, .., m + d, ..]`` along the two
    dimensions ``dims`` (zero outside), written into narrowed views of one output tensor: no
    padded copies, no permutes."""
    a, b = dims
    x = x.contiguous()
    shifted = [d for d in offsets if d != 0]
    if 0 in offsets:
        if not shifted:
            return x.clone()
        # x plus the first shifted term in one pass where both exist, x alone elsewhere
        out = torch.empty_like(x)
        d = shifted.pop(0)
        na, nb = x.shape[a], x.shape[b]
        la, lb = max(0, na - abs(d)), max(0, nb - abs(d))
        src, dst = (d, 0) if d > 0 else (0, -d)
        if la and lb:
            torch.add(
                x.narrow(a, dst, la).narrow(b, dst, lb),
                x.narrow(a, src, la).narrow(b, src, lb),
                out=out.narrow(a, dst, la).narrow(b, dst, lb),
            )
        for start, length in ((0, dst), (dst + la, na - dst - la)):  # rows outside the region
            if length > 0:
                out.narrow(a, start, length).copy_(x.narrow(a, start, length))
        for start, length in ((0, dst), (dst + lb, nb - dst - lb)):  # its rows' other columns
            if length > 0 and la:
                inside = (out.narrow(a, dst, la), x.narrow(a, dst, la))
                inside[0].narrow(b, start, length).copy_(inside[1].narrow(b, start, length))
    else:
        out = torch.zeros_like(x)
    for d in shifted:
        la, lb = x.shape[a] - abs(d), x.shape[b] - abs(d)
        if la <= 0 or lb <= 0:
            continue
        src, dst = (d, 0) if d > 0 else (0, -d)
        out.narrow(a, dst, la).narrow(b, dst, lb).add_(x.narrow(a, src, la).narrow(b, src, lb))
    return out


class _DiagonalSum(torch.autograd.Function):
    """:func:`_shifted_sum` with its adjoint (the same sum with negated offsets) as backward:
    one pass each way instead of autograd's zero-filled slice gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, dims: tuple[int, int], offsets: tuple[int, ...]):
        ctx.dims, ctx.offsets = dims, offsets
        return _shifted_sum(x, dims, offsets)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _shifted_sum(grad, ctx.dims, tuple(-d for d in ctx.offsets)), None, None


def _diagonal_sum(x: torch.Tensor, dims: tuple[int, int], offsets) -> torch.Tensor:
    """``out[.., t, .., m, ..] = sum_{d in offsets} x[.., t + d, .., m + d, ..]`` along ``dims``,
    zero outside. Traced (ONNX export) as shifted slices of a zero-padded copy."""
    offsets = tuple(offsets)
    if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
        return _DiagonalSum.apply(x, dims, offsets)
    perm = [i for i in range(x.ndim) if i not in dims] + list(dims)
    moved = x.permute(perm)
    before, after = max(0, -min(offsets)), max(0, max(offsets))
    n, m = moved.shape[-2:]
    padded = F.pad(moved, (before, after, before, after))
    out = None
    for d in offsets:
        term = padded[..., before + d : before + d + n, before + d : before + d + m]
        out = term if out is None else out + term
    return out.permute([perm.index(i) for i in range(x.ndim)])


def _wraps(n_fast: int, n_slow: int, d: int) -> list[tuple[int, int, int, int, int, int]]:
    """For a shift by ``d`` in the order ``slow * n_fast + fast`` (``|d| <= n_fast``): the two
    rectangles ``(dst fast, src fast, length, dst slow, src slow, length)`` without and with a
    carry into the slow index."""
    if d >= 0:
        return [(0, d, n_fast - d, 0, 0, n_slow), (n_fast - d, 0, d, 0, 1, n_slow - 1)]
    e = -d
    return [(e, 0, n_fast - e, 0, 0, n_slow), (0, n_fast - e, e, 1, 0, n_slow - 1)]


def _column_major_shifted_sum(x: torch.Tensor, offsets: tuple[int, ...]) -> torch.Tensor:
    """``x (B, hf, wf, hb, wb)``: the diagonal sum of :func:`_shifted_sum` in the *column-major*
    raster orders ``x * h + y`` of positions and keys (the official fuse's second pass, after
    its transposes), on the row-major layout: each shift is four rectangle additions (with or
    without a carry into the next column, for the positions and for the keys)."""
    x = x.contiguous()
    out = x.clone() if 0 in offsets else torch.zeros_like(x)
    _, hf, wf, hb, wb = x.shape
    for d in offsets:
        if d == 0:
            continue
        for fd, fs, fl, sd, ss, sl in _wraps(hf, wf, d):
            if fl <= 0 or sl <= 0:
                continue
            for kd, ks, kl, md, ms, ml in _wraps(hb, wb, d):
                if kl <= 0 or ml <= 0:
                    continue
                dst = out.narrow(1, fd, fl).narrow(2, sd, sl).narrow(3, kd, kl).narrow(4, md, ml)
                dst.add_(x.narrow(1, fs, fl).narrow(2, ss, sl).narrow(3, ks, kl).narrow(4, ms, ml))
    return out


class _ColumnMajorDiagonalSum(torch.autograd.Function):
    """:func:`_column_major_shifted_sum` with its adjoint (negated offsets) as backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, offsets: tuple[int, ...]):
        ctx.offsets = offsets
        return _column_major_shifted_sum(x, offsets)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _column_major_shifted_sum(grad, tuple(-d for d in ctx.offsets)), None


class ContextualAttention(nn.Module):
    """Masked contextual attention with attention propagation, batched (no parameters).

    Args:
        kernel_size: key/query window on the downscaled grid (3; odd).
        rate: downscaling factor, raw-patch stride; raw patches are ``2 rate`` wide (2).
        softmax_scale: multiplier of the scores before the softmax (10).
        fuse: apply the attention propagation (True).
        fuse_kernel: size of the identity kernel of the propagation (3; odd).
        norm_eps: lower bound of a key's L2 norm (1e-4).
        mask_pooling: ``max`` (default: a cell with any hole pixel is a hole) or ``nearest``
            (the official sampling of every ``rate``-th pixel).

    Shape:
        ``forward(foreground (B, C, Hf, Wf), background (B, C, Hb, Wb) = foreground,
        mask (B or 1, 1, Hb, Wb) = None) -> (B, C, Hf, Wf)``; ``mask`` is 1 in the hole of the
        background (0/1 values; anything > 0 counts as hole) at the background's resolution.
        Any H, W >= 1. :meth:`attention` gives the ``(B, Nf, Nb)`` weights over the background's
        keys (raster order on the downscaled grids, ``Nf = ceil(Hf/rate) ceil(Wf/rate)``).
        Values: any real features; the output is a convex-like combination (weights sum to <= 1)
        of background values, divided by 4 and overlap-added.

    Example:
        >>> ca = ContextualAttention()
        >>> x, m = torch.rand(2, 8, 32, 32), torch.zeros(2, 1, 32, 32)
        >>> m[..., 8:24, 8:24] = 1
        >>> ca(x, mask=m).shape
        torch.Size([2, 8, 32, 32])
    """

    def __init__(
        self,
        kernel_size: int = 3,
        rate: int = 2,
        softmax_scale: float = 10.0,
        fuse: bool = True,
        fuse_kernel: int = 3,
        norm_eps: float = 1e-4,
        mask_pooling: str = "max",
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        if fuse_kernel < 1 or fuse_kernel % 2 == 0:
            raise ValueError(f"fuse_kernel must be odd and >= 1, got {fuse_kernel}")
        if rate < 1:
            raise ValueError(f"rate must be >= 1, got {rate}")
        if mask_pooling not in MASK_POOLING:
            raise ValueError(f"mask_pooling must be one of {MASK_POOLING}, got {mask_pooling!r}")
        self.kernel_size = int(kernel_size)
        self.rate = int(rate)
        self.softmax_scale = float(softmax_scale)
        self.fuse = bool(fuse)
        self.fuse_kernel = int(fuse_kernel)
        self.norm_eps = float(norm_eps)
        self.mask_pooling = mask_pooling

    # ------------------------------------------------------------------ helpers
    def _pad_to_rate(self, x: torch.Tensor, value: float = 0.0) -> torch.Tensor:
        r = self.rate
        h, w = x.shape[-2:]
        ph, pw = (-h) % r, (-w) % r
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), value=value)
        return x

    def _downscale(self, x: torch.Tensor) -> torch.Tensor:
        r = self.rate
        return x[:, :, ::r, ::r] if r > 1 else x

    def _valid_keys(self, mask: torch.Tensor | None, background: torch.Tensor) -> torch.Tensor:
        """``(B or 1, 1, Nb)``: 1 where the key's window of the downscaled mask has no hole
        (``background`` unpadded; cells added by the padding to a multiple of ``rate`` are
        holes)."""
        if mask is None:
            mask = torch.zeros_like(background[:1, :1])
        if mask.ndim != 4 or mask.shape[1] != 1:
            raise ValueError(f"mask must be (B, 1, H, W), got {tuple(mask.shape)}")
        if mask.shape[-2:] != background.shape[-2:]:
            raise ValueError(
                f"mask of size {tuple(mask.shape[-2:])} must have the background's size "
                f"{tuple(background.shape[-2:])}"
            )
        hole = self._pad_to_rate((mask > 0).to(background.dtype), value=1.0)
        r = self.rate
        if self.mask_pooling == "max" and r > 1:
            hole = F.max_pool2d(hole, r, r)
        else:
            hole = self._downscale(hole)
        k = self.kernel_size
        # max_pool pads with -inf: outside the map counts as known, as the official zero padding
        window_hole = F.max_pool2d(hole, k, 1, k // 2) if k > 1 else hole
        return (window_hole.flatten(2) == 0).to(background.dtype)

    def _fuse(self, scores: torch.Tensor, f_grid, b_grid) -> torch.Tensor:
        (hf, wf), (hb, wb) = f_grid, b_grid
        batch = scores.shape[0]
        k = self.fuse_kernel
        offsets = range(-(k // 2), k // 2 + 1)
        scores = _diagonal_sum(scores, (1, 2), offsets)  # in raster order: wraps across rows
        # the same propagation along the other spatial axis: the official code transposes (y, x)
        # of both orders, fuses and transposes back; done in place of the transposes when every
        # shift carries into the next column at most once
        grids = (batch, hf, wf, hb, wb)
        offsets = tuple(offsets)
        tracing = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        if not tracing and max(abs(d) for d in offsets) <= min(hf, hb):
            scores = _ColumnMajorDiagonalSum.apply(scores.reshape(grids), offsets)
            return scores.reshape(batch, hf * wf, hb * wb)
        swap = (0, 2, 1, 4, 3)
        scores = scores.reshape(grids).permute(swap).reshape(batch, -1, hb * wb)
        scores = _diagonal_sum(scores, (1, 2), offsets)
        return scores.reshape(batch, wf, hf, wb, hb).permute(swap).reshape(batch, -1, hb * wb)

    # ------------------------------------------------------------------ API
    def attention(
        self,
        foreground: torch.Tensor,
        background: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attention weights ``(B, Nf, Nb)``: positions of the downscaled foreground (rows) over
        keys of the downscaled background (columns), raster order; invalid keys get 0."""
        background = foreground if background is None else background
        self._check(foreground, background)
        f = self._downscale(self._pad_to_rate(foreground))
        b_padded = self._pad_to_rate(background)
        b = self._downscale(b_padded)
        batch, _, hf, wf = f.shape
        hb, wb = b.shape[-2:]
        k = self.kernel_size
        window = range(-(k // 2), k // 2 + 1)
        # score(p, l) = <f window at p, b window at l> / ||b window at l||: the k x k window sum
        # of the per-cell correlation f(p) . b(l), moving p and l together (one bmm of C, not
        # of C k k)
        correlation = torch.bmm(f.flatten(2).transpose(1, 2), b.flatten(2))  # (B, Nf, Nb)
        scores = correlation.reshape(batch, hf, wf, hb, wb)  # positions (y, x) x keys (y, x)
        scores = _diagonal_sum(_diagonal_sum(scores, (1, 3), window), (2, 4), window)
        energy = F.avg_pool2d(b.square().sum(1, keepdim=True), k, 1, k // 2) * (k * k)
        norms = energy.sqrt().clamp_min(self.norm_eps).view(batch, 1, 1, hb, wb)
        scores = (scores / norms).reshape(batch, hf * wf, hb * wb)
        if self.fuse and self.fuse_kernel > 1:
            scores = self._fuse(scores, f.shape[-2:], b.shape[-2:])
        valid = self._valid_keys(mask, background)  # (B or 1, 1, Nb)
        return F.softmax(scores * (valid * self.softmax_scale), dim=-1) * valid

    def offsets(
        self,
        foreground: torch.Tensor,
        background: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, 2, hf, wf)`` (dy, dx) on the downscaled grid from each foreground position to
        its most attended background key (the official layer's flow, before colour coding)."""
        background = foreground if background is None else background
        weights = self.attention(foreground, background, mask)
        hb_wb = self._downscale(self._pad_to_rate(background)).shape[-2:]
        hf, wf = self._downscale(self._pad_to_rate(foreground)).shape[-2:]
        best = weights.argmax(dim=-1)  # (B, Nf)
        src_y, src_x = best // hb_wb[1], best % hb_wb[1]
        grid_y = torch.arange(hf, device=best.device).repeat_interleave(wf)
        grid_x = torch.arange(wf, device=best.device).repeat(hf)
        flow = torch.stack([src_y - grid_y, src_x - grid_x], dim=1)
        return flow.view(-1, 2, hf, wf)

    def forward(
        self,
        foreground: torch.Tensor,
        background: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        background = foreground if background is None else background
        weights = self.attention(foreground, background, mask)  # (B, Nf, Nb)
        b = self._pad_to_rate(background)
        r = self.rate
        hf, wf = (n // r for n in self._pad_to_rate(foreground).shape[-2:])
        out = self._paste(weights, b, (hf, wf), (b.shape[-2] // r, b.shape[-1] // r))
        return out[:, :, : foreground.shape[-2], : foreground.shape[-1]]

    def _paste(self, weights: torch.Tensor, background: torch.Tensor, f_grid, b_grid):
        """The official ``conv2d_transpose`` of the weights with the ``2r x 2r`` raw patches at
        stride ``r`` ('SAME': ``r // 2`` before), divided by 4, computed per output phase.

        Output pixel ``r t + o`` (one axis) receives raw pixel ``k`` of key ``l`` pasted at
        position ``p`` when ``r p + k - r // 2 = r t + o``, and that raw pixel is background
        pixel ``r (l + t - p) + o``: phase ``o`` of the background at key ``l + t - p``. So each
        output phase is ONE product of the background's phase with the weights summed along
        two diagonals (``d = t - p``, the 2 values for which ``0 <= r d + o + r // 2 < 2 r``):
        ``r^2`` products of ``C x Nb x Nf`` instead of one of ``4 r^2 C x Nb x Nf``.
        """
        r, before = self.rate, self.rate // 2
        (hf, wf), (hb, wb) = f_grid, b_grid
        batch, channels = background.shape[:2]
        grid = weights.reshape(batch, hf, wf, hb, wb)

        def shifts(o: int) -> list[int]:
            return [-d for d in (-1, 0, 1) if 0 <= r * d + o + before < 2 * r]

        rows = []
        for oy in range(r):
            along_y = _diagonal_sum(grid, (1, 3), shifts(oy))
            cols = []
            for ox in range(r):
                summed = _diagonal_sum(along_y, (2, 4), shifts(ox)).reshape(batch, hf * wf, -1)
                phase = background[:, :, oy::r, ox::r].reshape(batch, channels, hb * wb)
                # (B, Nf, C): weights on the left keep every gradient of the big matrix contiguous
                cols.append(torch.bmm(summed, phase.transpose(1, 2)))
            rows.append(torch.stack(cols, dim=-1))  # (B, Nf, C, r)
        out = torch.stack(rows, dim=-2).reshape(batch, hf, wf, channels, r, r)
        out = out.permute(0, 3, 1, 4, 2, 5).reshape(batch, channels, hf * r, wf * r)
        return out / 4.0

    @staticmethod
    def _check(foreground: torch.Tensor, background: torch.Tensor) -> None:
        if foreground.ndim != 4 or background.ndim != 4:
            raise ValueError(
                "ContextualAttention expects (B, C, H, W) maps, got "
                f"{tuple(foreground.shape)} and {tuple(background.shape)}"
            )
        if foreground.shape[:2] != background.shape[:2]:
            raise ValueError(
                "foreground and background need the same batch size and channels, got "
                f"{tuple(foreground.shape)} and {tuple(background.shape)}"
            )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, rate={self.rate}, "
            f"softmax_scale={self.softmax_scale:g}, fuse={self.fuse}, "
            f"mask_pooling={self.mask_pooling!r}"
        )
