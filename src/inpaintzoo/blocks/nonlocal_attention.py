"""Non-local attention with pooling (Yang, Qi, Shi, AAAI 2020 "structure knowledge").

The attention block of "Learning to Incorporate Structure Knowledge for Image Inpainting"
(official code YoungGod/sturcture-inpainting, ``src/ops.py`` ``attention_with_pooling``; facts
from ``specs/structure_knowledge.md`` §3). A self-attention (SAGAN / non-local means style) layer
made affordable at high resolution by working at half resolution and pooling the keys/values:

1. ``d = gen_conv(C -> C, k4, s2, ReLU)``: reflect pad 1, conv, affine instance norm, ReLU;
   ``(B, C, H, W) -> (B, C, H/2, W/2)``.
2. 1x1 convs (bias) to ``C' = C // reduction`` channels: ``f`` (keys) and ``h`` (values) are then
   max-pooled 2x2 (``H/4``); ``g`` (queries) is not.
3. ``beta = softmax_keys(g_flat @ f_flat^T)``: ``(B, H/2 * W/2, H/4 * W/4)``, no scaling.
4. ``o = beta @ h_flat`` reshaped to ``(B, C', H/2, W/2)``, then
   ``gen_deconv(C' -> C, k4, s2, ReLU)`` back to ``(B, C, H, W)``.
5. ``out = gamma * o + x`` with a learnable scalar ``gamma`` initialised to 0: at
   initialisation the block is the identity.

The mask is not used (the official block attends over the whole feature map).

:func:`tf_conv_norm_act` and :func:`tf_deconv_norm_act` are the official ``gen_conv`` /
``gen_deconv`` (reflect padding ``int(dilation * (k - 1) / 2)``, conv with bias, instance norm
with learnable scale and shift, activation) built with the zoo's one conv-norm-activation
factory, and are reused by the structure-knowledge generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.blocks.layers import ConvNormAct

__all__ = [
    "TF_INSTANCE_NORM_EPS",
    "PooledNonLocalAttention",
    "tf_conv_norm_act",
    "tf_deconv_norm_act",
]

#: ``tf.contrib.layers.instance_norm``'s default epsilon (PyTorch's default is 1e-5).
TF_INSTANCE_NORM_EPS = 1e-6


def tf_conv_norm_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    dilation: int = 1,
    activation: str = "relu",
    eps: float = TF_INSTANCE_NORM_EPS,
) -> ConvNormAct:
    """The official ``gen_conv``: reflect pad ``int(dilation * (k - 1) / 2)`` -> conv (bias) ->
    instance norm with learnable scale/shift (TF epsilon) -> activation; a
    :class:`~inpaintzoo.blocks.layers.ConvNormAct` configuration.

    Shape: ``(B, in, H, W) -> (B, out, H', W')``, ``H' = (H + 2p - d(k-1) - 1) // s + 1`` (a k4
    s2 conv maps ``H -> H / 2`` for even ``H``). Needs ``H, W > p`` (reflection padding).
    """
    return ConvNormAct(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=int(dilation * (kernel_size - 1) / 2),
        dilation=dilation,
        pad_mode="reflect",
        norm="instance",
        norm_affine=True,
        eps=eps,
        activation=activation,
    )


def tf_deconv_norm_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 4,
    stride: int = 2,
    activation: str = "relu",
    eps: float = TF_INSTANCE_NORM_EPS,
) -> ConvNormAct:
    """The official ``gen_deconv``: transposed conv with TF 'SAME' padding (``(k - s) / 2`` on
    each side, so the output is ``stride`` times the input) -> affine instance norm -> act.

    Shape: ``(B, in, H, W) -> (B, out, sH, sW)``.
    """
    if kernel_size - stride < 0 or (kernel_size - stride) % 2:
        raise ValueError(
            f"kernel_size - stride must be even and >= 0 for symmetric 'SAME' padding, got "
            f"kernel_size={kernel_size}, stride={stride}"
        )
    return ConvNormAct(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=(kernel_size - stride) // 2,
        transposed=True,
        norm="instance",
        norm_affine=True,
        eps=eps,
        activation=activation,
    )


class PooledNonLocalAttention(nn.Module):
    """Non-local attention at half resolution with 2x2-pooled keys/values (see module doc).

    Args:
        channels: input = output channels ``C`` (256, 128, 64 in the official generator).
        reduction: ``C' = C // reduction`` channels of the query/key/value embeddings (16).
        eps: instance-norm epsilon of the down/up convs.

    Shape:
        ``(B, C, H, W) -> (B, C, H, W)``; ``H, W`` divisible by 4 and ``>= 4`` (half
        resolution for the queries, quarter resolution for keys and values).
        :attr:`last_attention` keeps the latest attention map ``(B, H/2 * W/2, H/4 * W/4)``
        when ``keep_attention`` is set (for inspection; off by default to save memory).

    Example:
        >>> block = PooledNonLocalAttention(64)
        >>> block(torch.rand(2, 64, 16, 16)).shape
        torch.Size([2, 64, 16, 16])
    """

    def __init__(self, channels: int, reduction: int = 16, eps: float = TF_INSTANCE_NORM_EPS):
        super().__init__()
        if channels // reduction < 1:
            raise ValueError(
                f"channels // reduction must be >= 1, got channels={channels}, "
                f"reduction={reduction}"
            )
        inner = channels // reduction
        self.channels = channels
        self.inner_channels = inner
        self.down = tf_conv_norm_act(channels, channels, 4, stride=2, activation="relu", eps=eps)
        self.key = nn.Conv2d(channels, inner, 1)  # official f_conv (max-pooled)
        self.query = nn.Conv2d(channels, inner, 1)  # official g_conv (not pooled)
        self.value = nn.Conv2d(channels, inner, 1)  # official h_conv (max-pooled)
        self.up = tf_deconv_norm_act(inner, channels, 4, stride=2, activation="relu", eps=eps)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.keep_attention = False
        self.last_attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"PooledNonLocalAttention expects (B, {self.channels}, H, W), got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        if h % 4 or w % 4:
            raise ValueError(f"PooledNonLocalAttention needs H, W divisible by 4, got {h}x{w}")
        d = self.down(x)
        batch, _, hh, hw = d.shape
        # TF max_pooling2d(2, 2, 'SAME') == ceil mode for odd sizes.
        keys = F.max_pool2d(self.key(d), 2, ceil_mode=True).flatten(2)  # (B, C', Nk)
        values = F.max_pool2d(self.value(d), 2, ceil_mode=True).flatten(2)  # (B, C', Nk)
        queries = self.query(d).flatten(2)  # (B, C', Nq)
        scores = torch.bmm(queries.transpose(1, 2), keys)  # (B, Nq, Nk)
        beta = torch.softmax(scores, dim=-1)
        if self.keep_attention:
            self.last_attention = beta.detach()
        o = torch.bmm(beta, values.transpose(1, 2))  # (B, Nq, C')
        o = o.transpose(1, 2).reshape(batch, self.inner_channels, hh, hw)
        return self.gamma * self.up(o) + x

    def extra_repr(self) -> str:
        return f"channels={self.channels}, inner_channels={self.inner_channels}"
