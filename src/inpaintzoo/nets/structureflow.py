"""StructureFlow networks: structure reconstructor G_s, texture generator G_t, multi-scale D.

Ren, Yu, Zhang, Li, Liu, Li. "StructureFlow: Image Inpainting via Structure-aware Appearance
Flow", ICCV 2019 (arXiv:1908.03852). Official code: RenYurui/StructureFlow (``src/network.py``).
Architecture facts come from ``../shared/specs/structureflow.md`` sections 3-7; this is an
independent implementation (no official code copied).

* :class:`StructureGenerator` (G_s, 36,057,411 parameters): encoder with three stride-2 levels
  (SN convs, InstanceNorm), decoder of residual blocks + nearest upsampling + k5 convs, with
  "content" skip convs; predicts the RTV-smoothed (structure) image of the whole picture.
* :class:`TextureGenerator` (G_t, 56,473,475): a *flow column* (InstanceNorm, four stride-2
  levels, predicts an appearance flow at 1/4 resolution) and a *conv column* (LayerNorm) whose
  1/4-resolution features are Gaussian-sampled along the flow (16x16 window sigma 4 and 4x4
  sigma 2) and concatenated into its decoder.
* :class:`MultiScaleDiscriminator` (1,196,544): two SN discriminators with residual
  down-sampling blocks, on the image and on a 3x3/stride-2 average-pooled copy; LSGAN outputs.

Value ranges: the generators take ``[0, 1]`` images / structure maps and a mask (1 = hole), do the
official ``[-1, 1]`` conversion and hole zeroing inside, and return ``[0, 1]`` images. Sizes:
``H, W`` divisible by :data:`SIZE_MULTIPLE` (16, the flow column's four stride-2 levels) and at
least :data:`MIN_SIZE` (48: reflection pads of 2 at the 1/16-resolution k5 convs need 3 px).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from inpaintzoo.blocks.conv import spectral_norm
from inpaintzoo.blocks.flow import GaussianSampler
from inpaintzoo.blocks.layers import ChannelLayerNorm, activation, norm2d
from inpaintzoo.conventions import from_signed, to_signed

__all__ = [
    "MIN_SIZE",
    "OFFICIAL_PARAM_COUNTS",
    "SIZE_MULTIPLE",
    "STRUCTUREFLOW_VARIANTS",
    "ChannelLayerNorm",
    "ConvBlock",
    "DownsampleResBlock",
    "FlowDiscriminator",
    "MultiScaleDiscriminator",
    "ResBlock",
    "StructureGenerator",
    "TextureGenerator",
    "build_structureflow_nets",
]

SIZE_MULTIPLE = 16
MIN_SIZE = 48

STRUCTUREFLOW_VARIANTS: dict[str, dict[str, int]] = {
    # official: StructureGen(dim 64, n_res 4), FlowGen(dim 64, n_res 2), D(dim 64)
    "full": {
        "structure_channels": 64,
        "structure_res_blocks": 4,
        "texture_channels": 64,
        "texture_res_blocks": 2,
        "disc_channels": 64,
    },
    "tiny": {
        "structure_channels": 8,
        "structure_res_blocks": 1,
        "texture_channels": 8,
        "texture_res_blocks": 1,
        "disc_channels": 8,
    },
}

OFFICIAL_PARAM_COUNTS: dict[str, int] = {
    # spec section 7 [COMPUTED] from the official module definitions; SN weight_orig counted
    # (here: parametrizations.weight.original, same numel; u/v are buffers)
    "structure_generator": 36_057_411,
    "texture_generator": 56_473_475,
    "structure_discriminator": 1_196_544,
    "texture_discriminator": 1_196_544,
}


class ConvBlock(nn.Sequential):
    """Reflection pad -> conv (optionally SN) -> norm -> activation (official ``Conv2dBlock``).

    Args:
        in_ch, out_ch, kernel, stride, padding: conv geometry (padding by reflection).
        norm: ``"instance"`` (no affine), ``"layer"`` (:class:`ChannelLayerNorm`), ``"none"``
            (the shared names of :func:`inpaintzoo.blocks.norm2d`).
        act: ``"relu"``, ``"leaky_relu"`` (0.2), ``"tanh"``, ``"none"``
            (:func:`inpaintzoo.blocks.activation`).
        use_sn: spectral norm on the conv weight.
        bias: conv bias.

    Shape: ``(B, in_ch, H, W) -> (B, out_ch, (H + 2p - k) // s + 1, ...)``.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        norm: str = "none",
        act: str = "relu",
        use_sn: bool = False,
        bias: bool = True,
    ) -> None:
        conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, bias=bias)
        super().__init__(
            nn.ReflectionPad2d(padding) if padding else nn.Identity(),
            spectral_norm(conv, enabled=use_sn),
            norm2d(norm, out_ch),
            activation(act),
        )

    @property
    def conv(self) -> nn.Conv2d:
        return self[1]  # type: ignore[return-value]


