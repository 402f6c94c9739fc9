"""PRVS networks: the partial-convolution U-Net with visual structure reconstruction (VSR) layers
and the edge discriminator.

Li, He, Zhang, Du, Tao, "Progressive Reconstruction of Visual Structure for Image Inpainting",
ICCV 2019. Official code: jingyuanli001/PRVS-Image-Inpainting (``modules/PRVSNet.py``,
``modules/VSRLayer.py``, ``modules/PConvLayer.py``, ``modules/Discriminator.py``). Architecture
facts from ``specs/prvs.md`` §1 and §4; this is an independent implementation.

Generator (full variant, 256 px; partial convs with multi-channel masks, 1 = valid)::

    input  image * M (3 ch), M (3 ch), Canny edge * M_1 (1 ch)
    enc_1  VSR 3->64, k7 s2, BN, ReLU (edge generator 64 wide)          128 px, edge at 256
    enc_2  VSR 64->128, k5 s2, BN, ReLU                                  64 px, edge at 128
    enc_3  PConv 128->256 k5 s2, BN, ReLU; enc_4 256->512 k3 s2; enc_5..8 512->512 k3 s2
    bottom ConvT 512->512 k4 s2 (bias), mask x2 nearest                  1 -> 2 px
    dec_8..dec_3: cat(skip features, masks) -> PConv k3 s1 (no bias) -> ConvT k4 s2 (no bias)
           -> BN -> LReLU 0.2  (1024->512 x4, 768->256, 384->128; 4 .. 128 px)
    dec_2  VSR 192->64, k3 s1, ConvT x2, BN, no activation (official bug kept, see below)
    dec_1  VSR 67->64 (cat with the input image and mask), k3 s1, no BN, no activation
    out    ResidualBottleneck(64, 16) -> cat(., features) -> conv1x1 128->3 (bias), no activation

Outputs: the image (unbounded, [0, 1] scale: clamp before use), the final mask, and the edge
maps reconstructed by dec_2 (``edge_small``, H/2) and dec_1 (``edge``, H): the edge
discriminator's fakes. ``dec_2`` is built with ``activation='leaky'`` but ``VSRLayer`` compares
with ``"Leaky"``, so it has **no activation** in the released code: kept (the official weights
were trained that way; specs/prvs.md pitfall 1). The optional attention at dec_4 is off by
default officially (and its call lacks the mask argument): not built.

Edge discriminator: EdgeConnect's SN PatchGAN (:class:`~inpaintzoo.blocks.PatchDiscriminator`,
convs 64 s2, 128 s2, 256 s2, 512 s1, 1 s1, bias-free, N(0, 0.02) init) on ``[edge, gray]``; it
returns logits (the official sigmoid lives in the BCE loss).

Public interface: ``image`` in ``[0, 1]``, ``edge`` in ``{0, 1}``, inpaintzoo's hole mask
(1 = hole); converted once inside. ``H, W`` must be multiples of ``2 ** num_levels`` (256 for
the full variant).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.blocks.discriminators import PatchDiscriminator
from inpaintzoo.blocks.init import init_weights
from inpaintzoo.blocks.partial_conv import PartialConv2d, PartialConvBlock
from inpaintzoo.blocks.vsr import ResidualBottleneck, VisualStructureReconstruction

__all__ = [
    "OFFICIAL_PARAM_COUNTS",
    "PRVS_VARIANTS",
    "PRVSDecoderLevel",
    "PRVSGenerator",
    "build_prvs_nets",
    "convert_official_discriminator_state_dict",
    "convert_official_state_dict",
    "prvs_widths",
]

PRVS_VARIANTS: dict[str, dict[str, int]] = {
    # official PRVSNet(layer_size=8) and Discriminator(2): 256 px, H, W multiples of 256
    "full": {
        "base_channels": 64,
        "max_channels": 512,
        "num_levels": 8,
        "edge_channels": 64,
        "disc_channels": 64,
    },
    # 6 levels (64 px reaches 1x1 at the bottom, as 256 px does officially), widths 16..64
    "tiny": {
        "base_channels": 16,
        "max_channels": 64,
        "num_levels": 6,
        "edge_channels": 16,
        "disc_channels": 16,
    },
}

OFFICIAL_PARAM_COUNTS: dict[str, int] = {
    # specs/prvs.md §4 [COMPUTED from the official modules]; PConv mask kernels are not parameters
    "generator": 55_543_043,
    "edge_discriminator": 2_762_752,
}

# enc_1, enc_2, enc_3 kernels (7, 5, 5); deeper levels 3 (official 'down-7/5/5/3')
_KERNELS = (7, 5, 5)


def prvs_widths(base_channels: int, max_channels: int, num_levels: int) -> list[int]:
    """Encoder widths of levels 1..L: ``min(base * 2**(i-1), max)`` (64..512 at full size)."""
    return [min(base_channels * 2**i, max_channels) for i in range(num_levels)]


class PRVSDecoderLevel(nn.Module):
    """Official ``PConvLayer(..., activ='leaky', deconv=True)``: PConv k3 s1 (no bias) -> ConvT
    k4 s2 p1 (no bias) -> BatchNorm -> LeakyReLU(0.2); the updated mask is resized (nearest) to
    the doubled size.

    Shape: ``(x (B, in, H, W), valid (B, in, H, W))`` -> ``((B, out, 2H, 2W), (B, out, 2H, 2W))``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = PartialConv2d(in_channels, out_channels, 3, 1, 1, bias=False)
        self.upsample = nn.ConvTranspose2d(out_channels, out_channels, 4, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activation = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, valid = self.conv(x, valid)
        out = self.activation(self.bn(self.upsample(out)))
        return out, F.interpolate(valid, size=out.shape[-2:], mode="nearest")


class PRVSGenerator(nn.Module):
    """PRVS generator (see the module docstring).

    Args:
        base_channels, max_channels, num_levels: encoder widths ``min(base * 2**i, max)`` of the
            ``num_levels`` stride-2 levels (64, 512, 8 officially; ``num_levels >= 3``).
        edge_channels: width of the VSR layers' edge generators (64).

    Shape:
        ``forward(image (B, 3, H, W) in [0, 1], edge (B, 1, H, W), mask (B, 1, H, W) 1 = hole)``
        -> dict: ``output`` (B, 3, H, W) (no output activation), ``edge`` (B, 1, H, W) and
        ``edge_small`` (B, 1, H/2, W/2) (known edges, generated logits where the structure was
        reconstructed), ``valid`` (B, 64, H, W) the final mask. Hole content of ``image`` and
        ``edge`` is ignored. :meth:`features` adds every intermediate map.
    """

    def __init__(
        self,
        base_channels: int = 64,
        max_channels: int = 512,
        num_levels: int = 8,
        edge_channels: int = 64,
    ) -> None:
        super().__init__()
        if num_levels < 3:
            raise ValueError(f"num_levels must be >= 3, got {num_levels}")
        widths = prvs_widths(base_channels, max_channels, num_levels)
        self.widths = widths
        self.num_levels = num_levels
        self.size_multiple = 2**num_levels
        levels: list[nn.Module] = [
            VisualStructureReconstruction(3, widths[0], 7, edge_channels=edge_channels),
            VisualStructureReconstruction(widths[0], widths[1], 5, edge_channels=edge_channels),
        ]
        for level in range(3, num_levels + 1):
            k = _KERNELS[level - 1] if level <= len(_KERNELS) else 3
            levels.append(
                PartialConvBlock(widths[level - 2], widths[level - 1], k, stride=2, bn=True)
            )
        self.encoder = nn.ModuleList(levels)
        self.bottom_up = nn.ConvTranspose2d(widths[-1], widths[-1], 4, 2, 1)
        decoder: dict[str, nn.Module] = {}
        prev = widths[-1]
        for level in range(num_levels, 2, -1):
            decoder[f"dec_{level}"] = PRVSDecoderLevel(prev + widths[level - 2], widths[level - 2])
            prev = widths[level - 2]
        decoder["dec_2"] = VisualStructureReconstruction(
            prev + widths[0],
            widths[0],
            3,
            stride=1,
            activation="none",  # official 'leaky' != "Leaky": no activation (kept)
            upsample=True,
            edge_channels=edge_channels,
        )
        decoder["dec_1"] = VisualStructureReconstruction(
            widths[0] + 3,
            widths[0],
            3,
            stride=1,
            batch_norm=False,
            activation="none",
            edge_channels=edge_channels,
        )
        self.decoder = nn.ModuleDict(decoder)
        self.resolver = ResidualBottleneck(widths[0], max(1, widths[0] // 4))
        self.output = nn.Conv2d(2 * widths[0], 3, 1)

    def _check(self, image: torch.Tensor, edge: torch.Tensor, mask: torch.Tensor) -> None:
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"PRVSGenerator expects image (B, 3, H, W), got {tuple(image.shape)}")
        for name, t in (("edge", edge), ("mask", mask)):
            if t.ndim != 4 or t.shape[1] != 1 or t.shape[0] != image.shape[0]:
                raise ValueError(
                    f"PRVSGenerator expects {name} of shape (B, 1, H, W) matching the image "
                    f"{tuple(image.shape)}, got {tuple(t.shape)}"
                )
        h, w = image.shape[-2:]
        m = self.size_multiple
        if h % m or w % m or edge.shape[-2:] != (h, w) or mask.shape[-2:] != (h, w):
            raise ValueError(
                f"PRVSGenerator ({self.num_levels} levels) needs image, edge and mask of one size "
                f"with H and W divisible by {m}, got {h}x{w}; pad the input (inpaintzoo's "
                "predictor pads and crops back)"
            )

    def features(
        self, image: torch.Tensor, edge: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, Any]:
        """Every intermediate map: ``encoder`` / ``encoder_masks`` (index 0 = the input),
        ``edges`` (enc_1, enc_2, dec_2, dec_1), ``decoder`` (per level, deepest first) and
        the outputs of :meth:`forward`."""
        self._check(image, edge, mask)
        valid = (1.0 - mask).expand(-1, 3, -1, -1)  # official masks: 3 channels, 1 = valid
        x, v, e = image * valid, valid, edge * valid[:, :1]
        feats, masks, edges = [x], [v], []
        for layer in self.encoder:
            if isinstance(layer, VisualStructureReconstruction):
                x, v, e = layer(x, v, e)
                edges.append(e)
            else:
                x, v = layer(x, v)
            feats.append(x)
            masks.append(v)
        h = self.bottom_up(x)
        hv = F.interpolate(v, scale_factor=2.0, mode="nearest")
        decoded = []
        for level in range(self.num_levels, 0, -1):
            h = torch.cat([h, feats[level - 1]], dim=1)
            hv = torch.cat([hv, masks[level - 1]], dim=1)
            layer = self.decoder[f"dec_{level}"]
            if level > 2:
                h, hv = layer(h, hv)
            else:
                h, hv, e = layer(h, hv, edges[level - 1])
                edges.append(e)
            decoded.append(h)
        output = self.output(torch.cat([self.resolver(h), h], dim=1))
        return {
            "encoder": feats,
            "encoder_masks": masks,
            "edges": edges,
            "decoder": decoded,
            "output": output,
            "edge_small": edges[-2],
            "edge": edges[-1],
            "valid": hv,
        }

    def forward(
        self, image: torch.Tensor, edge: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        out = self.features(image, edge, mask)
        return {k: out[k] for k in ("output", "edge", "edge_small", "valid")}

    def encoder_batch_norms(self) -> list[nn.BatchNorm2d]:
        """The BatchNorms the official fine-tune freezes: every one whose module name contains
        ``enc`` (``PRVSNet.train(finetune=True)``), i.e. all BatchNorms of enc_1..enc_L,
        including the bottlenecks of enc_1's and enc_2's edge generators."""
        return [m for m in self.encoder.modules() if isinstance(m, nn.BatchNorm2d)]


def build_prvs_nets(variant: str = "full", **overrides: Any) -> dict[str, nn.Module]:
    """``{"generator", "edge_discriminator"}`` for a named variant; ``overrides`` replace the
    variant's ``base_channels``, ``max_channels``, ``num_levels``, ``edge_channels``,
    ``disc_channels``."""
    if variant not in PRVS_VARIANTS:
        raise ValueError(f"unknown PRVS variant {variant!r}; choose one of {sorted(PRVS_VARIANTS)}")
    unknown = sorted(set(overrides) - set(PRVS_VARIANTS[variant]))
    if unknown:
        raise ValueError(
            f"unknown PRVS override(s) {unknown}; allowed: {sorted(PRVS_VARIANTS[variant])}"
        )
    cfg = {**PRVS_VARIANTS[variant], **{k: v for k, v in overrides.items() if v is not None}}
    discriminator = PatchDiscriminator(2, int(cfg["disc_channels"]), use_spectral_norm=True)
    init_weights(discriminator, "normal", 0.02)  # official Discriminator(init_weights=True)
    return {
        "generator": PRVSGenerator(
            int(cfg["base_channels"]),
            int(cfg["max_channels"]),
            int(cfg["num_levels"]),
            int(cfg["edge_channels"]),
        ),
        "edge_discriminator": discriminator,
    }


# --------------------------------------------------------------------------- official weights
# Official module path -> ours, by name (modules/PRVSNet.py, VSRLayer.py, PConvLayer.py).
_VSR_PARTS = [
    (r"edge_generator\.p_conv\.weight", "edge_conv.weight"),
    (r"edge_generator\.edge_resolver\.((?:conv|bn)[123]\..+)", r"edge_resolver.\1"),
    (r"edge_generator\.out_layer\.weight", "edge_out.weight"),
    (r"feat_rec\.(weight|bias)", r"feature_conv.\1"),
    (r"deconv\.(weight|bias)", r"upsample.\1"),
    (r"batchnorm\.(.+)", r"norm.\1"),
]


_VSR_REMAINDER = "|".join(f"(?:{pattern})" for pattern, _ in _VSR_PARTS)


def _vsr_key(match: re.Match) -> str:
    """``enc_<n>.<part>`` -> ``encoder.<n-1>.<ours>``, ``dec_<n>.<part>`` -> ``decoder.dec_<n>``."""
    kind, level, rest = match[1], int(match[2]), match[3]
    head = f"encoder.{level - 1}" if kind == "enc" else f"decoder.dec_{level}"
    for pattern, repl in _VSR_PARTS:
        part = re.fullmatch(pattern, rest)
        if part is not None:
            return f"{head}.{part.expand(repl)}"
    raise AssertionError(f"no VSR part for {rest!r}")  # the rule only matches known parts


_OFFICIAL_GENERATOR_RULES: list[tuple[str, Any]] = [
    (rf"(enc|dec)_([12])\.({_VSR_REMAINDER})", _vsr_key),
    (r"enc_(\d+)\.conv\.weight", lambda m: f"encoder.{int(m[1]) - 1}.conv.weight"),
    (r"enc_(\d+)\.bn\.(.+)", lambda m: f"encoder.{int(m[1]) - 1}.bn.{m[2]}"),
    (r"dec_(\d+)\.conv\.weight", r"decoder.dec_\1.conv.weight"),
    (r"dec_(\d+)\.deconv\.weight", r"decoder.dec_\1.upsample.weight"),
    (r"dec_(\d+)\.bn\.(.+)", r"decoder.dec_\1.bn.\2"),
    (r"deconv\.(weight|bias)", r"bottom_up.\1"),
    (r"resolver\.((?:conv|bn)[123]\..+)", r"resolver.\1"),
    (r"output\.(weight|bias)", r"output.\1"),
]


def convert_official_state_dict(
    state_dict: Mapping[str, torch.Tensor], *, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """Official ``PRVSNet()`` state dict (``torch.load("g_<iter>.pth")["generator"]``, as
    ``utils/io.py`` ``save_ckpt`` writes it) -> :class:`PRVSGenerator` keys, by name.

    VSR layers (``enc_1``, ``enc_2``, ``dec_2``, ``dec_1``): ``edge_generator.p_conv`` ->
    ``edge_conv``, ``edge_generator.edge_resolver`` -> ``edge_resolver``,
    ``edge_generator.out_layer`` -> ``edge_out``, ``feat_rec`` -> ``feature_conv``, ``deconv`` ->
    ``upsample``, ``batchnorm`` -> ``norm``; ``enc_<i>.conv/bn`` (i >= 3) ->
    ``encoder.<i-1>.conv/bn``; ``dec_<i>.conv/deconv/bn`` -> ``decoder.dec_<i>.conv/upsample/bn``;
    the bottleneck's ``deconv`` -> ``bottom_up``; ``resolver`` and ``output`` keep their names.
    BatchNorm statistics are carried over; a ``module.`` prefix is stripped. The official
    conventions (mask 1 = valid, 3 channels) live in :class:`PRVSGenerator`.

    Raises:
        OfficialWeightsError: keys no rule knows, or two keys mapping onto one (named).
    """
    from inpaintzoo.official.keymap import rename_keys, strip_data_parallel

    return rename_keys(strip_data_parallel(state_dict), _OFFICIAL_GENERATOR_RULES, source=source)


_OFFICIAL_DISCRIMINATOR_RULES = [
    (r"(conv[1-5])\.0\.(weight_orig|weight_u|weight_v|weight|bias)", r"\1.0.\2"),
]


def convert_official_discriminator_state_dict(
    state_dict: Mapping[str, torch.Tensor], *, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """Official ``Discriminator(2)`` state dict (``torch.load("d_<iter>.pth")["discriminator"]``)
    -> :class:`~inpaintzoo.blocks.PatchDiscriminator` keys: the ``features.*`` copies of
    ``conv1`` (``self.conv1 = self.features = ...``) are checked equal and dropped, and the
    legacy spectral-norm keys become parametrization keys."""
    from inpaintzoo.official.keymap import (
        drop_module_aliases,
        legacy_spectral_norm_to_parametrization,
        rename_keys,
        strip_data_parallel,
    )

    converted = drop_module_aliases(
        strip_data_parallel(state_dict), "features", "conv1", source=source
    )
    converted = rename_keys(converted, _OFFICIAL_DISCRIMINATOR_RULES, source=source)
    return legacy_spectral_norm_to_parametrization(converted, source=source)
