"""MEDFE: mutual encoder-decoder with feature equalisations, and its two discriminators.

Liu, Jiang, Song, Huang, Yang. "Rethinking Image Inpainting via a Mutual Encoder-Decoder with
Feature Equalizations", ECCV 2020. Official code: KumapowerLIU/Rethinking-Inpainting-MEDFE
(``models/Encoder.py``, ``models/PCconv.py``, ``models/InnerCos.py``, ``models/Decoder.py``,
``models/Discriminator.py``, ``models/networks.py``, ``models/MEDFE.py``). Facts from
``specs/medfe.md`` §1-§2 and the files named; an independent implementation.

Generator (full variant ``c = 64``; sizes for a 256 px input)::

    input   [image with the hole filled by the ImageNet mean (123, 104, 117)/255 in [-1, 1],
             valid mask x3]                                                     6 ch
    encoder e1 conv k4 s2 (128) -> LReLU; e2..e5: conv k4 s2 + IN(affine) -> LReLU
            (2c @ 64, 4c @ 32, 8c @ 16, 8c @ 8); e6: conv k4 s2 (8c @ 4) -> 4 dilated residual
            blocks (dilation 2, reflect padding, IN without affine)
    mutual encoder-decoder block at the e3 resolution (32), on LReLU(e_i):
      texture   = fuse768(cat[e1 -> 2 convs k4 s2, e2 -> conv k4 s2, e3 -> conv 1x1])   4c
      structure = fuse768(cat[bilinear(e4), bilinear(e5), bilinear(e6)] -> shared 1x1 conv) 4c
      each branch: three stacks of 5 partial convs (3x3, 5x5, 7x7; shared by both branches;
                   IN(affine) + LReLU) -> fuse768(cat) -> F_st', F_te'
      projections: tanh(conv 1x1 4c -> 3)(F_st'), (F_te')  (supervised at 32: RTV image, GT)
      equalisation: conv 1x1 [F_st', F_te'] 8c -> 8c, then FeatureEqualization (SE channel,
                   Gaussian + local patch attention spatial)
      add back: bilinear + conv 1x1 to e1..e3 (c, 2c, 4c), conv k4 s2 chains to e4..e6
    decoder ReLU -> ConvT k4 s2 -> IN(affine): 8c->8c (8), [.., e5'] 16c->8c (16),
            [.., e4'] 16c->4c (32), [.., e3'] 8c->2c (64), [.., e2'] 4c->c (128),
            [.., e1'] 2c->3 + tanh (256)

All convs inside the block and the residual blocks are bias-free; encoder/decoder convs have
bias. The official in-place LeakyReLU of each encoder level also rewrites the previous level's
output, so the skips (e1..e5) it passes on are LeakyReLU'd once more than they look; that is
written out here (:class:`MEDFEEncoder` returns the activated features).

Partial convolutions: the official ``PartialConv`` (naoto0804-style, ``conv(X M) / conv(M, K)``
with a frozen mask kernel ``K``: :class:`~inpaintzoo.blocks.MaskKernelPartialConv2d`). Their
mask is the hole mask pooled to 1/8 by three 4x4/2 averages, thresholded ``> 1``
(``util.cal_feat_mask(mask, 3, 1)``): an average never exceeds 1, so with the official
threshold the pooled hole is always empty and every partial conv sees an all-valid mask.

Discriminators (D on the image, F on a 64x64 crop): five k4 **s2** p1 spectral-norm convs with
bias, LeakyReLU(0.2) between (``NLayerDiscriminator``, ndf 64, n_layers 3): 256 -> 8x8, 64 -> 2x2.

Conventions: images in ``[0, 1]`` with the hole zeroed and inpaintzoo's hole mask (1 = hole) at
the interface; the official ``[-1, 1]`` range, hole filling and inverted mask channels are
applied once in :meth:`MEDFEGenerator.forward`. The official code hard-codes 32/64/128 sizes
(256 px inputs) and one mask for the whole batch (the first sample's); sizes here come from the
feature maps and every sample has its own mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.blocks.conv import conv2d
from inpaintzoo.blocks.equalization import FeatureEqualization
from inpaintzoo.blocks.init import init_weights
from inpaintzoo.blocks.layers import ConvNormAct, norm2d
from inpaintzoo.blocks.mask_kernel_pconv import MaskKernelPartialConv2d
from inpaintzoo.blocks.residual import DilatedResBlock
from inpaintzoo.conventions import from_signed, to_signed

__all__ = [
    "FILL_VALUES",
    "MEDFE_VARIANTS",
    "OFFICIAL_COUNT_WITH_MASK_KERNELS",
    "OFFICIAL_FEATURE_MASK_THRESHOLD",
    "OFFICIAL_PARAM_COUNTS",
    "OFFICIAL_PARTS",
    "MEDFEDecoder",
    "MEDFEDiscriminator",
    "MEDFEEncoder",
    "MEDFEGenerator",
    "MutualEncoderDecoder",
    "build_medfe_nets",
    "convert_official_state_dict",
    "feature_valid_mask",
    "mask_kernel_elements",
    "sizes",
]

MEDFE_VARIANTS: dict[str, dict[str, int]] = {
    # the official widths and depth: 6 stride-2 levels, 4 residual blocks (256 px inputs)
    "full": {"channels": 64, "res_blocks": 4, "strided_levels": 6, "disc_channels": 64},
    # widths / 8, one residual block, levels 5 and 6 keep the resolution (k3 s1 p1 convs and
    # transposed convs): 64 px images give 32/16/8/4/4/4 feature maps and train on CPU
    "tiny": {"channels": 8, "res_blocks": 1, "strided_levels": 4, "disc_channels": 16},
}

OFFICIAL_PARAM_COUNTS: dict[str, int] = {
    # specs/medfe.md §5 [COMPUTED]: EN 30,026,432 + DE 18,098,499 + PCblock 54,993,699 trainable
    "generator": 103_118_630,
    "discriminator": 2_764_737,
    "local_discriminator": 2_764_737,
}
#: official ``PCblock`` count with the frozen mask kernels (what the repo's print_network sums)
OFFICIAL_COUNT_WITH_MASK_KERNELS = 130_316_070

#: hole fill of the official ``set_input``: ImageNet mean (123, 104, 117) / 255 in [-1, 1]
FILL_VALUES: tuple[float, float, float] = tuple(
    2.0 * v / 255.0 - 1.0 for v in (123.0, 104.0, 117.0)
)
#: ``util.cal_feat_mask(mask, 3, 1)``: the pooled hole must exceed 1 (never: see the module doc)
OFFICIAL_FEATURE_MASK_THRESHOLD = 1.0
_LEVELS = 6
_PCONV_LAYERS = 5
_PCONV_KERNELS = (3, 5, 7)
_RES_DILATION = 2  # models/Encoder.py ResnetBlock(ngf * 8, 2) (see docs/methods/medfe.md)


def _geometry(level: int, strided_levels: int) -> tuple[int, int, int]:
    """(kernel, stride, padding) of encoder level ``level`` (1-based) and of every conv that
    mirrors it: k4 s2 p1 for the strided levels, k3 s1 p1 beyond them (tiny variant)."""
    return (4, 2, 1) if level <= strided_levels else (3, 1, 1)


def sizes(widths: Mapping[str, Any]) -> tuple[int, int]:
    """``(size_multiple, min_size)`` of a variant: the full network keeps the official 256 px;
    fewer strided levels divide by ``2 ** strided_levels`` and need 4x4 innermost maps."""
    strided = int(widths["strided_levels"])
    if strided == _LEVELS:
        return 256, 256
    multiple = 2**strided
    return multiple, 4 * multiple


def feature_valid_mask(
    mask: torch.Tensor, threshold: float = OFFICIAL_FEATURE_MASK_THRESHOLD
) -> torch.Tensor:
    """The partial convolutions' valid mask at 1/8 resolution: ``1 - (avg4x4/2 three times of
    the hole mask > threshold)``; ``(B, 1, H, W) -> (B, 1, H/8, W/8)``. The official threshold 1
    gives an all-ones mask (an average of values in [0, 1] is never above 1)."""
    pooled = mask.float()
    for _ in range(3):
        pooled = F.avg_pool2d(pooled, 4, stride=2, padding=1, count_include_pad=True)
    return 1.0 - (pooled > threshold).to(mask.dtype)


def mask_kernel_elements(module: nn.Module) -> int:
    """Elements of the frozen partial-conv mask kernels inside ``module`` (the official
    ``mask_conv`` weights, counted by the official ``print_network``)."""
    return sum(
        m.mask_weight.numel() for m in module.modules() if isinstance(m, MaskKernelPartialConv2d)
    )


class MEDFEEncoder(nn.Module):
    """Six-level encoder + dilated residual blocks (official ``Encoder``).

    Shape:
        ``(B, 6, H, W) -> [e1 .. e6]``: ``e1..e5`` the LeakyReLU(0.2)-activated level outputs
        (c, 2c, 4c, 8c, 8c channels at H/2 .. H/32 for the full net), ``e6`` the residual
        blocks' output (8c at H/64).
    """

    def __init__(self, channels: int, res_blocks: int, strided_levels: int) -> None:
        super().__init__()
        c = channels
        widths = [6, c, 2 * c, 4 * c, 8 * c, 8 * c, 8 * c]
        levels = []
        for level in range(1, _LEVELS + 1):
            norm = "instance" if 1 < level < _LEVELS else "none"
            act = "leaky_relu" if level < _LEVELS else "none"
            k, s, p = _geometry(level, strided_levels)
            levels.append(
                ConvNormAct(
                    widths[level - 1], widths[level], k, s, p, norm=norm, norm_affine=True,
                    activation=act,
                )
            )  # fmt: skip
        self.levels = nn.ModuleList(levels)
        self.middle = nn.Sequential(
            *[
                DilatedResBlock(8 * c, _RES_DILATION, bias=False, norm="instance", affine=False)
                for _ in range(res_blocks)
            ]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        features[-1] = self.middle(features[-1])
        return features


class _PConvLayer(nn.Module):
    """Official ``PCBActiv(256, 256, sample=..., innorm=True)``: partial conv (no bias) ->
    IN(affine) -> LeakyReLU(0.2); ``(x, valid) -> (out, new_valid)``."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = MaskKernelPartialConv2d(
            channels, channels, kernel_size, padding=kernel_size // 2, bias=False
        )
        self.norm = norm2d("instance", channels, affine=True)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, valid = self.conv(x, valid)
        return F.leaky_relu(self.norm(x), 0.2), valid


