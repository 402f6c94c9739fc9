"""Partial convolution (Liu et al., "Image Inpainting for Irregular Holes Using Partial
Convolutions", ECCV 2018) and the conv + norm + activation block built on it.

Facts from ``specs/pconv.md`` §1 (NVIDIA/partialconv ``models/partialconv2d.py``) and
``specs/ctsdg.md`` §3.1; this is an independent implementation.

**Mask polarity inside this block: 1 = valid (known), 0 = hole** — the partial-convolution
literature's convention, and the opposite of inpaintzoo's public masks (1 = hole). Networks
convert once at their boundary (``valid = 1 - mask``).

For a window with features ``X``, valid mask ``M``, weights ``W`` and bias ``b``:

* ``count = sum(M)`` over the window (a conv of the mask with an all-ones kernel, same stride,
  padding and dilation; zero padding counts as hole);
* ``ratio = window_size / (count + eps)`` where ``window_size = in_ch/groups * kh * kw`` for a
  multi-channel mask (``kh * kw`` for a single-channel one), then ``ratio *= clamp(count, 0, 1)``;
* without bias ``out = conv(X * M) * ratio``; with bias ``out = ((conv(X * M) - b) * ratio + b) *
  clamp(count, 0, 1)``; so a window without any valid input gives exactly 0 (bias included);
* the updated mask is ``clamp(count, 0, 1)``: a location becomes valid when any input of its
  window was valid (for binary masks: a max-pool "dilation" of the valid region). It has
  ``out_channels`` channels for a multi-channel mask and 1 channel otherwise.

Unlike the NVIDIA layer, nothing is cached between calls (no stale ratio when a layer is reused
with a new mask of the same size), and the mask count always runs in float32 (outside autocast):
counts up to ``in_ch * k * k`` stay exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.blocks.layers import activation as make_activation
from inpaintzoo.blocks.layers import norm2d

__all__ = ["PartialConv2d", "PartialConvBlock"]

_IntPair = int | tuple[int, int]


def _pair(value: _IntPair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class PartialConv2d(nn.Conv2d):
    """Partial convolution: ``forward(x, valid) -> (out, new_valid)``.

    A subclass of :class:`torch.nn.Conv2d` (same parameters and state-dict keys: ``weight`` and
    optional ``bias``; the all-ones mask kernel is a non-persistent ``(1, 1, kh, kw)`` buffer,
    never a parameter), so weight-initialisation helpers treat it as a conv.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as
            :class:`torch.nn.Conv2d` (zero padding only).
        multi_channel: the mask has ``in_channels`` channels (NVIDIA ``multi_channel=True``, as
            CTSDG, PConv-Net, LBAM, RFR use it); else it has 1 channel, broadcast over the input.
        eps: added to the window count before dividing (1e-8 officially; 1e-6 for fp16).

    Shape:
        ``x``: ``(B, in_channels, H, W)``; ``valid``: ``(B, in_channels, H, W)`` (multi-channel)
        or ``(B, 1, H, W)``, values in ``[0, 1]`` (1 = valid), or ``None`` (all valid: only the
        zero-padded border is renormalised). Returns ``out`` ``(B, out_channels, H', W')`` and
        ``new_valid`` ``(B, out_channels or 1, H', W')`` with the usual conv arithmetic for
        ``H'``. The new mask carries no gradient.

    Example:
        >>> pconv = PartialConv2d(3, 8, 3, padding=1)
        >>> x, valid = torch.rand(1, 3, 16, 16), torch.ones(1, 3, 16, 16)
        >>> out, new_valid = pconv(x, valid)
        >>> out.shape, new_valid.shape
        (torch.Size([1, 8, 16, 16]), torch.Size([1, 8, 16, 16]))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _IntPair,
        stride: _IntPair = 1,
        padding: _IntPair = 0,
        dilation: _IntPair = 1,
        groups: int = 1,
        bias: bool = True,
        multi_channel: bool = True,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
            padding_mode="zeros",
        )
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.multi_channel = bool(multi_channel)
        self.eps = float(eps)
        kh, kw = _pair(kernel_size)
        # The official mask kernel is ones(out, in/groups, kh, kw) (multi-channel) or
        # ones(1, 1, kh, kw): every output channel of a group gets the same count, so the count
        # is computed once per group from the channel-summed mask with a (1, 1, kh, kw) kernel
        # (identical numbers, a fraction of the cost) and broadcast to the output channels.
        if self.multi_channel:
            self.window_size = float(in_channels // groups * kh * kw)
        else:
            self.window_size = float(kh * kw)
        self.register_buffer("mask_kernel", torch.ones(1, 1, kh, kw), persistent=False)

    def _check(self, x: torch.Tensor, valid: torch.Tensor | None) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"PartialConv2d expects x of shape (B, {self.in_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        if valid is None:
            return
        channels = self.in_channels if self.multi_channel else 1
        kind = "multi-channel" if self.multi_channel else "single-channel"
        if (
            valid.ndim != 4
            or valid.shape[1] != channels
            or valid.shape[0] != x.shape[0]
            or valid.shape[-2:] != x.shape[-2:]
        ):
            raise ValueError(
                f"PartialConv2d ({kind}) expects a valid mask of shape "
                f"({x.shape[0]}, {channels}, {x.shape[2]}, {x.shape[3]}) (1 = valid), "
                f"got {tuple(valid.shape)}"
            )

    def mask_update(self, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``valid -> (ratio, new_valid)``, both float32 ``(B, out_channels, H', W')`` for a
        multi-channel mask (an expanded view: channels of a group share one count) and
        ``(B, 1, H', W')`` otherwise."""
        device_type = "cpu" if valid.device.type == "meta" else valid.device.type
        with torch.no_grad(), torch.autocast(device_type=device_type, enabled=False):
            valid = valid.to(torch.float32)
            groups = self.groups if self.multi_channel else 1
            if self.multi_channel:
                b, c, h, w = valid.shape
                valid = valid.reshape(b, groups, c // groups, h, w).sum(dim=2)
            kernel = self.mask_kernel.to(device=valid.device, dtype=torch.float32)
            count = F.conv2d(
                valid,
                kernel.expand(groups, 1, -1, -1),
                stride=self.stride,
                padding=self.padding,
                dilation=self.dilation,
                groups=groups,
            )
            new_valid = count.clamp(0.0, 1.0)
            ratio = self.window_size / (count + self.eps) * new_valid
            if self.multi_channel:
                per_group = self.out_channels // groups
                if groups == 1:
                    shape = (count.shape[0], self.out_channels, *count.shape[-2:])
                    ratio, new_valid = ratio.expand(shape), new_valid.expand(shape)
                else:
                    ratio = ratio.repeat_interleave(per_group, dim=1)
                    new_valid = new_valid.repeat_interleave(per_group, dim=1)
        return ratio, new_valid

    def forward(
        self, x: torch.Tensor, valid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, valid) -> (out, new_valid)``; see the class docstring for shapes."""
        self._check(x, valid)
        if valid is None:
            channels = self.in_channels if self.multi_channel else 1
            valid = x.new_ones((x.shape[0], channels, x.shape[2], x.shape[3]))
            masked = x
        else:
            masked = x * valid.to(x.dtype)
        ratio, new_valid = self.mask_update(valid)
        raw = self._conv_forward(masked, self.weight, None)
        ratio = ratio.to(raw.dtype)
        out = raw * ratio
        if self.bias is not None:
            out = (out + self.bias.view(1, -1, 1, 1)) * new_valid.to(raw.dtype)
        return out, new_valid

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, multi_channel={self.multi_channel}, eps={self.eps:g}"


class PartialConvBlock(nn.Module):
    """:class:`PartialConv2d` -> optional BatchNorm2d -> activation (CTSDG's ``PConvBNActiv``,
    the PConv-Net encoder/decoder layer).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation: of the conv
            (``padding=None`` means ``dilation * (kernel_size // 2)``).
        bn: add ``BatchNorm2d(out_channels)`` after the conv.
        activation: a name of :func:`~inpaintzoo.blocks.activation`: ``"relu"`` (encoders),
            ``"leaky_relu"`` (decoders, slope 0.2) or ``"none"``.
        bias: conv bias (CTSDG: False everywhere).
        multi_channel: see :class:`PartialConv2d`.

    Shape:
        ``forward(x, valid) -> (out, new_valid)`` with the shapes of :class:`PartialConv2d`.
        The norm and activation apply to ``out`` only.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        bn: bool = True,
        activation: str = "relu",
        bias: bool = False,
        multi_channel: bool = True,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if padding is None:
            padding = dilation * (kernel_size // 2)
        self.conv = PartialConv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=bias,
            multi_channel=multi_channel,
        )
        self.bn = norm2d("batch", out_channels) if bn else None
        self.activation = (
            None if activation == "none" else make_activation(activation, negative_slope)
        )

    def forward(
        self, x: torch.Tensor, valid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, new_valid = self.conv(x, valid)
        if self.bn is not None:
            out = self.bn(out)
        if self.activation is not None:
            out = self.activation(out)
        return out, new_valid
