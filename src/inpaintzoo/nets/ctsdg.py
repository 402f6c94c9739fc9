"""CTSDG networks: the two-stream partial-convolution generator and the texture + structure
discriminator with its learned edge detector.

Guo, Yang, Huang. "Image Inpainting via Conditional Texture and Structure Dual Generation",
ICCV 2021 (arXiv:2108.09760). Official code: xiefan-guo/ctsdg (``models/generator/*.py``,
``models/discriminator/*.py``). Architecture facts from ``specs/ctsdg.md`` §3-§5; this is an
independent implementation.

Generator (full variant, 256 px input; ``b = 64``)::

    texture encoder   (image, 3 ch)        ec_t_1..7: PConv k7/5/5/3/3/3/3 s2, widths
    structure encoder (edge + gray, 2 ch)  ec_s_1..7   64,128,256,512,512,512,512 (BN from 2)
    texture decoder:   starts from ec_s_7, skips ec_t_6..ec_t_0  -> F_t (64 @ H)
    structure decoder: starts from ec_t_7, skips ec_s_6..ec_s_0  -> F_s (64 @ H)
        (7 stages each: x2 bilinear features / nearest masks, concat skip, PConv k3 + BN + LReLU)
    projections: Feature2Texture(F_t) -> projected image, Feature2Structure(F_s) -> edge
    Bi-GFF(F_t, F_s) -> 128 @ H
    fusion1: conv3x3 s2 128->64 + LReLU -> X (64 @ H/2); CFA(X); fusion2: conv3x3 128->64 + LReLU
    up x2 bilinear; out: conv1x1 (64 + 128)->3 + tanh

Masks inside the generator follow the partial-conv convention (1 = valid, multi-channel); the
public interface takes inpaintzoo's hole mask (1 = hole) and images in ``[0, 1]`` and converts
(the official network works in ``[-1, 1]`` with hole pixels 0 there). Sizes: ``H, W`` divisible
by ``2 ** num_levels`` (128 for the full variant) and at least that.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.blocks.cfa import CFA
from inpaintzoo.blocks.discriminators import PatchDiscriminator
from inpaintzoo.blocks.fusion import BiGFF
from inpaintzoo.blocks.init import init_weights
from inpaintzoo.blocks.partial_conv import PartialConvBlock
from inpaintzoo.conventions import from_signed, to_signed

__all__ = [
    "CTSDG_VARIANTS",
    "OFFICIAL_PARAM_COUNTS",
    "Bottleneck",
    "CTSDGDiscriminator",
    "CTSDGGenerator",
    "DualStreamDecoder",
    "EdgeDetector",
    "FeatureProjection",
    "PartialConvEncoder",
    "build_ctsdg_nets",
    "encoder_widths",
]

CTSDG_VARIANTS: dict[str, dict[str, int]] = {
    # 7 stride-2 levels as the official code (256 px training size, H, W multiples of 128).
    "full": {"base_channels": 64, "max_channels": 512, "num_levels": 7, "disc_channels": 64},
    # 5 levels, widths 8..32: 64 px images reach 2x2 at the bottom and train on CPU.
    "tiny": {"base_channels": 8, "max_channels": 32, "num_levels": 5, "disc_channels": 16},
}

OFFICIAL_PARAM_COUNTS: dict[str, int] = {
    # specs/ctsdg.md §5 [COMPUTED from the official module definitions]
    "generator": 52_147_789,
    "discriminator": 5_531_729,
}

# First three levels keep the official kernels (7, 5, 5), deeper levels use 3.
_KERNELS = (7, 5, 5)


def encoder_widths(base_channels: int, max_channels: int, num_levels: int) -> list[int]:
    """Widths of encoder levels 1..L: ``min(base * 2**(i-1), max)`` (64..512 for the full net)."""
    return [min(base_channels * 2**i, max_channels) for i in range(num_levels)]


def _kernel(level: int) -> int:
    return _KERNELS[level - 1] if level <= len(_KERNELS) else 3


class PartialConvEncoder(nn.Module):
    """One CTSDG encoder stream: ``num_levels`` stride-2 partial convs (BN from level 2, ReLU).

    Shape:
        ``forward(x (B, in_ch, H, W), valid (B, in_ch, H, W))`` -> lists ``features`` and
        ``masks`` of length ``L + 1``: index 0 is the input itself, index ``i`` is level ``i``
        at ``H / 2**i`` with ``widths[i-1]`` channels (its mask has as many channels).
    """

    def __init__(self, in_channels: int, widths: list[int]) -> None:
        super().__init__()
        self.in_channels = in_channels
        layers = []
        cin = in_channels
        for level, cout in enumerate(widths, start=1):
            k = _kernel(level)
            layers.append(
                PartialConvBlock(
                    cin, cout, k, stride=2, padding=k // 2, bn=level > 1, activation="relu"
                )
            )
            cin = cout
        self.levels = nn.ModuleList(layers)

    def forward(
        self, x: torch.Tensor, valid: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        features, masks = [x], [valid]
        for layer in self.levels:
            x, valid = layer(x, valid)
            features.append(x)
            masks.append(valid)
        return features, masks


class DualStreamDecoder(nn.Module):
    """One CTSDG decoder stream: ``L`` stages of (x2 up, concat skip, PConv k3 + BN + LReLU).

    Stage ``i = L..1``: features upsampled x2 bilinear (``align_corners=False``), masks x2
    nearest, concatenated with skip ``i - 1`` (features and masks), then the partial conv. Output
    widths: ``widths[i-2]`` for ``i >= 2`` and ``out_channels`` for stage 1.

    Shape:
        ``forward(start, start_valid, skips, skip_masks)`` with ``start`` the *other* stream's
        deepest feature ``(B, widths[-1], H / 2**L, W / 2**L)`` and ``skips`` this stream's
        encoder lists (length ``L + 1``) -> ``(B, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, widths: list[int], out_channels: int) -> None:
        super().__init__()
        num_levels = len(widths)
        stages: dict[str, nn.Module] = {}
        prev = widths[-1]
        for i in range(num_levels, 0, -1):
            skip = widths[i - 2] if i >= 2 else in_channels
            out = widths[i - 2] if i >= 2 else out_channels
            stages[f"dc_{i}"] = PartialConvBlock(
                prev + skip, out, 3, bn=True, activation="leaky_relu"
            )
            prev = out
        self.stages = nn.ModuleDict(stages)
        self.num_levels = num_levels

    def forward(
        self,
        start: torch.Tensor,
        start_valid: torch.Tensor,
        skips: list[torch.Tensor],
        skip_masks: list[torch.Tensor],
    ) -> torch.Tensor:
        x, valid = start, start_valid
        for i in range(self.num_levels, 0, -1):
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            valid = F.interpolate(valid, scale_factor=2.0, mode="nearest")
            x = torch.cat([x, skips[i - 1]], dim=1)
            valid = torch.cat([valid, skip_masks[i - 1]], dim=1)
            x, valid = self.stages[f"dc_{i}"](x, valid)
        return x


