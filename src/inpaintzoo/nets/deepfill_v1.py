"""DeepFill v1 networks: the coarse-to-fine generator with contextual attention and the local and
global WGAN critics (the generator class is shared with DeepFill v2, which swaps in gated
convolutions).

Yu, Lin, Yang, Shen, Lu, Huang. "Generative Image Inpainting with Contextual Attention",
CVPR 2018 (arXiv:1801.07892). Official code: JiahuiYu/generative_inpainting, branch v1.0.0
(TensorFlow: ``inpaint_model.py`` ``build_inpaint_net`` / ``build_wgan_*_discriminator``,
``inpaint_ops.py`` ``gen_conv`` / ``gen_deconv`` / ``dis_conv``). Facts from
``specs/deepfill_v1.md`` §2-§5; an independent implementation (no official code copied, no
official weights: the release is TensorFlow).

Generator (full variant, ``c = 32``; every ``gen_conv`` is conv + bias + ELU with 'same' zero
padding, the output layers have no activation; ``_upsample`` = nearest x2 then conv k3)::

    input  cat(x_in, ones, mask)                         5 ch @ H     x_in = image * (1 - mask)
    coarse conv1 k5 c | conv2_downsample s2 2c | conv3 2c | conv4_downsample s2 4c |
           conv5, conv6 4c | conv7..10_atrous 4c dilation 2, 4, 8, 16 | conv11, conv12 4c |
           conv13_upsample 2c | conv14 2c | conv15_upsample c | conv16 c/2 | conv17 3
           -> clip to [-1, 1] = x1                         3 ch @ H
    refine input cat(x1 * mask + x_in * (1 - mask), ones, mask)   5 ch @ H
      conv branch      xconv1 k5 c | xconv2_downsample s2 c | xconv3 2c |
                       xconv4_downsample s2 2c | xconv5, xconv6 4c | xconv7..10_atrous 4c
      attention branch pmconv1 k5 c | pmconv2_downsample s2 c | pmconv3 2c |
                       pmconv4_downsample s2 4c | pmconv5 4c | pmconv6 4c (ReLU) |
                       contextual attention (mask at H/4) | pmconv9, pmconv10 4c
      merge  cat (8c @ H/4) -> allconv11, allconv12 4c | allconv13_upsample 2c | allconv14 2c |
             allconv15_upsample c | allconv16 c/2 | allconv17 3 -> clip to [-1, 1] = x2

Critics (``dis_conv`` = conv k5 s2 + LeakyReLU 0.2, then flatten and one dense unit):
local on the ``train_size / 2`` patch around the hole (widths 64, 128, 256, 512), global on the
``train_size`` image (64, 128, 256, 256); see :mod:`inpaintzoo.blocks.deepfill_discriminators`.

Conventions: the public interface takes images in ``[0, 1]`` and inpaintzoo's hole mask
(1 = hole); the networks work in the official ``[-1, 1]`` (hole pixels 0 there) and the
generator returns ``(coarse, output)`` in ``[0, 1]``. H and W must be multiples of 4 (two
stride-2 levels; the official ``test.py`` crops to multiples of 8). Padding is PyTorch's
symmetric zero padding; weights start from TF's defaults (Glorot uniform, zero biases) as the
official code; TF 'SAME' pads stride-2 convs at the bottom/right only (irrelevant
without weight porting). Nearest resizes use PyTorch's indexing, not TF1's
``align_corners=True`` rounding.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.blocks.contextual_attention import ContextualAttention
from inpaintzoo.blocks.deepfill_discriminators import DeepFillCritic, glorot_
from inpaintzoo.blocks.layers import ConvNormAct
from inpaintzoo.conventions import from_signed, to_signed

__all__ = [
    "DEEPFILL_V1_VARIANTS",
    "OFFICIAL_PARAM_COUNTS",
    "SIZE_MULTIPLE",
    "CoarseToFineGenerator",
    "LayerSpec",
    "build_deepfill_v1_nets",
    "coarse_plan",
    "merge_plan",
    "refine_attention_plan",
    "refine_conv_plan",
]

DEEPFILL_V1_VARIANTS: dict[str, dict[str, int]] = {
    # official: cnum 32, critics 64, trained at 256 px (the critics' dense layers need a size)
    "full": {"cnum": 32, "critic_cnum": 64, "train_size": 256},
    # 64 px on CPU: generator 228,198 parameters, critics 68,177 + 42,801
    "tiny": {"cnum": 8, "critic_cnum": 8, "train_size": 64},
}

OFFICIAL_PARAM_COUNTS: dict[str, int] = {
    # specs/deepfill_v1.md §8 [COMPUTED layer by layer from the v1.0.0 TF code]
    "generator": 3_601_542,
    "local_critic": 4_339_329,
    "global_critic": 2_733_441,
}

#: the official test.py crops to multiples of 8 (grid = 8); the network itself needs 4
SIZE_MULTIPLE = 8

#: (name, conv outputs, kernel, stride, dilation, activation, x2 nearest upsample first)
LayerSpec = tuple[str, int, int, int, int, str, bool]


def _atrous(prefix: str, width: int) -> list[LayerSpec]:
    return [
        (f"{prefix}{i}_atrous", width, 3, 1, d, "elu", False)
        for i, d in zip(range(7, 11), (2, 4, 8, 16))
    ]


def coarse_plan(c: int) -> list[LayerSpec]:
    """Stage 1 (official ``conv1`` .. ``conv17``), widths as the official ``cnum`` multiples."""
    return [
        ("conv1", c, 5, 1, 1, "elu", False),
        ("conv2_downsample", 2 * c, 3, 2, 1, "elu", False),
        ("conv3", 2 * c, 3, 1, 1, "elu", False),
        ("conv4_downsample", 4 * c, 3, 2, 1, "elu", False),
        ("conv5", 4 * c, 3, 1, 1, "elu", False),
        ("conv6", 4 * c, 3, 1, 1, "elu", False),
        *_atrous("conv", 4 * c),
        ("conv11", 4 * c, 3, 1, 1, "elu", False),
        ("conv12", 4 * c, 3, 1, 1, "elu", False),
        ("conv13_upsample", 2 * c, 3, 1, 1, "elu", True),
        ("conv14", 2 * c, 3, 1, 1, "elu", False),
        ("conv15_upsample", c, 3, 1, 1, "elu", True),
        ("conv16", c // 2, 3, 1, 1, "elu", False),
        ("conv17", 3, 3, 1, 1, "none", False),
    ]


def refine_conv_plan(c: int) -> list[LayerSpec]:
    """Stage 2 convolution ("hallucination") branch, ``xconv1`` .. ``xconv10_atrous``."""
    return [
        ("xconv1", c, 5, 1, 1, "elu", False),
        ("xconv2_downsample", c, 3, 2, 1, "elu", False),
        ("xconv3", 2 * c, 3, 1, 1, "elu", False),
        ("xconv4_downsample", 2 * c, 3, 2, 1, "elu", False),
        ("xconv5", 4 * c, 3, 1, 1, "elu", False),
        ("xconv6", 4 * c, 3, 1, 1, "elu", False),
        *_atrous("xconv", 4 * c),
    ]


def refine_attention_plan(c: int) -> tuple[list[LayerSpec], list[LayerSpec]]:
    """Stage 2 attention branch: ``pmconv1`` .. ``pmconv6`` (the last with ReLU) before the
    contextual attention, ``pmconv9``, ``pmconv10`` after it."""
    before = [
        ("pmconv1", c, 5, 1, 1, "elu", False),
        ("pmconv2_downsample", c, 3, 2, 1, "elu", False),
        ("pmconv3", 2 * c, 3, 1, 1, "elu", False),
        ("pmconv4_downsample", 4 * c, 3, 2, 1, "elu", False),
        ("pmconv5", 4 * c, 3, 1, 1, "elu", False),
        ("pmconv6", 4 * c, 3, 1, 1, "relu", False),
    ]
    after = [("pmconv9", 4 * c, 3, 1, 1, "elu", False), ("pmconv10", 4 * c, 3, 1, 1, "elu", False)]
    return before, after


def merge_plan(c: int) -> list[LayerSpec]:
    """Stage 2 decoder after concatenating the two branches, ``allconv11`` .. ``allconv17``."""
    return [
        ("allconv11", 4 * c, 3, 1, 1, "elu", False),
        ("allconv12", 4 * c, 3, 1, 1, "elu", False),
        ("allconv13_upsample", 2 * c, 3, 1, 1, "elu", True),
        ("allconv14", 2 * c, 3, 1, 1, "elu", False),
        ("allconv15_upsample", c, 3, 1, 1, "elu", True),
        ("allconv16", c // 2, 3, 1, 1, "elu", False),
        ("allconv17", 3, 3, 1, 1, "none", False),
    ]


def _gen_conv(in_ch: int, spec: LayerSpec, gated: bool) -> tuple[nn.Module, int]:
    """One ``gen_conv`` (or ``gen_deconv``) and its output channels.

    Plain (v1): conv with ``out`` outputs + activation. Gated (v2): one conv with ``out`` outputs
    split in halves, ``act(features) * sigmoid(gates)`` -> ``out / 2`` channels; the output
    layers (3 outputs or no activation) stay plain convs, as the official ``gen_conv``.
    """
    _, out, k, stride, dilation, act, upsample = spec
    padding = dilation * (k - 1) // 2
    if gated and not (out == 3 or act == "none"):
        layer = ConvNormAct(
            in_ch, out // 2, k, stride, padding, dilation, conv="gated", activation=act
        )
        out_ch = out // 2
    else:
        layer = ConvNormAct(in_ch, out, k, stride, padding, dilation, conv="plain", activation=act)
        out_ch = out
    if upsample:
        layer = nn.Sequential(
            OrderedDict(up=nn.Upsample(scale_factor=2, mode="nearest"), conv=layer)
        )
    return layer, out_ch


def _stack(in_ch: int, plan: list[LayerSpec], gated: bool) -> tuple[nn.Sequential, int]:
    layers = OrderedDict()
    for spec in plan:
        layers[spec[0]], in_ch = _gen_conv(in_ch, spec, gated)
    return nn.Sequential(layers), in_ch


class CoarseToFineGenerator(nn.Module):
    """DeepFill's two-stage generator: coarse network, then a refinement network with a
    convolution branch and a contextual-attention branch (DeepFill v1 and v2).

    Args:
        cnum: the official base width (v1 32, v2 48); layer widths are multiples of it.
        gated: gated convolutions (v2) instead of conv + ELU (v1).
        guide_channels: extra stage-1 input channels after the masked image (v2's sketch: 1).
        refine_with_mask: stage 2 also gets ``ones`` and the mask (v1: 5 channels; v2: the
            3-channel composite only).
        output: ``clip`` (v1, ``clip(x, -1, 1)``) or ``tanh`` (v2) on both stage outputs.
        mask_pooling: how the hole mask is reduced to the attention's grids (``max`` or
            ``nearest``, see :class:`~inpaintzoo.blocks.ContextualAttention`).

    Shape:
        ``forward(image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) 1 = hole, guide=None
        (B, guide_channels, H, W)) -> (coarse, output)``, both ``(B, 3, H, W)`` in ``[0, 1]``
        (raw, not composited). H, W multiples of 4. Hole pixels of ``image`` are ignored (the
        network zeroes them) and the guide is used inside the hole only (``guide * mask``).
    """

    def __init__(
        self,
        cnum: int = 32,
        *,
        gated: bool = False,
        guide_channels: int = 0,
        refine_with_mask: bool = True,
        output: str = "clip",
        mask_pooling: str = "max",
    ) -> None:
        super().__init__()
        if output not in ("clip", "tanh"):
            raise ValueError(f"output must be 'clip' or 'tanh', got {output!r}")
        if cnum < 4 or cnum % (4 if gated else 2):
            raise ValueError(f"cnum must be a multiple of {4 if gated else 2}, got {cnum}")
        self.cnum = int(cnum)
        self.gated = bool(gated)
        self.guide_channels = int(guide_channels)
        self.refine_with_mask = bool(refine_with_mask)
        self.output = output
        self.coarse, _ = _stack(3 + self.guide_channels + 2, coarse_plan(cnum), gated)
        refine_in = 5 if refine_with_mask else 3
        self.refine_conv, conv_out = _stack(refine_in, refine_conv_plan(cnum), gated)
        before, after = refine_attention_plan(cnum)
        self.refine_attention, att_in = _stack(refine_in, before, gated)
        self.attention = ContextualAttention(
            kernel_size=3, rate=2, softmax_scale=10.0, fuse=True, mask_pooling=mask_pooling
        )
        self.refine_attention_post, att_out = _stack(att_in, after, gated)
        self.merge, _ = _stack(conv_out + att_out, merge_plan(cnum), gated)
        for module in self.modules():  # TF defaults of the official code: Glorot uniform, bias 0
            if isinstance(module, nn.Conv2d):
                glorot_(module)

    def _out(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(-1.0, 1.0) if self.output == "clip" else torch.tanh(x)

    def _feature_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """The hole mask at the attention features' resolution (H/4; official
        ``resize_mask_like``), max-pooled or sampled as the attention's ``mask_pooling``."""
        if self.attention.mask_pooling == "max":
            return F.max_pool2d(mask, 4)
        return mask[:, :, ::4, ::4]

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor, guide: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = image.shape[-2:]
        if h % 4 or w % 4:
            raise ValueError(f"DeepFill's generator needs H, W multiples of 4, got {h}x{w}")
        x_in = to_signed(image) * (1.0 - mask)  # the official [-1, 1] input, hole = 0
        ones = torch.ones_like(mask)
        parts = [x_in]
        if self.guide_channels:
            if guide is None:
                guide = torch.zeros_like(mask).expand(-1, self.guide_channels, -1, -1)
            parts.append(guide * mask)
        coarse = self._out(self.coarse(torch.cat([*parts, ones, mask], dim=1)))
        composite = coarse * mask + x_in * (1.0 - mask)
        refine_in = composite
        if self.refine_with_mask:
            refine_in = torch.cat([composite, ones, mask], dim=1)
        hallucinated = self.refine_conv(refine_in)
        features = self.refine_attention(refine_in)
        features = self.attention(features, features, self._feature_mask(mask))
        features = self.refine_attention_post(features)
        output = self._out(self.merge(torch.cat([hallucinated, features], dim=1)))
        return from_signed(coarse), from_signed(output)