class _PConvStack(nn.ModuleList):
    """Five :class:`_PConvLayer` of one kernel size, the mask passed along."""

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x, valid = layer(x, valid)
        return x


def _chain(channels: int, levels: Sequence[int], strided_levels: int) -> nn.Sequential:
    """Official ``ConvDown(512, 512, 4, 2, 1, layers=n, activ=False)``: one conv per mirrored
    level, IN (no affine) after each, LeakyReLU(0.2) between (not after the last)."""
    convs = []
    for i, level in enumerate(levels):
        k, s, p = _geometry(level, strided_levels)
        act = "leaky_relu" if i < len(levels) - 1 else "none"
        convs.append(
            ConvNormAct(channels, channels, k, s, p, norm="instance", activation=act, bias=False)
        )
    return nn.Sequential(*convs)


def _pointwise(in_channels: int, out_channels: int) -> ConvNormAct:
    """1x1 conv (no bias) -> IN (no affine) -> LeakyReLU(0.2): the official ``ConvDown(.., 1,
    1)`` and (after a bilinear resize) ``ConvUp``."""
    return ConvNormAct(
        in_channels, out_channels, 1, padding=0, norm="instance", activation="leaky_relu",
        bias=False,
    )  # fmt: skip


class MutualEncoderDecoder(nn.Module):
    """The official ``PCblock`` (``PCconv`` + ``InnerCos``): texture and structure branches,
    multi-scale partial-conv filling, feature equalisation, add-back to the skips.

    Args:
        channels: encoder base width ``c`` (texture/structure features 4c, equalised 8c).
        strided_levels: see :class:`MEDFEGenerator`.
        feature_mask_threshold: see :func:`feature_valid_mask`.
        layout: the equalisation's layout (:class:`~inpaintzoo.blocks.FeatureEqualization`).

    Shape:
        ``forward(features, mask) -> (skips, structure, texture)``: ``features`` the encoder's
        ``[e1 .. e6]``, ``mask`` ``(B, 1, H, W)`` (1 = hole); ``skips`` six tensors shaped like
        ``features``; ``structure``/``texture`` the tanh projections ``(B, 3, H/8, W/8)`` of
        the two filled branches (compared with the RTV image and the ground truth resized).
    """

    def __init__(
        self,
        channels: int,
        strided_levels: int,
        feature_mask_threshold: float = OFFICIAL_FEATURE_MASK_THRESHOLD,
        layout: str = "official",
    ) -> None:
        super().__init__()
        c = channels
        self.feature_mask_threshold = float(feature_mask_threshold)
        down = dict(norm="instance", activation="leaky_relu", bias=False)
        two_levels = nn.Sequential(
            ConvNormAct(c, 2 * c, 4, 2, 1, **down), ConvNormAct(2 * c, 4 * c, 4, 2, 1, **down)
        )
        self.texture_down = nn.ModuleList(
            [two_levels, ConvNormAct(2 * c, 4 * c, 4, 2, 1, **down), _pointwise(4 * c, 4 * c)]
        )
        self.structure_up = _pointwise(8 * c, 4 * c)
        self.branch_fuse = _pointwise(12 * c, 4 * c)
        self.pconv_stacks = nn.ModuleList(
            [
                _PConvStack([_PConvLayer(4 * c, k) for _ in range(_PCONV_LAYERS)])
                for k in _PCONV_KERNELS
            ]
        )
        self.merge = _pointwise(8 * c, 8 * c)
        self.equalization = FeatureEqualization(8 * c, reduction=16, sigma=1.5, layout=layout)
        self.texture_up = nn.ModuleList([_pointwise(8 * c, w) for w in (c, 2 * c, 4 * c)])
        self.structure_down = nn.ModuleList(
            [_chain(8 * c, range(4, last + 1), strided_levels) for last in (4, 5, 6)]
        )
        self.projection = nn.Sequential(nn.Conv2d(4 * c, 3, 1), nn.Tanh())

    def fill(self, branch: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Multi-scale partial convolutions of one branch, fused: ``(B, 4c, h, w)``."""
        filled = [stack(branch, valid) for stack in self.pconv_stacks]
        return self.branch_fuse(torch.cat(filled, dim=1))

    def forward(
        self, features: Sequence[torch.Tensor], mask: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        size = features[2].shape[-2:]
        valid = feature_valid_mask(mask, self.feature_mask_threshold)
        if valid.shape[-2:] != size:
            raise ValueError(
                f"MEDFE: the 1/8 mask {tuple(valid.shape[-2:])} does not match the e3 features "
                f"{tuple(size)}; H and W must be multiples of the size multiple"
            )
        x = [F.leaky_relu(f, 0.2) for f in features]
        texture = torch.cat([down(f) for down, f in zip(self.texture_down, x[:3])], dim=1)
        structure = torch.cat(
            [self.structure_up(F.interpolate(f, size=size, mode="bilinear")) for f in x[3:]],
            dim=1,
        )
        structure = self.fill(self.branch_fuse(structure), valid)
        texture = self.fill(self.branch_fuse(texture), valid)
        equalized = self.equalization(self.merge(torch.cat([structure, texture], dim=1)))
        skips = [
            up(F.interpolate(equalized, size=f.shape[-2:], mode="bilinear")) + f
            for up, f in zip(self.texture_up, features[:3])
        ]
        skips += [down(equalized) + f for down, f in zip(self.structure_down, features[3:])]
        return skips, self.projection(structure), self.projection(texture)


class MEDFEDecoder(nn.Module):
    """Official ``Decoder``: ReLU -> ConvT -> IN(affine) per level, skip concatenations, tanh.

    Shape: ``forward(skips) -> (B, 3, H, W)`` in ``[-1, 1]``."""

    def __init__(self, channels: int, strided_levels: int) -> None:
        super().__init__()
        c = channels
        ins = [8 * c, 16 * c, 16 * c, 8 * c, 4 * c, 2 * c]
        outs = [8 * c, 8 * c, 4 * c, 2 * c, c, 3]
        levels = []
        for j, (cin, cout) in enumerate(zip(ins, outs)):
            k, s, p = _geometry(_LEVELS - j, strided_levels)
            norm = "instance" if j < _LEVELS - 1 else "none"
            levels.append(
                ConvNormAct(
                    cin, cout, k, s, p, transposed=True, norm=norm, norm_affine=True,
                    activation="none",
                )
            )  # fmt: skip
        self.levels = nn.ModuleList(levels)

    def forward(self, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        x = self.levels[0](F.relu(skips[-1]))
        for level, skip in zip(self.levels[1:], reversed(skips[:-1])):
            x = level(F.relu(torch.cat([x, skip], dim=1)))
        return torch.tanh(x)


class MEDFEGenerator(nn.Module):
    """MEDFE generator: encoder, mutual encoder-decoder block, decoder (module docstring).

    Args:
        channels: base width ``c`` (64 official).
        res_blocks: dilated residual blocks after the encoder (4).
        strided_levels: encoder levels that halve the resolution (6 official; levels beyond it
            use k3 s1 p1 convs, in the decoder and add-back chains too).
        feature_mask_threshold: see :func:`feature_valid_mask` (official 1: no hole at 1/8).
        layout: ``official`` | ``spatial`` (see :class:`~inpaintzoo.blocks.FeatureEqualization`).
        init: initialise as the official ``init_weights('normal', 0.02)`` (the mask kernels
            stay all-ones).

    Shape:
        ``forward(image, mask) -> dict``: ``image`` ``(B, 3, H, W)`` in ``[0, 1]`` (hole pixels
        are never read), ``mask`` ``(B, 1, H, W)`` with 1 = hole; ``output`` ``(B, 3, H, W)`` in
        ``[0, 1]``, ``signed`` the same in ``[-1, 1]``, ``structure`` and ``texture`` the
        branch projections ``(B, 3, H/8, W/8)`` in ``[-1, 1]``.
    """

    def __init__(
        self,
        channels: int = 64,
        res_blocks: int = 4,
        strided_levels: int = _LEVELS,
        feature_mask_threshold: float = OFFICIAL_FEATURE_MASK_THRESHOLD,
        layout: str = "official",
        init: bool = True,
    ) -> None:
        super().__init__()
        if not 3 <= strided_levels <= _LEVELS:
            raise ValueError(f"strided_levels must be in 3..{_LEVELS}, got {strided_levels}")
        if 8 * channels < 16:
            raise ValueError(f"MEDFE channels must be >= 2 (SE reduction 16), got {channels}")
        self.strided_levels = int(strided_levels)
        self.encoder = MEDFEEncoder(channels, res_blocks, strided_levels)
        self.medfe = MutualEncoderDecoder(channels, strided_levels, feature_mask_threshold, layout)
        self.decoder = MEDFEDecoder(channels, strided_levels)
        self.register_buffer("fill", torch.tensor(FILL_VALUES).view(1, 3, 1, 1), persistent=False)
        if init:
            init_weights(self, "normal", 0.02)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, h, w = image.shape
        multiple = 2**self.strided_levels
        if h % multiple or w % multiple:
            raise ValueError(f"MEDFE needs H, W multiples of {multiple}, got {h}x{w}")
        hole = mask.to(image.dtype)
        filled = to_signed(image) * (1.0 - hole) + self.fill.to(image.dtype) * hole
        valid = (1.0 - hole).expand(b, 3, h, w)
        features = self.encoder(torch.cat([filled, valid], dim=1))
        skips, structure, texture = self.medfe(features, hole)
        signed = self.decoder(skips)
        return {
            "output": from_signed(signed),
            "signed": signed,
            "structure": structure,
            "texture": texture,
        }


class MEDFEDiscriminator(nn.Module):
    """Official ``NLayerDiscriminator(3, 64, n_layers=3)``: five k4 s2 p1 spectral-norm convs
    with bias (``c, 2c, 4c, 8c, 1``), LeakyReLU(0.2) after all but the last, no sigmoid.

    Shape: ``(B, 3, H, W) -> (B, 1, H/32, W/32)`` logits (``H, W >= 32``, multiples of 32 for an
    exact /32)."""

    def __init__(self, in_channels: int = 3, channels: int = 64, init: bool = True) -> None:
        super().__init__()
        widths = [in_channels, channels, 2 * channels, 4 * channels, 8 * channels, 1]
        layers: list[nn.Module] = []
        for i in range(5):
            layers.append(
                conv2d(widths[i], widths[i + 1], 4, stride=2, padding=1, use_spectral_norm=True)
            )
            if i < 4:
                layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.layers = nn.Sequential(*layers)
        if init:
            init_weights(self, "normal", 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def build_medfe_nets(variant: str = "full", **overrides: Any) -> dict[str, nn.Module]:
    """``{"generator", "discriminator", "local_discriminator"}`` for a named variant.

    ``overrides``: ``channels``, ``res_blocks``, ``strided_levels``, ``disc_channels``; ``init``
    passes through."""
    if variant not in MEDFE_VARIANTS:
        raise ValueError(
            f"unknown MEDFE variant {variant!r}; choose one of {sorted(MEDFE_VARIANTS)}"
        )
    allowed = {*MEDFE_VARIANTS[variant], "init"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"unknown MEDFE override(s) {unknown}; allowed: {sorted(allowed)}")
    cfg: dict[str, Any] = {**MEDFE_VARIANTS[variant], **overrides}
    init = bool(cfg.get("init", True))
    return {
        "generator": MEDFEGenerator(
            channels=int(cfg["channels"]),
            res_blocks=int(cfg["res_blocks"]),
            strided_levels=int(cfg["strided_levels"]),
            init=init,
        ),
        "discriminator": MEDFEDiscriminator(3, int(cfg["disc_channels"]), init=init),
        "local_discriminator": MEDFEDiscriminator(3, int(cfg["disc_channels"]), init=init),
    }


# --------------------------------------------------------------------------- official weights
# Official files: <epoch>_net_EN.pth (Encoder), _net_DE.pth (Decoder), _net_MEDFE.pth (PCblock),
# _net_D.pth / _net_F.pth (NLayerDiscriminator). Official module path -> ours, by name.
_ENCODER_RULES = [
    (r"Encoder_1\.model\.0\.(weight|bias)", r"encoder.levels.0.conv.\1"),
    (
        r"Encoder_([2-5])\.model\.1\.(weight|bias)",
        lambda m: f"encoder.levels.{int(m[1]) - 1}.conv.{m[2]}",
    ),
    (
        r"Encoder_([2-5])\.model\.2\.(weight|bias)",
        lambda m: f"encoder.levels.{int(m[1]) - 1}.norm.{m[2]}",
    ),
    (r"Encoder_6\.model\.1\.(weight|bias)", r"encoder.levels.5.conv.\1"),
    (r"middle\.(\d+)\.conv_block\.([15])\.weight", r"encoder.middle.\1.conv_block.\2.weight"),
]
_DECODER_RULES = [
    (
        r"Decoder_([1-6])\.model\.1\.(weight|bias)",
        lambda m: f"decoder.levels.{int(m[1]) - 1}.conv.{m[2]}",
    ),
    (
        r"Decoder_([1-5])\.model\.2\.(weight|bias)",
        lambda m: f"decoder.levels.{int(m[1]) - 1}.norm.{m[2]}",
    ),
]
_CHAIN = {"down_16": 0, "down_8": 1, "down_4": 2}
_UP = {"up_128": 0, "up_64": 1, "up_32": 2}
_STACK = {"cov_3": 0, "cov_5": 1, "cov_7": 2}
_BLOCK_RULES = [
    (
        r"pc_block\.down_128\.model\.([03])\.weight",
        lambda m: f"medfe.texture_down.0.{int(m[1]) // 3}.conv.weight",
    ),
    (r"pc_block\.down_64\.model\.0\.weight", "medfe.texture_down.1.conv.weight"),
    (r"pc_block\.down_32\.model\.0\.weight", "medfe.texture_down.2.conv.weight"),
    (
        r"pc_block\.(down_16|down_8|down_4)\.model\.([036])\.weight",
        lambda m: f"medfe.structure_down.{_CHAIN[m[1]]}.{int(m[2]) // 3}.conv.weight",
    ),
    (r"pc_block\.down\.model\.0\.weight", "medfe.branch_fuse.conv.weight"),
    (r"pc_block\.fuse\.model\.0\.weight", "medfe.merge.conv.weight"),
    (r"pc_block\.up\.conv\.weight", "medfe.structure_up.conv.weight"),
    (
        r"pc_block\.(up_128|up_64|up_32)\.conv\.weight",
        lambda m: f"medfe.texture_up.{_UP[m[1]]}.conv.weight",
    ),
    (
        r"pc_block\.base\.model\.0\.fc\.([02])\.(weight|bias)",
        r"medfe.equalization.channel.fc.\1.\2",
    ),
    (r"pc_block\.base\.down\.0\.weight", "medfe.equalization.spatial.fuse.conv.weight"),
    (
        r"pc_block\.(cov_[357])\.([0-4])\.conv\.input_conv\.weight",
        lambda m: f"medfe.pconv_stacks.{_STACK[m[1]]}.{m[2]}.conv.weight",
    ),
    (
        r"pc_block\.(cov_[357])\.([0-4])\.conv\.mask_conv\.weight",
        lambda m: f"medfe.pconv_stacks.{_STACK[m[1]]}.{m[2]}.conv.mask_weight",
    ),
    (
        r"pc_block\.(cov_[357])\.([0-4])\.bn\.(weight|bias)",
        lambda m: f"medfe.pconv_stacks.{_STACK[m[1]]}.{m[2]}.norm.{m[3]}",
    ),
    (r"loss\.0\.down_model\.0\.(weight|bias)", r"medfe.projection.0.\1"),
]
_DISCRIMINATOR_RULES = [
    (r"model\.([02468])\.(weight_orig|weight_u|weight_v|weight|bias)", r"layers.\1.\2"),
]  # fmt: skip
#: network -> the official files (``<epoch>_net_<NAME>.pth``) that make it up, and their rules
OFFICIAL_PARTS: dict[str, dict[str, list]] = {
    "generator": {"EN": _ENCODER_RULES, "DE": _DECODER_RULES, "MEDFE": _BLOCK_RULES},
    "discriminator": {"D": _DISCRIMINATOR_RULES},
    "local_discriminator": {"F": _DISCRIMINATOR_RULES},
}


def convert_official_state_dict(
    parts: Mapping[str, Mapping[str, torch.Tensor]], *, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """Official MEDFE state dicts -> one of our networks, by name.

    ``parts`` maps the official network names to their state dicts: ``{"EN": .., "DE": ..,
    "MEDFE": ..}`` (the three files of the generator: ``netEN`` = ``Encoder``, ``netDE`` =
    ``Decoder``, ``netMEDFE`` = ``PCblock``), or ``{"D": ..}`` / ``{"F": ..}`` (one
    discriminator). The generator's pieces map to ``encoder.*``, ``decoder.*`` and ``medfe.*``
    (``pc_block.cov_<k>.<i>.conv.mask_conv.weight`` -> the stored mask kernel
    ``...conv.mask_weight``, ``loss.0.down_model.0`` -> ``medfe.projection.0``, ``base`` ->
    ``medfe.equalization``); discriminators keep their layer indices and their legacy
    spectral-norm keys become parametrization keys. A ``module.`` prefix is stripped.

    Raises:
        OfficialWeightsError: a part this function does not know, keys no rule knows, or two
            keys mapping onto one (named).
    """
    from inpaintzoo.official.errors import OfficialWeightsError
    from inpaintzoo.official.keymap import (
        legacy_spectral_norm_to_parametrization,
        rename_keys,
        strip_data_parallel,
    )

    rules_by_part = {p: r for net in OFFICIAL_PARTS.values() for p, r in net.items()}
    out: dict[str, torch.Tensor] = {}
    for part, state_dict in parts.items():
        if part not in rules_by_part:
            raise OfficialWeightsError(
                f"{source}: unknown MEDFE part {part!r}; expected one of {sorted(rules_by_part)}",
                source,
            )
        converted = rename_keys(
            strip_data_parallel(state_dict), rules_by_part[part], source=f"{source} ({part})"
        )
        if part in ("D", "F"):
            converted = legacy_spectral_norm_to_parametrization(converted, source=source)
        clash = sorted(set(out) & set(converted))
        if clash:
            raise OfficialWeightsError(f"{source}: parts overlap on {clash[:4]}", source, clash)
        out.update(converted)
    return out