class ResBlock(nn.Module):
    """``x + ConvBlock(dim, dim, 3, norm, relu)(ConvBlock(dim, dim, 3, norm, none))`` (no SN).

    Shape: ``(B, dim, H, W) -> (B, dim, H, W)``.
    """

    def __init__(self, dim: int, norm: str = "instance") -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBlock(dim, dim, 3, 1, 1, norm=norm, act="relu"),
            ConvBlock(dim, dim, 3, 1, 1, norm=norm, act="none"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _res_blocks(n: int, dim: int, norm: str) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(dim, norm) for _ in range(n)])


def _up_conv(in_ch: int, out_ch: int, norm: str) -> nn.Sequential:
    """Nearest x2 upsampling -> reflect-padded k5 conv -> norm -> ReLU."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        ConvBlock(in_ch, out_ch, 5, 1, 2, norm=norm, act="relu"),
    )


class _ToImage(nn.Sequential):
    """Reflect pad 1 -> conv3x3 (bias) -> tanh (official ``Get_image``)."""

    def __init__(self, in_ch: int, out_ch: int = 3) -> None:
        super().__init__(ConvBlock(in_ch, out_ch, 3, 1, 1, norm="none", act="tanh"))


def _xavier_init(module: nn.Module) -> None:
    """Official ``INIT_TYPE: xavier``: xavier_normal (gain sqrt 2) on conv weights, bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            weight = (
                m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            )
            nn.init.xavier_normal_(weight, gain=2**0.5)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _check_size(x: torch.Tensor, channels: int, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} expects (B, {channels}, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
        raise ValueError(
            f"{name} needs H and W divisible by {SIZE_MULTIPLE} (size_multiple), got {h}x{w}; "
            "pad the input (inpaintzoo's predictor pads and crops back automatically)"
        )
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(f"{name} needs H and W >= {MIN_SIZE} (min_size), got {h}x{w}")


def _inputs(
    image: torch.Tensor, structure: torch.Tensor, mask: torch.Tensor, mask_structure: bool
) -> torch.Tensor:
    """Official 7-channel input in [-1, 1]: ``[img*(1-m), structure(*(1-m)), m]``."""
    if image.shape[1] != 3 or structure.shape[1] != 3 or mask.shape[1] != 1:
        raise ValueError(
            "expected image (B,3,H,W), structure (B,3,H,W), mask (B,1,H,W); got "
            f"{tuple(image.shape)}, {tuple(structure.shape)}, {tuple(mask.shape)}"
        )
    known = 1.0 - mask
    img = to_signed(image) * known
    struct = to_signed(structure)
    if mask_structure:
        struct = struct * known
    return torch.cat([img, struct, mask], dim=1)


class StructureGenerator(nn.Module):
    """StructureFlow G_s: masked image + masked smooth image + mask -> smooth image (spec 4).

    Args:
        dim: base width (64). Widths dim, 2, 4, 8 x dim at 1, 1/2, 1/4, 1/8 resolution.
        n_res: residual blocks per decoder level (4).
        use_sn: SN on the encoder/up convs (True; never on res blocks, content convs, output).
        init: official xavier init.

    Shape: ``forward(image (B,3,H,W), smooth (B,3,H,W), mask (B,1,H,W)) -> (B,3,H,W)`` in
    ``[0, 1]``; inputs in ``[0, 1]`` (the smooth map is masked inside). ``H, W`` divisible by 16
    and >= 48 (the pair of generators shares the constraint of G_t).
    """

    def __init__(self, dim: int = 64, n_res: int = 4, use_sn: bool = True, init: bool = True):
        super().__init__()
        d, sn = dim, use_sn

        def block(i: int, o: int, k: int, s: int, p: int) -> ConvBlock:
            return ConvBlock(i, o, k, s, p, norm="instance", act="relu", use_sn=sn)

        self.input_layer = block(7, d, 7, 1, 3)
        self.down0 = nn.Sequential(block(d, 2 * d, 4, 2, 1), block(2 * d, 2 * d, 5, 1, 2))
        self.down1 = nn.Sequential(block(2 * d, 4 * d, 4, 2, 1), block(4 * d, 4 * d, 5, 1, 2))
        self.down2 = block(4 * d, 8 * d, 4, 2, 1)
        self.up0 = nn.Sequential(
            _res_blocks(n_res, 8 * d, "instance"),
            nn.Upsample(scale_factor=2, mode="nearest"),
            block(8 * d, 4 * d, 5, 1, 2),
        )
        self.up1 = nn.Sequential(
            _res_blocks(n_res, 4 * d, "instance"),
            nn.Upsample(scale_factor=2, mode="nearest"),
            block(4 * d, 2 * d, 5, 1, 2),
        )
        self.up2 = nn.Sequential(
            _res_blocks(n_res, 2 * d, "instance"),
            nn.Upsample(scale_factor=2, mode="nearest"),
            block(2 * d, d, 5, 1, 2),
        )
        self.content_param = nn.ModuleList(
            [ConvBlock(c, c, 5, 1, 2, norm="instance", act="relu") for c in (4 * d, 2 * d, d)]
        )
        self.to_image = _ToImage(d, 3)
        if init:
            _xavier_init(self)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """7-channel ``[-1, 1]`` input -> intermediate maps (for shape tests) and ``out``."""
        _check_size(x, 7, type(self).__name__)
        x0 = self.input_layer(x)
        x1 = self.down0(x0)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        u0 = self.up0(x3) + self.content_param[0](x2)
        u1 = self.up1(u0) + self.content_param[1](x1)
        u2 = self.up2(u1) + self.content_param[2](x0)
        return {"x0": x0, "x1": x1, "x2": x2, "x3": x3, "u0": u0, "u1": u1, "u2": u2,
                "out": self.to_image(u2)}  # fmt: skip

    def forward(self, image: torch.Tensor, smooth: torch.Tensor, mask: torch.Tensor):
        out = self.forward_features(_inputs(image, smooth, mask, mask_structure=True))["out"]
        return from_signed(out)


class TextureGenerator(nn.Module):
    """StructureFlow G_t: flow column + conv column with Gaussian sampling (spec 5).

    Args:
        dim: base width (64).
        n_res: residual blocks per decoder stage (2).
        init: official xavier init.

    Shape: ``forward(image (B,3,H,W), structure (B,3,H,W), mask (B,1,H,W))`` ->
    ``(output (B,3,H,W) in [0, 1], flow (B,2,H/4,W/4))``; the flow is in pixels of the
    1/4-resolution grid (channel 0 = dx, 1 = dy). The structure map is used unmasked (official).
    ``H, W`` divisible by 16 and >= 48.
    """

    def __init__(self, dim: int = 64, n_res: int = 2, init: bool = True) -> None:
        super().__init__()
        d = dim

        def fb(i: int, o: int, k: int, s: int, p: int, act: str = "relu") -> ConvBlock:
            return ConvBlock(i, o, k, s, p, norm="instance", act=act)

        def cb(i: int, o: int, k: int, s: int, p: int) -> ConvBlock:
            return ConvBlock(i, o, k, s, p, norm="layer", act="relu")

        def tconv(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(
                nn.ConvTranspose2d(i, o, 6, stride=2, padding=2, bias=True),
                norm2d("instance", o),
                nn.ReLU(inplace=True),
            )

        h = d // 2
        # flow column (InstanceNorm)
        self.flow_d0 = nn.Sequential(fb(7, h, 7, 1, 3), fb(h, d, 4, 2, 1), fb(d, d, 5, 1, 2))
        self.flow_d1 = nn.Sequential(fb(d, 2 * d, 4, 2, 1), fb(2 * d, 2 * d, 5, 1, 2))
        self.flow_d2 = nn.Sequential(fb(2 * d, 4 * d, 4, 2, 1), fb(4 * d, 4 * d, 5, 1, 2))
        self.flow_d3 = nn.Sequential(fb(4 * d, 8 * d, 4, 2, 1), fb(8 * d, 8 * d, 5, 1, 2))
        self.flow_u0 = nn.Sequential(_res_blocks(n_res, 8 * d, "instance"), tconv(8 * d, 4 * d))
        self.flow_u1 = nn.Sequential(
            fb(8 * d, 4 * d, 5, 1, 2), _res_blocks(n_res, 4 * d, "instance"), tconv(4 * d, 2 * d)
        )
        self.location = nn.Sequential(
            fb(4 * d, d, 5, 1, 2),
            ConvBlock(d, 2, 3, 1, 1, norm="none", act="none", bias=False),
        )
        # conv column (LayerNorm)
        self.conv_d0 = nn.Sequential(
            cb(7, h, 7, 1, 3),
            cb(h, d, 4, 2, 1),
            cb(d, d, 5, 1, 2),
            cb(d, 2 * d, 4, 2, 1),
            cb(2 * d, 2 * d, 5, 1, 2),
        )
        self.conv_d1 = nn.Sequential(cb(2 * d, 4 * d, 5, 1, 2), cb(4 * d, 8 * d, 4, 2, 1))
        self.sample_large = GaussianSampler(16, 4.0)
        self.sample_small = GaussianSampler(4, 2.0)
        self.conv_u0 = nn.Sequential(
            _res_blocks(n_res, 8 * d, "layer"), _up_conv(8 * d, 4 * d, "layer")
        )
        self.conv_u1 = nn.Sequential(
            cb(8 * d, 4 * d, 5, 1, 2),
            _res_blocks(n_res, 4 * d, "layer"),
            _up_conv(4 * d, 2 * d, "layer"),
            _res_blocks(n_res, 2 * d, "layer"),
            _up_conv(2 * d, d, "layer"),
        )
        self.to_image = _ToImage(d, 3)
        if init:
            _xavier_init(self)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """7-channel ``[-1, 1]`` input -> intermediate maps, ``flow`` and ``out`` (tanh)."""
        _check_size(x, 7, type(self).__name__)
        f0 = self.flow_d0(x)
        f1 = self.flow_d1(f0)
        f2 = self.flow_d2(f1)
        f3 = self.flow_d3(f2)
        fu0 = torch.cat([self.flow_u0(f3), f2], dim=1)
        fu1 = torch.cat([self.flow_u1(fu0), f1], dim=1)
        flow = self.location(fu1)
        c1 = self.conv_d0(x)
        c2 = self.conv_d1(c1)
        warped = torch.cat([self.sample_large(c1, flow), self.sample_small(c1, flow)], dim=1)
        cu0 = torch.cat([self.conv_u0(c2), warped], dim=1)
        feat = self.conv_u1(cu0)
        return {"f0": f0, "f1": f1, "f2": f2, "f3": f3, "fu0": fu0, "fu1": fu1, "flow": flow,
                "c1": c1, "c2": c2, "warped": warped, "cu0": cu0, "feat": feat,
                "out": self.to_image(feat)}  # fmt: skip

    def forward(
        self, image: torch.Tensor, structure: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.forward_features(_inputs(image, structure, mask, mask_structure=False))
        return from_signed(maps["out"]), maps["flow"]


class DownsampleResBlock(nn.Module):
    """Discriminator residual down block (spec 6), every conv SN + LeakyReLU 0.2.

    main: conv3 in->in, conv3 in->out, AvgPool2; shortcut: AvgPool2, conv1x1 in->out.
    Shape: ``(B, in_ch, H, W) -> (B, out_ch, H // 2, W // 2)``.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            ConvBlock(in_ch, in_ch, 3, 1, 1, act="leaky_relu", use_sn=True),
            ConvBlock(in_ch, out_ch, 3, 1, 1, act="leaky_relu", use_sn=True),
            nn.AvgPool2d(2),
        )
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2), ConvBlock(in_ch, out_ch, 1, 1, 0, act="leaky_relu", use_sn=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.shortcut(x)


class FlowDiscriminator(nn.Module):
    """One scale of StructureFlow's discriminator (598,272 params at dim 64).

    Shape: ``(B, 3, H, W) -> (B, 1, H/8, W/8)`` raw LSGAN scores (32x32 at 256 px).
    """

    def __init__(self, in_ch: int = 3, dim: int = 64) -> None:
        super().__init__()
        self.model = nn.Sequential(
            ConvBlock(in_ch, dim, 4, 2, 1, act="leaky_relu", use_sn=True),
            DownsampleResBlock(dim, 2 * dim),
            DownsampleResBlock(2 * dim, 4 * dim),
            ConvBlock(4 * dim, 1, 1, 1, 0, act="none", use_sn=True, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MultiScaleDiscriminator(nn.Module):
    """Two :class:`FlowDiscriminator` s: on ``x`` and on ``AvgPool2d(3, 2, 1)(x)`` (spec 6).

    Inputs are ``[0, 1]`` images (converted to ``[-1, 1]`` inside, as the official nets see).
    Shape: ``(B, 3, H, W) -> [(B, 1, H/8, W/8), (B, 1, H/16, W/16)]``.
    """

    def __init__(self, in_ch: int = 3, dim: int = 64, init: bool = True) -> None:
        super().__init__()
        self.scales = nn.ModuleList([FlowDiscriminator(in_ch, dim) for _ in range(2)])
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        if init:
            _xavier_init(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"MultiScaleDiscriminator expects (B, 3, H, W), got {tuple(x.shape)}")
        if min(x.shape[-2:]) < 32:
            raise ValueError(f"MultiScaleDiscriminator needs H, W >= 32, got {tuple(x.shape)}")
        x = to_signed(x)
        outputs = []
        for i, disc in enumerate(self.scales):
            if i:
                x = self.downsample(x)
            outputs.append(disc(x))
        return outputs


def build_structureflow_nets(variant: str = "full", **overrides: Any) -> dict[str, nn.Module]:
    """Build G_s, G_t and their two multi-scale discriminators for a named variant.

    Args:
        variant: ``"full"`` (official widths) or ``"tiny"`` (width 8, one res block, CPU tests;
            same levels, so the same size rules).
        **overrides: keys of :data:`STRUCTUREFLOW_VARIANTS` and ``init``.

    Returns ``{"structure_generator", "texture_generator", "structure_discriminator",
    "texture_discriminator"}``; full-size counts equal :data:`OFFICIAL_PARAM_COUNTS`.
    """
    if variant not in STRUCTUREFLOW_VARIANTS:
        raise ValueError(
            f"unknown StructureFlow variant {variant!r}; choose one of "
            f"{sorted(STRUCTUREFLOW_VARIANTS)}"
        )
    allowed = {*STRUCTUREFLOW_VARIANTS[variant], "init"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"unknown StructureFlow override(s) {unknown}; allowed: {sorted(allowed)}")
    cfg: dict[str, Any] = {**STRUCTUREFLOW_VARIANTS[variant], **overrides}
    init = bool(cfg.get("init", True))
    return {
        "structure_generator": StructureGenerator(
            cfg["structure_channels"], cfg["structure_res_blocks"], init=init
        ),
        "texture_generator": TextureGenerator(
            cfg["texture_channels"], cfg["texture_res_blocks"], init=init
        ),
        "structure_discriminator": MultiScaleDiscriminator(3, cfg["disc_channels"], init=init),
        "texture_discriminator": MultiScaleDiscriminator(3, cfg["disc_channels"], init=init),
    }


# --------------------------------------------------------------------------- official weights
# Official module paths (RenYurui/StructureFlow src/network.py) -> ours, by name. Every official
# ``Conv2dBlock`` is ``pad -> conv -> norm -> activation`` with attributes ``conv`` and ``norm``;
# ours is a Sequential with the conv at index 1 and the norm at index 2.
_CB = r"\.(conv|norm)\.(\w+)"


def _leaf(m: re.Match) -> str:
    kind, param = m.groups()[-2:]
    return f"{1 if kind == 'conv' else 2}.{param}"


def _rule(pattern: str, template: str) -> tuple[str, Any]:
    """``template`` formats the match's groups (all but the last two, the Conv2dBlock leaf) and
    gets the leaf appended; ``{0}`` etc. are the groups."""
    return (pattern + _CB, lambda m: template.format(*m.groups()[:-2]) + "." + _leaf(m))


_RES = r"\.model\.(\d+)\.model\.([01])"  # official ResBlocks.model[b] (ResBlock).model[c]
_OFFICIAL_STRUCTURE_GENERATOR_RULES = [
    _rule(r"input_layer", "input_layer"),
    _rule(r"down_sample\.([01])\.([01])", "down{0}.{1}"),
    _rule(r"down_sample\.2\.0", "down2"),
    _rule(r"up_sample\.([0-2])\.0" + _RES, "up{0}.0.{1}.body.{2}"),
    _rule(r"up_sample\.([0-2])\.2", "up{0}.2"),
    _rule(r"content_param\.([0-2])", "content_param.{0}"),
    _rule(r"image_net\.conv", "to_image.0"),
]
_OFFICIAL_TEXTURE_GENERATOR_RULES = [
    _rule(r"flow_column\.down_sample_flow\.([0-3])\.([0-2])", "flow_d{0}.{1}"),
    _rule(r"flow_column\.up_sample_flow\.0\.0" + _RES, "flow_u0.0.{0}.body.{1}"),
    (r"flow_column\.up_sample_flow\.0\.1\.transConv\.(weight|bias)", r"flow_u0.1.0.\1"),
    _rule(r"flow_column\.up_sample_flow\.1\.0", "flow_u1.0"),
    _rule(r"flow_column\.up_sample_flow\.1\.1" + _RES, "flow_u1.1.{0}.body.{1}"),
    (r"flow_column\.up_sample_flow\.1\.2\.transConv\.(weight|bias)", r"flow_u1.2.0.\1"),
    _rule(r"flow_column\.location\.([01])", "location.{0}"),
    _rule(r"conv_column\.down_sample\.0\.([0-4])", "conv_d0.{0}"),
    _rule(r"conv_column\.down_sample\.1\.([01])", "conv_d1.{0}"),
    _rule(r"conv_column\.up_sample\.0\.0" + _RES, "conv_u0.0.{0}.body.{1}"),
    _rule(r"conv_column\.up_sample\.0\.2", "conv_u0.1.1"),
    _rule(r"conv_column\.up_sample\.1\.0", "conv_u1.0"),
    _rule(r"conv_column\.up_sample\.1\.1" + _RES, "conv_u1.1.{0}.body.{1}"),
    _rule(r"conv_column\.up_sample\.1\.3", "conv_u1.2.1"),
    _rule(r"conv_column\.up_sample\.1\.4" + _RES, "conv_u1.3.{0}.body.{1}"),
    _rule(r"conv_column\.up_sample\.1\.6", "conv_u1.4.1"),
    _rule(r"conv_column\.up_sample\.1\.7\.conv", "to_image.0"),
]


def _scale(m: str) -> int:
    return int(m) - 1


_OFFICIAL_DISCRIMINATOR_RULES = [
    (r"model_([12])\.model\.0" + _CB, lambda m: f"scales.{_scale(m[1])}.model.0.{_leaf(m)}"),
    (
        r"model_([12])\.model\.([12])\.conv_1\.([01])" + _CB,
        lambda m: f"scales.{_scale(m[1])}.model.{m[2]}.main.{m[3]}.{_leaf(m)}",
    ),
    (
        r"model_([12])\.model\.([12])\.conv_2\.1" + _CB,
        lambda m: f"scales.{_scale(m[1])}.model.{m[2]}.shortcut.1.{_leaf(m)}",
    ),
    (r"model_([12])\.model\.3" + _CB, lambda m: f"scales.{_scale(m[1])}.model.3.{_leaf(m)}"),
]
_OFFICIAL_RULES = {
    "structure_generator": _OFFICIAL_STRUCTURE_GENERATOR_RULES,
    "texture_generator": _OFFICIAL_TEXTURE_GENERATOR_RULES,
    "discriminator": _OFFICIAL_DISCRIMINATOR_RULES,
}


def convert_official_state_dict(
    state_dict: dict[str, torch.Tensor], network: str, *, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """One official StructureFlow network file -> our keys, by name.

    The official ``BaseModel.save`` writes each network's bare state dict to
    ``<iter>_net_<name>.pth``: ``s_gen`` (-> ``network="structure_generator"``), ``f_gen``
    (``"texture_generator"``), ``s_dis`` / ``f_dis`` (``"discriminator"``, a
    :class:`MultiScaleDiscriminator`). ``Conv2dBlock.conv`` / ``.norm`` become indices 1 / 2 of our
    :class:`ConvBlock`, ``ResBlocks.model[b].model[c]`` -> ``[b].body[c]``, ``TransConv2dBlock``
    -> the ConvTranspose of our up block, ``Get_image`` -> ``to_image``; the official LayerNorm's
    ``(C, 1, 1)`` affine becomes ``(C,)``; legacy spectral-norm keys become parametrization keys
    (G_s and the discriminators). The official [-1, 1] convention is handled inside the networks.

    Raises:
        OfficialWeightsError: keys no rule knows, or two keys mapping onto one (named).
    """
    from inpaintzoo.official.keymap import (
        legacy_spectral_norm_to_parametrization,
        rename_keys,
        strip_data_parallel,
    )

    if network not in _OFFICIAL_RULES:
        raise ValueError(
            f"unknown StructureFlow network {network!r}; choose {list(_OFFICIAL_RULES)}"
        )
    converted = rename_keys(
        strip_data_parallel(state_dict), _OFFICIAL_RULES[network], source=source
    )
    converted = {
        k: v.reshape(v.shape[0]) if k.endswith((".2.weight", ".2.bias")) and v.ndim == 3 else v
        for k, v in converted.items()
    }
    return legacy_spectral_norm_to_parametrization(converted, source=source)