def build_deepfill_v1_nets(variant: str = "full", **overrides: Any) -> dict[str, nn.Module]:
    """Build ``{"generator", "local_critic", "global_critic"}`` for a named variant.

    Args:
        variant: ``"full"`` (official widths and parameter counts) or ``"tiny"``.
        **overrides: ``cnum``, ``critic_cnum``, ``train_size`` (the image size the critics'
            dense layers are built for; the local critic sees half of it) replace the variant's
            values.
    """
    if variant not in DEEPFILL_V1_VARIANTS:
        raise ValueError(
            f"unknown DeepFill v1 variant {variant!r}; choose one of {sorted(DEEPFILL_V1_VARIANTS)}"
        )
    unknown = sorted(set(overrides) - set(DEEPFILL_V1_VARIANTS[variant]))
    if unknown:
        raise ValueError(
            f"unknown DeepFill v1 override(s) {unknown}; allowed: "
            f"{sorted(DEEPFILL_V1_VARIANTS[variant])}"
        )
    cfg = {**DEEPFILL_V1_VARIANTS[variant], **overrides}
    cnum, d, size = int(cfg["cnum"]), int(cfg["critic_cnum"]), int(cfg["train_size"])
    if size % 32:
        raise ValueError(
            f"train_size must be a multiple of 32 (the local critic sees train_size / 2 through "
            f"4 stride-2 layers), got {size}"
        )
    return {
        "generator": CoarseToFineGenerator(cnum, gated=False, refine_with_mask=True, output="clip"),
        "local_critic": DeepFillCritic(3, (d, 2 * d, 4 * d, 8 * d), input_size=size // 2),
        "global_critic": DeepFillCritic(3, (d, 2 * d, 4 * d, 4 * d), input_size=size),
    }
