"""Structure-knowledge networks: multi-task generator and SN PatchGAN discriminator.

Yang, Qi, Shi. "Learning to Incorporate Structure Knowledge for Image Inpainting", AAAI 2020.
Official code (TensorFlow 1.15): YoungGod/sturcture-inpainting (``src/inpaint_model.py``
``build_inpaint_net`` / ``build_discriminator_256``, ``src/ops.py``). Architecture facts from
``specs/structure_knowledge.md`` §3-§5; this is an independent PyTorch implementation.

Generator (``b`` = base width 64; every "conv" is ``gen_conv``: reflect pad, conv with bias,
instance norm with learnable scale/shift, activation; see
:func:`~inpaintzoo.blocks.nonlocal_attention.tf_conv_norm_act`)::

    input 11 ch = [x*(1-m) (3, [-1,1]), (1-edge)*(1-m)+m (1), m (1), grad*(1-m) (6)]   (H)
    encoder: conv k7 11->b ReLU; conv k4 s2 b->2b ReLU; conv k4 s2 2b->4b ReLU        (H/4)
    middle:  8 x residual block (3x3 dilation 2 + IN + ReLU, 3x3 + IN, add)            (H/4)
    stage 1/4: attention(4b); x_q = conv k5 4b->4b ReLU;
               grad_q = conv k1 x_q->6 (IN, no act); image_q = conv k1 x_q->3 (IN, tanh)
               structure embedding: deconv k4 s2 cat(x, x_q) 8b->2b ReLU               (H/2)
    stage 1/2: attention(2b); x_h = conv k5 2b->2b; grad_h / image_h heads;
               deconv cat(x, x_h) 4b->b                                                 (H)
    stage 1/1: attention(b); x_f = conv k5 b->b; grad_f (6) / image_f (3) heads

The feature ``x_q`` / ``x_h`` that produces both the gradient and the image head is what is
concatenated into the next decoder stage ("structure embedding"). Attention:
:class:`~inpaintzoo.blocks.nonlocal_attention.PooledNonLocalAttention` (reduction 16).

Sizes: ``H, W`` multiples of :data:`SIZE_MULTIPLE` (16: the 1/4-scale attention halves and pools
once more) and at least :data:`MIN_SIZE` (16). Value ranges: :class:`StructureKnowledgeGenerator`
takes the image in ``[0, 1]`` and converts to the official ``[-1, 1]`` itself; images come back in
``[0, 1]`` (``(tanh + 1) / 2``), gradient maps in the units of the Sobel map of a ``[-1, 1]``
image (unbounded, no activation).

Discriminator: 5 convs k4 with TF 'SAME' zero padding, spectral norm and bias: 3->b s2, b->2b s2,
2b->4b s2, 4b->8b s1, 8b->1 s1, LeakyReLU(0.2) after all but the last; ``(B, 3, H, W)`` in
``[0, 1]`` (converted to ``[-1, 1]`` inside) -> logits ``(B, 1, ceil(H/8), ceil(W/8))``.

Initialisation follows TensorFlow's defaults in the official code: Glorot-uniform conv and
transposed-conv kernels with zero biases (``tf.layers``), N(0, 0.02) for the attention's 1x1
convs and the discriminator kernels, instance-norm scale 1 / shift 0.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.blocks import DilatedResBlock, conv2d, init_weights
from inpaintzoo.blocks.nonlocal_attention import (
    TF_INSTANCE_NORM_EPS,
    PooledNonLocalAttention,
    tf_conv_norm_act,
    tf_deconv_norm_act,
)
from inpaintzoo.conventions import from_signed, to_signed

__all__ = [
    "GRADIENT_CHANNELS",
    "INPUT_CHANNELS",
    "MIN_SIZE",
    "OFFICIAL_PARAM_COUNTS",
    "SIZE_MULTIPLE",
    "STRUCTURE_KNOWLEDGE_VARIANTS",
    "StructureKnowledgeDiscriminator",
    "StructureKnowledgeGenerator",
    "build_structure_knowledge_nets",
]

SIZE_MULTIPLE = 16
"""Two stride-2 encoder convs, then the 1/4-scale attention halves and max-pools: H, W % 16."""

MIN_SIZE = 16
"""Smallest side: a 1x1 key map in the 1/4-scale attention."""

INPUT_CHANNELS = 11
GRADIENT_CHANNELS = 6

STRUCTURE_KNOWLEDGE_VARIANTS: dict[str, dict[str, int]] = {
    "full": {
        "base_channels": 64,
        "num_residual_blocks": 8,
        "attention_reduction": 16,
        "disc_channels": 64,
    },
    "tiny": {
        "base_channels": 16,
        "num_residual_blocks": 2,
        "attention_reduction": 8,
        "disc_channels": 16,
    },
}

OFFICIAL_PARAM_COUNTS: dict[str, int] = {
    # specs/structure_knowledge.md §5: a PyTorch rebuild of the TF graph (IN affine counted,
    # SN u vectors are buffers). No count is published by the authors.
    "generator": 15_089_000,
    "discriminator": 2_764_737,
}


def _check_size(h: int, w: int, name: str) -> None:
    if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
        raise ValueError(
            f"{name} needs H and W divisible by {SIZE_MULTIPLE} (size_multiple), got {h}x{w}; "
            "pad the input (inpaintzoo's predictor pads and crops back automatically)"
        )
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(f"{name} needs H and W >= {MIN_SIZE} (min_size), got {h}x{w}")


class _DecoderStage(nn.Module):
    """One decoder scale: attention, shared structure feature, gradient and image heads, and
    (except at full resolution) the structure-embedding upsampling of ``cat(x, feature)``."""

    def __init__(self, channels: int, up_channels: int | None, reduction: int) -> None:
        super().__init__()
        self.attention = PooledNonLocalAttention(channels, reduction)
        self.structure = tf_conv_norm_act(channels, channels, 5, activation="relu")
        self.gradient_head = tf_conv_norm_act(channels, GRADIENT_CHANNELS, 1, activation="none")
        self.image_head = tf_conv_norm_act(channels, 3, 1, activation="tanh")
        self.upsample = (
            tf_deconv_norm_act(2 * channels, up_channels, 4, stride=2, activation="relu")
            if up_channels is not None
            else None
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """``x (B, C, h, w) -> (next x (B, C_up, 2h, 2w) or None, gradient, image (signed))``."""
        x = self.attention(x)
        feature = self.structure(x)
        gradient = self.gradient_head(feature)
        image = self.image_head(feature)
        nxt = self.upsample(torch.cat([x, feature], dim=1)) if self.upsample is not None else None
        return nxt, gradient, image


class StructureKnowledgeGenerator(nn.Module):
    """Multi-task encoder-decoder: RGB + 6-channel Sobel gradients at 1/4, 1/2 and full scale.

    Args:
        base_channels: ``b`` (64): widths b, 2b, 4b.
        num_residual_blocks: residual blocks at 1/4 resolution (8).
        attention_reduction: ``C // reduction`` channels inside each attention block (16).
        init: TensorFlow-default initialisation (see the module docstring).

    ``forward(image, edge, mask, gradient)``:
        * ``image`` ``(B, 3, H, W)`` in ``[0, 1]`` (hole pixels are zeroed here);
        * ``edge`` ``(B, 1, H, W)`` Canny map, 1 = edge (inverted and hole-filled here as the
          official ``(1 - edge) * (1 - m) + m``);
        * ``mask`` ``(B, 1, H, W)``, 1 = hole;
        * ``gradient`` ``(B, 6, H, W)`` Sobel map ``[R_dy, R_dx, G_dy, G_dx, B_dy, B_dx]`` of the
          ``[-1, 1]`` image (multiplied by ``1 - m`` here).

        Returns ``{"images": [q, h, f], "gradients": [q, h, f]}``: lists ordered coarse to fine
        (``H/4``, ``H/2``, ``H``); images ``(B, 3, ., .)`` in ``[0, 1]``, gradients
        ``(B, 6, ., .)``. ``forward_input(x11)`` runs the network on a prebuilt 11-channel
        input and returns the same lists with the images in ``[-1, 1]``.

    Example:
        >>> g = StructureKnowledgeGenerator(base_channels=8, num_residual_blocks=1,
        ...                                 attention_reduction=4)
        >>> out = g(torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32),
        ...         torch.zeros(1, 1, 32, 32), torch.zeros(1, 6, 32, 32))
        >>> [t.shape[-1] for t in out["images"]]
        [8, 16, 32]
    """

    def __init__(
        self,
        base_channels: int = 64,
        num_residual_blocks: int = 8,
        attention_reduction: int = 16,
        init: bool = True,
    ) -> None:
        super().__init__()
        b = base_channels
        self.base_channels = b
        self.encoder = nn.Sequential(
            tf_conv_norm_act(INPUT_CHANNELS, b, 7, activation="relu"),
            tf_conv_norm_act(b, 2 * b, 4, stride=2, activation="relu"),
            tf_conv_norm_act(2 * b, 4 * b, 4, stride=2, activation="relu"),
        )
        blocks = [
            DilatedResBlock(4 * b, dilation=2, norm="instance", affine=True)
            for _ in range(num_residual_blocks)
        ]
        for block in blocks:
            for m in block.modules():
                if isinstance(m, nn.InstanceNorm2d):
                    m.eps = TF_INSTANCE_NORM_EPS
        self.middle = nn.Sequential(*blocks)
        self.decoder = nn.ModuleList(
            [
                _DecoderStage(4 * b, 2 * b, attention_reduction),
                _DecoderStage(2 * b, b, attention_reduction),
                _DecoderStage(b, None, attention_reduction),
            ]
        )
        if init:
            self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Glorot-uniform kernels / zero biases (TF ``tf.layers`` defaults); the attention's
        1x1 embeddings N(0, 0.02) (official ``weight_init``); IN scale 1, shift 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.InstanceNorm2d) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, PooledNonLocalAttention):
                for conv in (m.key, m.query, m.value):
                    nn.init.normal_(conv.weight, 0.0, 0.02)

    @staticmethod
    def build_input(
        image: torch.Tensor, edge: torch.Tensor, mask: torch.Tensor, gradient: torch.Tensor
    ) -> torch.Tensor:
        """The official 11-channel input (see the class docstring)."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W) in [0, 1], got {tuple(image.shape)}")
        size = image.shape[-2:]
        for name, t, c in (("edge", edge, 1), ("mask", mask, 1), ("gradient", gradient, 6)):
            if t.ndim != 4 or t.shape[1] != c or t.shape[-2:] != size or len(t) != len(image):
                raise ValueError(
                    f"{name} must have shape ({len(image)}, {c}, {size[0]}, {size[1]}), got "
                    f"{tuple(t.shape)}"
                )
        known = 1.0 - mask
        return torch.cat(
            [
                to_signed(image) * known,
                (1.0 - edge) * known + mask,
                mask,
                gradient * known,
            ],
            dim=1,
        )

    def forward_input(self, x: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """Run on a prebuilt ``(B, 11, H, W)`` input; images in ``[-1, 1]``."""
        if x.ndim != 4 or x.shape[1] != INPUT_CHANNELS:
            raise ValueError(
                f"StructureKnowledgeGenerator expects (B, {INPUT_CHANNELS}, H, W), got "
                f"{tuple(x.shape)}"
            )
        _check_size(x.shape[-2], x.shape[-1], type(self).__name__)
        x = self.middle(self.encoder(x))
        images, gradients = [], []
        for stage in self.decoder:
            x, gradient, image = stage(x)
            images.append(image)
            gradients.append(gradient)
        return {"images": images, "gradients": gradients}

    def forward(
        self,
        image: torch.Tensor,
        edge: torch.Tensor,
        mask: torch.Tensor,
        gradient: torch.Tensor,
    ) -> dict[str, list[torch.Tensor]]:
        out = self.forward_input(self.build_input(image, edge, mask, gradient))
        out["images"] = [from_signed(t) for t in out["images"]]
        return out


class _TFSamePad(nn.Module):
    """Zero padding of TensorFlow's ``padding='SAME'`` for a strided conv (extra pixel at the
    bottom/right when the total is odd); computed from the input size at run time."""

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    @staticmethod
    def _amount(size: int, k: int, s: int) -> tuple[int, int]:
        out = math.ceil(size / s)
        total = max((out - 1) * s + k - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self._amount(x.shape[-2], self.kernel_size, self.stride)
        left, right = self._amount(x.shape[-1], self.kernel_size, self.stride)
        return F.pad(x, (left, right, top, bottom))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class StructureKnowledgeDiscriminator(nn.Module):
    """SN PatchGAN with bias and TF 'SAME' padding (official ``build_discriminator_256``).

    Args:
        base_channels: width of the first conv (64).
        init: kernels N(0, 0.02), biases 0 (the official ``dis_conv``).

    Shape:
        ``(B, 3, H, W)`` in ``[0, 1]`` -> logits ``(B, 1, ceil(H/8), ceil(W/8))``
        (32x32 at 256 px). Hinge loss on the raw logits.
    """

    def __init__(self, base_channels: int = 64, init: bool = True) -> None:
        super().__init__()
        b = base_channels
        plan = [(3, b, 2), (b, 2 * b, 2), (2 * b, 4 * b, 2), (4 * b, 8 * b, 1), (8 * b, 1, 1)]
        layers: list[nn.Module] = []
        for i, (cin, cout, stride) in enumerate(plan):
            layers.append(_TFSamePad(4, stride))
            layers.append(conv2d(cin, cout, 4, stride=stride, bias=True, use_spectral_norm=True))
            if i < len(plan) - 1:
                layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.layers = nn.Sequential(*layers)
        if init:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        # N(0, 0.02) on the unnormalised weights, zero biases, SN vectors re-estimated.
        init_weights(self, "normal", 0.02)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(
                f"StructureKnowledgeDiscriminator expects (B, 3, H, W), got {tuple(image.shape)}"
            )
        return self.layers(to_signed(image))


def build_structure_knowledge_nets(variant: str = "full", **overrides: Any) -> dict[str, nn.Module]:
    """Build ``{"generator", "discriminator"}`` for a named width variant.

    Args:
        variant: ``"full"`` (official sizes; counts equal :data:`OFFICIAL_PARAM_COUNTS`) or
            ``"tiny"`` (width 16, 2 residual blocks, attention reduction 8; CPU tests).
        **overrides: ``base_channels``, ``num_residual_blocks``, ``attention_reduction``,
            ``disc_channels`` replace the variant's values; ``init`` passes through.
    """
    if variant not in STRUCTURE_KNOWLEDGE_VARIANTS:
        raise ValueError(
            f"unknown structure_knowledge variant {variant!r}; choose one of "
            f"{sorted(STRUCTURE_KNOWLEDGE_VARIANTS)}"
        )
    allowed = {*STRUCTURE_KNOWLEDGE_VARIANTS[variant], "init"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(
            f"unknown structure_knowledge override(s) {unknown}; allowed: {sorted(allowed)}"
        )
    cfg: dict[str, Any] = {**STRUCTURE_KNOWLEDGE_VARIANTS[variant], **overrides}
    init = bool(cfg.get("init", True))
    return {
        "generator": StructureKnowledgeGenerator(
            base_channels=int(cfg["base_channels"]),
            num_residual_blocks=int(cfg["num_residual_blocks"]),
            attention_reduction=int(cfg["attention_reduction"]),
            init=init,
        ),
        "discriminator": StructureKnowledgeDiscriminator(int(cfg["disc_channels"]), init=init),
    }
