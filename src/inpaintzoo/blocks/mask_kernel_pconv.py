"""Partial convolution normalised through a stored mask kernel (the naoto0804 / MEDFE variant).

The partial convolution of the unofficial PConv re-implementation that MEDFE copied
(naoto0804/pytorch-inpainting-with-partial-conv ``net.py``; KumapowerLIU/Rethinking-Inpainting-
MEDFE ``models/PCconv.py`` ``PartialConv``) differs from NVIDIA's rule
(:class:`~inpaintzoo.blocks.PartialConv2d`) in two ways:

* the window count is ``count = conv(M, K)`` with a frozen **mask kernel** ``K`` of the conv's
  full weight shape ``(out, in, kh, kw)``, created all-ones, and
* the output is ``conv(X * M) / count`` (no ``sum(1)`` window-size factor), 0 where
  ``count == 0``.

``K`` is a persistent buffer here (not a parameter: it is never trained), so it travels in
state dicts. That matters for MEDFE: its official training initialiser
(``networks.init_weights``) visits the frozen mask convs too and overwrites the ones with
N(0, 0.02), so the released MEDFE weights carry random mask kernels, and their outputs can
only be reproduced with those kernels. A new layer starts with the all-ones kernel (the
authors' stated intent, ``constant_(mask_conv.weight, 1.0)``), which makes ``count`` the
number of valid inputs in the window.

The mask is one channel broadcast over the input channels (MEDFE's masks are). The count is
still computed as the official layer computes it, a full convolution of the mask repeated over
the input channels with ``K``: with a random stored kernel the window sums can nearly cancel,
and summing in another order (e.g. over the input channels first) changes ``1 / count`` by up
to ~1e-3 relative there. The updated mask is 1 where the window holds any valid input (for the
all-ones kernel exactly the official ``count != 0``; for a stored kernel the official
per-channel mask differs only where a sum of kernel weights over a non-empty window is
exactly 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inpaintzoo.blocks.partial_conv import PartialConv2d

__all__ = ["MaskKernelPartialConv2d"]


class MaskKernelPartialConv2d(PartialConv2d):
    """``forward(x, valid) -> (out, new_valid)`` with ``out = conv(x * valid) / conv(valid, K)``.

    A :class:`~inpaintzoo.blocks.PartialConv2d` (same ``weight``/``bias`` keys, zero padding)
    with a single-channel mask and a persistent ``mask_weight`` buffer ``K`` of shape
    ``(out_channels, in_channels, kh, kw)`` (all ones when created).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, bias: as
            :class:`torch.nn.Conv2d` (``groups`` must be 1).

    Shape:
        ``x`` ``(B, in_channels, H, W)``, ``valid`` ``(B, 1, H, W)`` (1 = valid) or ``None``
        (all valid); ``out`` ``(B, out_channels, H', W')``; ``new_valid`` ``(B, 1, H', W')``.

    Example:
        >>> pconv = MaskKernelPartialConv2d(4, 8, 3, padding=1, bias=False)
        >>> out, new_valid = pconv(torch.rand(1, 4, 8, 8), torch.ones(1, 1, 8, 8))
        >>> out.shape, new_valid.shape, tuple(pconv.mask_weight.shape)
        (torch.Size([1, 8, 8, 8]), torch.Size([1, 1, 8, 8]), (8, 4, 3, 3))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=bias,
            multi_channel=False,
        )
        self.register_buffer("mask_weight", torch.ones_like(self.weight, requires_grad=False))

    def window_counts(self, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``valid (B, 1, H, W) -> (count (B, out, H', W'), new_valid (B, 1, H', W'))``:
        ``count = conv(valid repeated over the input channels, K)``, float32, no gradient."""
        device_type = "cpu" if valid.device.type == "meta" else valid.device.type
        geometry = dict(stride=self.stride, padding=self.padding, dilation=self.dilation)
        with torch.no_grad(), torch.autocast(device_type=device_type, enabled=False):
            valid = valid.to(torch.float32)
            kernel = self.mask_weight.to(device=valid.device, dtype=torch.float32)
            repeated = valid.expand(-1, self.in_channels, -1, -1)
            count = F.conv2d(repeated, kernel, **geometry)
            ones = self.mask_kernel.to(device=valid.device, dtype=torch.float32)
            new_valid = (F.conv2d(valid, ones, **geometry) > 0).to(torch.float32)
        return count, new_valid

    def mask_update(self, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``valid -> (ratio, new_valid)`` with ``ratio = 1 / count`` (0 where the count is 0),
        the interface of :meth:`PartialConv2d.mask_update`."""
        count, new_valid = self.window_counts(valid)
        nonzero = count != 0
        return torch.where(nonzero, 1.0 / torch.where(nonzero, count, 1.0), 0.0), new_valid

    def forward(
        self, x: torch.Tensor, valid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, valid) -> (out, new_valid)``; divides by the count (as the official layer)
        rather than multiplying by its reciprocal: the two differ in the last bit."""
        self._check(x, valid)
        if valid is None:
            valid = x.new_ones((x.shape[0], 1, x.shape[2], x.shape[3]))
        count, new_valid = self.window_counts(valid)
        raw = self._conv_forward(x * valid.to(x.dtype), self.weight, None)
        count = count.to(raw.dtype)
        nonzero = count != 0
        out = raw / torch.where(nonzero, count, torch.ones_like(count))
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return torch.where(nonzero, out, torch.zeros_like(out)), new_valid