class Bottleneck(nn.Module):
    """ResNet bottleneck of the projection heads: conv3x3 (no bias) BN ReLU, conv3x3 BN,
    + identity, ReLU. ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class FeatureProjection(nn.Module):
    """Feature2Texture / Feature2Structure: Bottleneck then conv1x1 (bias) to ``out_channels``.

    Returns the pre-activation map (``(B, out_channels, H, W)``); the generator applies tanh
    (texture) or sigmoid (structure).
    """

    def __init__(self, channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        self.bottleneck = Bottleneck(channels, hidden)
        self.out = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.bottleneck(x))


class CTSDGGenerator(nn.Module):
    """CTSDG generator (spec §3).

    Args:
        base_channels: first encoder width and fused feature width ``b`` (64).
        max_channels: widest encoder level (512).
        num_levels: stride-2 levels per encoder (7).
        bottleneck_channels: hidden width of the projection bottlenecks (``b // 4`` = 16).
        cfa_rates: MSFA dilations ((1, 2, 4, 8)).
        init: the official init (conv weights N(0, 0.02), biases 0, BN weights N(1, 0.02)).

    Shape:
        ``forward(image, edge, gray, mask)``: ``image`` (B,3,H,W) in [0,1] (hole content is
        ignored), ``edge`` and ``gray`` (B,1,H,W) of the same image (hole content ignored),
        ``mask`` (B,1,H,W) 1 = hole. Returns a dict with ``output`` (B,3,H,W) in [0,1],
        ``projected_image`` (B,3,H,W) in [0,1], ``projected_edge_logits`` and
        ``projected_edge`` (B,1,H,W). ``H, W`` must be multiples of ``2 ** num_levels``.
        ``features(...)`` also returns the intermediate maps (``F_t``, ``F_s``, ``fused``, ...).
    """

    def __init__(
        self,
        base_channels: int = 64,
        max_channels: int = 512,
        num_levels: int = 7,
        bottleneck_channels: int | None = None,
        cfa_rates: tuple[int, ...] = (1, 2, 4, 8),
        init: bool = True,
    ) -> None:
        super().__init__()
        if num_levels < 2:
            raise ValueError(f"num_levels must be >= 2, got {num_levels}")
        b = base_channels
        widths = encoder_widths(base_channels, max_channels, num_levels)
        self.widths = widths
        self.num_levels = num_levels
        self.size_multiple = 2**num_levels
        hidden = bottleneck_channels or max(1, b // 4)
        self.texture_encoder = PartialConvEncoder(3, widths)
        self.structure_encoder = PartialConvEncoder(2, widths)
        self.texture_decoder = DualStreamDecoder(3, widths, b)
        self.structure_decoder = DualStreamDecoder(2, widths, b)
        self.structure_feature_projection = FeatureProjection(b, hidden, 1)
        self.texture_feature_projection = FeatureProjection(b, hidden, 3)
        self.bigff = BiGFF(b)
        self.fusion_layer1 = nn.Sequential(
            nn.Conv2d(2 * b, b, 3, stride=2, padding=1), nn.LeakyReLU(0.2)
        )
        self.cfa = CFA(b, b, rates=cfa_rates)
        self.fusion_layer2 = nn.Sequential(nn.Conv2d(2 * b, b, 3, padding=1), nn.LeakyReLU(0.2))
        self.out_layer = nn.Conv2d(3 * b, 3, 1)
        if init:
            init_weights(self, "normal", 0.02)

    def _check(self, image, edge, gray, mask) -> None:
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"CTSDGGenerator expects image (B, 3, H, W), got {tuple(image.shape)}")
        for name, t in (("edge", edge), ("gray", gray), ("mask", mask)):
            if t.ndim != 4 or t.shape[1] != 1 or t.shape[0] != image.shape[0]:
                raise ValueError(
                    f"CTSDGGenerator expects {name} of shape (B, 1, H, W) matching the image "
                    f"{tuple(image.shape)}, got {tuple(t.shape)}"
                )
            if t.shape[-2:] != image.shape[-2:]:
                raise ValueError(
                    f"{name} of size {tuple(t.shape[-2:])} does not match the image "
                    f"{tuple(image.shape[-2:])}"
                )
        h, w = image.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(
                f"CTSDGGenerator ({self.num_levels} levels) needs H and W divisible by {m}, got "
                f"{h}x{w}; pad the input (inpaintzoo's predictor pads and crops back)"
            )

    def features(
        self, image: torch.Tensor, edge: torch.Tensor, gray: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, Any]:
        """Every intermediate map of one forward pass (see the class docstring)."""
        self._check(image, edge, gray, mask)
        valid = 1.0 - mask
        texture_in = to_signed(image) * valid  # official: [-1, 1] image times valid mask
        structure_in = torch.cat([edge * valid, gray * valid], dim=1)
        t_feats, t_masks = self.texture_encoder(texture_in, valid.expand(-1, 3, -1, -1))
        s_feats, s_masks = self.structure_encoder(structure_in, valid.expand(-1, 2, -1, -1))
        # Cross-stream decoding: each decoder starts from the other stream's deepest feature.
        f_t = self.texture_decoder(s_feats[-1], s_masks[-1], t_feats, t_masks)
        f_s = self.structure_decoder(t_feats[-1], t_masks[-1], s_feats, s_masks)
        projected_image = torch.tanh(self.texture_feature_projection(f_t))
        projected_edge_logits = self.structure_feature_projection(f_s)
        fused = self.bigff(f_t, f_s)
        x = self.fusion_layer1(fused)
        aggregated = self.cfa(x, x)
        x = self.fusion_layer2(torch.cat([x, aggregated], dim=1))
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        output = torch.tanh(self.out_layer(torch.cat([x, fused], dim=1)))
        return {
            "texture_features": t_feats,
            "structure_features": s_feats,
            "texture_masks": t_masks,
            "F_t": f_t,
            "F_s": f_s,
            "fused": fused,
            "cfa": aggregated,
            "output": from_signed(output),
            "projected_image": from_signed(projected_image),
            "projected_edge_logits": projected_edge_logits,
            "projected_edge": torch.sigmoid(projected_edge_logits),
        }

    def forward(
        self, image: torch.Tensor, edge: torch.Tensor, gray: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        out = self.features(image, edge, gray, mask)
        keys = ("output", "projected_image", "projected_edge_logits", "projected_edge")
        return {k: out[k] for k in keys}


class EdgeDetector(nn.Module):
    """The discriminator's learned edge detector (spec §4): conv3x3 3->w (bias) BN ReLU,
    residual [conv3x3 w->w BN ReLU conv3x3 w->w BN] + identity, ReLU, conv1x1 w->1.

    Shape: ``(B, 3, H, W)`` image in ``[-1, 1]`` -> ``(B, 1, H, W)`` edge **logits**
    (``torch.sigmoid`` gives the official output). 5,201 parameters for ``w = 16``.
    """

    def __init__(self, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        self.projection = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.res_block = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
        )
        self.relu = nn.ReLU()
        self.out_layer = nn.Conv2d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.projection(x)
        x = self.relu(x + self.res_block(x))
        return self.out_layer(x)


class CTSDGDiscriminator(nn.Module):
    """CTSDG discriminator: SN PatchGAN texture branch (RGB) + structure branch (edge, gray) with
    a learned edge detector for fake images (spec §4).

    Args:
        base_channels: PatchGAN width (64).
        edge_detector_width: 16.
        init: N(0, 0.02) for the two PatchGAN branches (the edge detector keeps PyTorch's init).

    Shape:
        ``forward(image, gray, edge=None)``: ``image`` (B,3,H,W) in [0,1], ``gray`` (B,1,H,W)
        the **full** gray image in [0,1], ``edge`` (B,1,H,W) the real Canny map or ``None`` for
        a fake image (then the edge detector's sigmoid output is used). Returns
        ``(logits (B, 2, H // 8 - 2, W // 8 - 2) = cat(texture, structure), edge_logits
        (B, 1, H, W))`` — logits, no sigmoid (the official sigmoid lives in the BCE here).
    """

    def __init__(
        self, base_channels: int = 64, edge_detector_width: int = 16, init: bool = True
    ) -> None:
        super().__init__()
        self.texture_branch = PatchDiscriminator(
            3, base_channels, use_spectral_norm=True, bias=False
        )
        self.structure_branch = PatchDiscriminator(
            2, base_channels, use_spectral_norm=True, bias=False
        )
        self.edge_detector = EdgeDetector(3, edge_detector_width)
        if init:
            init_weights(self.texture_branch, "normal", 0.02)
            init_weights(self.structure_branch, "normal", 0.02)

    def forward(
        self, image: torch.Tensor, gray: torch.Tensor, edge: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if image.ndim != 4 or image.shape[1] != 3 or gray.shape[1] != 1:
            raise ValueError(
                f"CTSDGDiscriminator expects image (B, 3, H, W) and gray (B, 1, H, W), got "
                f"{tuple(image.shape)} and {tuple(gray.shape)}"
            )
        signed = to_signed(image)
        texture_logits, _ = self.texture_branch(signed)
        edge_logits = self.edge_detector(signed)
        structure_edge = torch.sigmoid(edge_logits) if edge is None else edge
        structure_logits, _ = self.structure_branch(torch.cat([structure_edge, gray], dim=1))
        return torch.cat([texture_logits, structure_logits], dim=1), edge_logits


def build_ctsdg_nets(variant: str = "full", **overrides: Any) -> dict[str, nn.Module]:
    """Build ``{"generator", "discriminator"}`` for a named variant.

    Args:
        variant: ``"full"`` (official structure and parameter counts) or ``"tiny"``.
        **overrides: ``base_channels``, ``max_channels``, ``num_levels``, ``disc_channels``
            replace the variant's values; ``init`` passes through.
    """
    if variant not in CTSDG_VARIANTS:
        raise ValueError(
            f"unknown CTSDG variant {variant!r}; choose one of {sorted(CTSDG_VARIANTS)}"
        )
    allowed = {*CTSDG_VARIANTS[variant], "init"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"unknown CTSDG override(s) {unknown}; allowed: {sorted(allowed)}")
    cfg: dict[str, Any] = {**CTSDG_VARIANTS[variant], **overrides}
    init = bool(cfg.get("init", True))
    return {
        "generator": CTSDGGenerator(
            base_channels=int(cfg["base_channels"]),
            max_channels=int(cfg["max_channels"]),
            num_levels=int(cfg["num_levels"]),
            init=init,
        ),
        "discriminator": CTSDGDiscriminator(int(cfg["disc_channels"]), init=init),
    }


# --------------------------------------------------------------------------- official weights
# Official module path -> ours, by name (official xiefan-guo/ctsdg models/generator/*.py,
# models/discriminator/*.py). The official generator registers its modules in another order
# than ours (encoders and decoders interleaved differently), and Bi-GFF's two gamma scalars have
# the same shape: a map by order or shape would misplace them, so every key goes by name.
_STREAM = r"(texture|structure)"
#: official ``Bottleneck`` attribute -> index in our ``Bottleneck.body``
_BOTTLENECK = {"conv1": 0, "bn1": 1, "conv2": 3, "bn2": 4}
_OFFICIAL_GENERATOR_RULES = [
    (
        rf"ec_{_STREAM}_(\d+)\.(conv\.weight|bn\.(?:weight|bias|running_mean|running_var|num_batches_tracked))",
        lambda m: f"{m[1]}_encoder.levels.{int(m[2]) - 1}.{m[3]}",
    ),
    (rf"dc_{_STREAM}_(\d+)\.(.+)", r"\1_decoder.stages.dc_\2.\3"),
    (
        rf"{_STREAM}_feature_projection\.\1_resolver\.(conv1|bn1|conv2|bn2)\.(.+)",
        lambda m: f"{m[1]}_feature_projection.bottleneck.body.{_BOTTLENECK[m[2]]}.{m[3]}",
    ),
    (rf"{_STREAM}_feature_projection\.out_layer\.0\.(\w+)", r"\1_feature_projection.out.\2"),
    (rf"bigff\.{_STREAM}_gamma", r"bigff.\1_gamma"),
    (rf"bigff\.{_STREAM}_gate\.0\.(weight|bias)", r"bigff.\1_gate.\2"),
    (r"fusion_layer([12])\.0\.(weight|bias)", r"fusion_layer\1.0.\2"),
    (r"cfa\.msfa\.dilated_conv_(\d)\.0\.(weight|bias)", r"cfa.msfa.branches.\1.0.\2"),
    (r"cfa\.msfa\.weight_calc\.([02])\.(weight|bias)", r"cfa.msfa.weight_calc.\1.\2"),
    (r"out_layer\.0\.(weight|bias)", r"out_layer.\1"),
]  # fmt: skip
_OFFICIAL_DISCRIMINATOR_RULES = [
    (
        rf"{_STREAM}_branch\.(conv[1-5])\.0\.(weight_orig|weight_u|weight_v|weight|bias)",
        r"\1_branch.\2.0.\3",
    ),
    (r"edge_detector\.projection\.([01])\.(.+)", r"edge_detector.projection.\1.\2"),
    (r"edge_detector\.res_layer\.([0134])\.(.+)", r"edge_detector.res_block.\1.\2"),
    (r"edge_detector\.out_layer\.0\.(weight|bias)", r"edge_detector.out_layer.\1"),
]


def convert_official_generator_state_dict(
    state_dict: dict[str, torch.Tensor], *, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """Official CTSDG ``Generator`` state dict (``torch.load(ckpt)["generator"]``, as
    ``test.py`` reads it) -> :class:`CTSDGGenerator` keys, by name.

    ``ec_texture_<i>`` -> ``texture_encoder.levels.<i-1>``, ``dc_texture_<i>`` ->
    ``texture_decoder.stages.dc_<i>`` (same for ``structure``), projection bottlenecks
    ``conv1/bn1/conv2/bn2`` -> ``bottleneck.body.0/1/3/4``, ``bigff.<stream>_gate.0`` ->
    ``bigff.<stream>_gate``, ``bigff.<stream>_gamma`` -> the gamma of the same name,
    ``cfa.msfa.dilated_conv_<k>`` -> ``cfa.msfa.branches.<k>``, ``out_layer.0`` -> ``out_layer``.
    BatchNorm running statistics are carried over. A ``module.`` prefix (DDP) is stripped. The
    official conventions ([-1, 1] images, mask 1 = valid, tanh output) are handled inside
    :class:`CTSDGGenerator`, so the weights need no change.

    Raises:
        OfficialWeightsError: keys no rule knows, or two keys mapping onto one (named).
    """
    from inpaintzoo.official.keymap import rename_keys, strip_data_parallel

    return rename_keys(strip_data_parallel(state_dict), _OFFICIAL_GENERATOR_RULES, source=source)


def convert_official_discriminator_state_dict(
    state_dict: dict[str, torch.Tensor], *, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """Official CTSDG ``Discriminator`` state dict (``torch.load(ckpt)["discriminator"]``) ->
    :class:`CTSDGDiscriminator` keys, by name.

    The two SN PatchGAN branches register their first conv twice (``self.conv1 = self.features``):
    the ``features.*`` copies are checked equal and dropped; legacy spectral-norm keys become
    parametrization keys; the edge detector's ``res_layer`` -> ``res_block`` and
    ``out_layer.0`` -> ``out_layer`` (BatchNorm statistics carried over).
    """
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
