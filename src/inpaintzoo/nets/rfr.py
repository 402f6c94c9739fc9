"""RFR-Net: recurrent feature reasoning with knowledge-consistent attention.

Li, Wang, Zhang, Du, Tao. "Recurrent Feature Reasoning for Image Inpainting", CVPR 2020.
Official code: jingyuanli001/RFR-Inpainting (``modules/RFRNet.py``, ``modules/Attention.py``,
``modules/partialconv2d.py``). Facts from ``specs/rfr.md`` §1; an independent implementation.

Generator (full variant ``c = 64``; sizes for a 256 px input)::

    stem      PConv 7x7 s2 3->c + BN + ReLU (128), PConv 7x7 c->c + BN + ReLU   -> x_0, m_0
    recurrence t = 1..T (T = 6; shared weights):
        PConv 7x7 c->c, PConv 7x7 c->c (the hole shrinks: "area identification")
        BN (shared) + LeakyReLU(0.01)
        feature reasoning (RFRModule, below) with the KCA state of recurrence t-1
        x_t = result * m_t
    merge     x = mean_t(x_t m_t) / (mean_t(m_t) + 1e-7) over t = 0..T (per pixel, channel)
    up        ConvT 4x4 s2 c->c + BN + LeakyReLU(0.01) (256); mask: nearest x2 of m_T
    tail      PConv 3x3 (3 + c)->c/2 on [masked image, x] + LeakyReLU(0.01) -> t1;
              Bottleneck(c/2, c/8) -> t2; conv 3x3 [t1, t2] c->3 (no bias, no activation)

Feature reasoning (``RFRModule``) at the stem resolution R (128): enc1..3 conv 3x3 s2 + BN +
ReLU (2c @ R/2, 4c @ R/4, 8c @ R/8), enc4..6 conv 3x3 dilation 2 + BN + ReLU (8c); dec5, dec4
[h, enc] -> conv 3x3 dilation 2 + BN + LeakyReLU(0.2) (8c); dec3 [h, enc3] -> ConvT 4x4 s2 +
BN + LeakyReLU(0.2) (8c @ R/4) -> knowledge-consistent attention
(:class:`~inpaintzoo.blocks.KnowledgeConsistentAttention`, ``(H/8) x (W/8)`` positions);
dec2 [h, enc2] -> ConvT 12c->4c (R/2); dec1 [h, enc1] -> ConvT 6c->c (R). All convs bias-free.

Conventions: the public interface takes images in ``[0, 1]`` with the hole zeroed and
inpaintzoo's hole mask (1 = hole); the official network works on ``[0, 1]`` images with a
3-channel valid mask (1 = valid), converted once in :meth:`RFRGenerator.forward`. The output is
unbounded (no final activation, as the official net). Sizes: ``H, W`` multiples of 16 (stem /2,
reasoning /8); the attention state is passed explicitly between recurrences (the official
module stores it on itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.blocks.knowledge_attention import KCAState, KnowledgeConsistentAttention
from inpaintzoo.blocks.layers import ConvNormAct
from inpaintzoo.blocks.partial_conv import PartialConv2d, PartialConvBlock

__all__ = [
    "OFFICIAL_ITERATIONS",
    "OFFICIAL_PARAM_COUNTS",
    "RFR_VARIANTS",
    "SIZE_MULTIPLE",
    "Bottleneck",
    "FeatureReasoning",
    "RFRGenerator",
    "build_rfr_nets",
    "convert_official_state_dict",
]

RFR_VARIANTS: dict[str, dict[str, int]] = {
    # the official widths (64 at the stem, 512 in the attention)
    "full": {"channels": 64},
    # widths / 4 (16 .. 128): the same topology, trains 64 px images on CPU
    "tiny": {"channels": 16},
}

OFFICIAL_PARAM_COUNTS: dict[str, int] = {
    # specs/rfr.md §4 [COMPUTED from the official RFRNet()]
    "generator": 31_224_065,
}

SIZE_MULTIPLE = 16
#: the official number of recurrences (``RFRNet.forward``: ``for i in range(6)``)
OFFICIAL_ITERATIONS = 6
_LEAKY_SLOPE = 0.01  # torch's default: the official F.leaky_relu calls pass no slope


class Bottleneck(nn.Module):
    """ResNet bottleneck (the official tail's ``Bottleneck(32, 8)``): 1x1 ``c -> p``, 3x3
    ``p -> p``, 1x1 ``p -> 4p``, BN after each, ReLU after the first two, residual add, ReLU.
    Bias-free convs. Shape: ``(B, c, H, W) -> (B, 4p, H, W)`` with ``c = 4p``."""

    def __init__(self, channels: int, planes: int) -> None:
        super().__init__()
        if channels != 4 * planes:
            raise ValueError(f"Bottleneck needs channels = 4 * planes, got {channels}, {planes}")
        self.conv1 = nn.Conv2d(channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + x)


class FeatureReasoning(nn.Module):
    """The official ``RFRModule``: a dilated U-Net with knowledge-consistent attention.

    Args:
        channels: input/output channels ``c`` (64); inner widths 2c, 4c, 8c.

    Shape:
        ``forward(x (B, c, R, R'), valid (B, 1, R, R'), state) -> (out (B, c, R, R'), state)``
        with ``R, R'`` multiples of 8; ``valid`` is the current recurrence's mask (1 = valid)
        and ``state`` the attention state of the previous recurrence (``None`` first).
    """

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        c = channels
        widths = [c, 2 * c, 4 * c, 8 * c]
        bn = dict(norm="batch", bias=False)
        strided = [
            ConvNormAct(widths[i], widths[i + 1], 3, 2, 1, activation="relu", **bn)
            for i in range(3)
        ]
        dilated = [ConvNormAct(8 * c, 8 * c, 3, 1, 2, 2, activation="relu", **bn) for _ in range(3)]
        self.encoders = nn.ModuleList(strided + dilated)
        leaky = dict(activation="leaky_relu", negative_slope=0.2, **bn)
        self.dec5 = ConvNormAct(16 * c, 8 * c, 3, 1, 2, 2, **leaky)
        self.dec4 = ConvNormAct(16 * c, 8 * c, 3, 1, 2, 2, **leaky)
        self.dec3 = ConvNormAct(16 * c, 8 * c, 4, 2, 1, transposed=True, **leaky)
        self.attention = KnowledgeConsistentAttention(8 * c)
        self.dec2 = ConvNormAct(12 * c, 4 * c, 4, 2, 1, transposed=True, **leaky)
        self.dec1 = ConvNormAct(6 * c, c, 4, 2, 1, transposed=True, **leaky)

    def forward(
        self, x: torch.Tensor, valid: torch.Tensor, state: KCAState | None = None
    ) -> tuple[torch.Tensor, KCAState]:
        skips = []
        h = x
        for encoder in self.encoders:
            h = encoder(h)
            skips.append(h)
        h = self.dec5(torch.cat([h, skips[4]], dim=1))
        h = self.dec4(torch.cat([h, skips[3]], dim=1))
        h = self.dec3(torch.cat([h, skips[2]], dim=1))
        h, state = self.attention(h, valid, state)
        h = self.dec2(torch.cat([h, skips[1]], dim=1))
        h = self.dec1(torch.cat([h, skips[0]], dim=1))
        return h, state


class RFRGenerator(nn.Module):
    """RFR-Net generator (see the module docstring).

    Args:
        channels: stem width ``c`` (64 official).
        iterations: recurrences ``T`` (6 official; the parameters do not depend on it).

    Shape:
        ``forward(image, mask) -> output``: ``image`` ``(B, 3, H, W)`` in ``[0, 1]`` (hole
        pixels are never read), ``mask`` ``(B, 1, H, W)`` with 1 = hole, ``H, W`` multiples of
        16; ``output`` ``(B, 3, H, W)``, unbounded, nominally ``[0, 1]`` (not composited).
    """

    def __init__(self, channels: int = 64, iterations: int = OFFICIAL_ITERATIONS) -> None:
        super().__init__()
        c = channels
        if c % 8:
            raise ValueError(f"RFR-Net channels must be a multiple of 8, got {c}")
        self.channels = c
        self.iterations = int(iterations)
        self.stem1 = PartialConvBlock(3, c, 7, stride=2, padding=3, activation="relu")
        self.stem2 = PartialConvBlock(c, c, 7, stride=1, padding=3, activation="relu")
        self.recurrent_conv1 = PartialConv2d(c, c, 7, padding=3, bias=False)
        self.recurrent_conv2 = PartialConv2d(c, c, 7, padding=3, bias=False)
        self.recurrent_norm = nn.BatchNorm2d(c)
        self.reasoning = FeatureReasoning(c)
        self.up = ConvNormAct(
            c, c, 4, 2, 1, transposed=True, norm="batch", activation="leaky_relu",
            negative_slope=_LEAKY_SLOPE, bias=False,
        )  # fmt: skip
        self.tail_conv = PartialConv2d(3 + c, c // 2, 3, padding=1, bias=False)
        self.tail_bottleneck = Bottleneck(c // 2, c // 8)
        self.out = nn.Conv2d(c, 3, 3, padding=1, bias=False)

    def recurrences(
        self, x: torch.Tensor, valid: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The stem output and the ``T`` recurrences: features ``x_t * m_t`` (``x_0`` as is)
        and masks ``m_t`` (``(B, c, R, R')`` each, ``t = 0..T``)."""
        features, masks = [x], [valid]
        state: KCAState | None = None
        for _ in range(self.iterations):
            x, valid = self.recurrent_conv1(x, valid)
            x, valid = self.recurrent_conv2(x, valid)
            x = F.leaky_relu(self.recurrent_norm(x), _LEAKY_SLOPE)
            x, state = self.reasoning(x, valid[:, :1], state)
            x = x * valid
            features.append(x)
            masks.append(valid)
        return features, masks

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, _, h, w = image.shape
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ValueError(f"RFR-Net needs H, W multiples of {SIZE_MULTIPLE}, got {h}x{w}")
        valid = (1.0 - mask).expand(b, 3, h, w)  # the official 3-channel mask, 1 = valid
        x, m = self.stem1(image * valid, valid)
        x, m = self.stem2(x, m)
        features, masks = self.recurrences(x, m)
        stacked_x, stacked_m = torch.stack(features, dim=2), torch.stack(masks, dim=2)
        merged = (stacked_x * stacked_m).mean(dim=2) / (stacked_m.mean(dim=2) + 1e-7)
        up = self.up(merged)
        up_valid = F.interpolate(masks[-1], scale_factor=2, mode="nearest")
        tail, _ = self.tail_conv(
            torch.cat([image * valid, up], dim=1), torch.cat([valid, up_valid], dim=1)
        )
        tail = F.leaky_relu(tail, _LEAKY_SLOPE)
        return self.out(torch.cat([tail, self.tail_bottleneck(tail)], dim=1))


def build_rfr_nets(variant: str = "full", **overrides: Any) -> dict[str, nn.Module]:
    """``{"generator": RFRGenerator}`` for a named variant; ``overrides``: ``channels``."""
    if variant not in RFR_VARIANTS:
        raise ValueError(
            f"unknown RFR-Net variant {variant!r}; choose one of {sorted(RFR_VARIANTS)}"
        )
    unknown = sorted(set(overrides) - set(RFR_VARIANTS[variant]))
    if unknown:
        raise ValueError(
            f"unknown RFR-Net override(s) {unknown}; allowed: {sorted(RFR_VARIANTS[variant])}"
        )
    cfg = {**RFR_VARIANTS[variant], **overrides}
    return {"generator": RFRGenerator(channels=int(cfg["channels"]))}


# --------------------------------------------------------------------------- official weights
# Official RFRNet module path -> ours, by name (jingyuanli001/RFR-Inpainting modules/RFRNet.py,
# modules/Attention.py). BatchNorm running statistics are carried over.
_BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"


def _encoder(match) -> str:
    """Official ``RFRModule.enc_<i>`` (1-based) -> our ``reasoning.encoders.<i-1>``."""
    return f"reasoning.encoders.{int(match[1]) - 1}"


_OFFICIAL_RULES = [
    (r"Pconv1\.weight", "stem1.conv.weight"),
    (rf"bn1\.{_BN}", r"stem1.bn.\1"),
    (r"Pconv2\.weight", "stem2.conv.weight"),
    (rf"bn20\.{_BN}", r"stem2.bn.\1"),
    (r"Pconv21\.weight", "recurrent_conv1.weight"),
    (r"Pconv22\.weight", "recurrent_conv2.weight"),
    (rf"bn2\.{_BN}", r"recurrent_norm.\1"),
    (r"RFRModule\.enc_([1-6])\.0\.weight", lambda m: f"{_encoder(m)}.conv.weight"),
    (rf"RFRModule\.enc_([1-6])\.1\.{_BN}", lambda m: f"{_encoder(m)}.norm.{m[2]}"),
    (r"RFRModule\.dec_([1-5])\.0\.weight", r"reasoning.dec\1.conv.weight"),
    (rf"RFRModule\.dec_([1-5])\.1\.{_BN}", r"reasoning.dec\1.norm.\2"),
    (r"RFRModule\.att\.att\.ratio", "reasoning.attention.ratio"),
    (r"RFRModule\.att\.combiner\.(weight|bias)", r"reasoning.attention.combiner.\1"),
    (r"Tconv\.weight", "up.conv.weight"),
    (rf"bn3\.{_BN}", r"up.norm.\1"),
    (r"tail1\.weight", "tail_conv.weight"),
    (rf"tail2\.(conv[123]\.weight|bn[123]\.{_BN})", r"tail_bottleneck.\1"),
    (r"out\.weight", "out.weight"),
]  # fmt: skip


def convert_official_state_dict(
    state_dict: Mapping[str, torch.Tensor], *, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """Official ``RFRNet`` state dict (``torch.load(ckpt)["generator"]``, as the official
    ``utils/io.py`` ``load_ckpt`` reads it) -> :class:`RFRGenerator` keys, by name.

    ``Pconv1/bn1`` -> ``stem1.conv/bn``, ``Pconv2/bn20`` -> ``stem2``, ``Pconv21/22`` ->
    ``recurrent_conv1/2``, ``bn2`` -> ``recurrent_norm``, ``RFRModule.enc_<i>.0/1`` ->
    ``reasoning.encoders.<i-1>.conv/norm``, ``RFRModule.dec_<i>`` -> ``reasoning.dec<i>``,
    ``RFRModule.att.att.ratio`` / ``att.combiner`` -> ``reasoning.attention.ratio/combiner``,
    ``Tconv/bn3`` -> ``up.conv/norm``, ``tail1`` -> ``tail_conv``, ``tail2`` ->
    ``tail_bottleneck``, ``out`` -> ``out``. A ``module.`` prefix (DataParallel) is stripped.
    The official conventions (mask 1 = valid, 3-channel mask) are handled inside
    :class:`RFRGenerator`; the weights need no change.

    Raises:
        OfficialWeightsError: keys no rule knows, or two keys mapping onto one (named); the
            5x5 partial convolutions of the official ``RFRNet_Smaller_Hole`` variant are named
            as such.
    """
    from inpaintzoo.official.errors import OfficialWeightsError
    from inpaintzoo.official.keymap import rename_keys, strip_data_parallel

    converted = rename_keys(strip_data_parallel(state_dict), _OFFICIAL_RULES, source=source)
    stem2 = converted.get("stem2.conv.weight")
    if stem2 is not None and tuple(stem2.shape[-2:]) == (5, 5):
        raise OfficialWeightsError(
            f"{source} holds the official RFRNet_Smaller_Hole variant (5x5 recurrent partial "
            "convolutions); the zoo implements the paper's RFRNet (7x7): use that release",
            source,
            ["Pconv2.weight"],
        )
    return converted
