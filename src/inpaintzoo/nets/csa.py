"""CSA networks: rough U-Net, refinement U-Net with the coherent semantic attention layer, image
PatchGAN and feature PatchGAN.

Liu, Jiang, Xiao, Yang. "Coherent Semantic Attention for Image Inpainting", ICCV 2019
(arXiv:1905.12384). Official code: KumapowerLIU/CSA-inpainting (``models/networks.py``:
``UnetGenerator``, ``UnetGeneratorCSA``, ``UnetSkipConnectionBlock_3``, ``CSA``,
``NLayerDiscriminator``, ``PFDiscriminator``; ``models/CSA.py``). Facts from
``../shared/specs/csa.md`` §3-§7; independent implementation.

**Rough network** ``netP`` (:class:`RoughGenerator`): pix2pix ``unet_256``
(:class:`~inpaintzoo.blocks.unet.Pix2PixUNet`, 8 levels, affine instance norm, biases, ``tanh``)
on the masked image whose hole holds the ImageNet mean colour ``(2·123/255 - 1, 2·104/255 - 1,
2·117/255 - 1)`` in ``[-1, 1]`` (official ``set_input``). 54,419,459 parameters.

**Refinement network** ``netG`` (:class:`RefineGenerator`), input 6 channels ``cat(syn,
masked)`` with ``syn`` = rough output in the hole and the image outside, ``masked`` = the image
with the hole set to **0** (the official ``forward`` zeroes the hole of ``input_A`` in place,
after ``netP`` has read it). Levels ``d = 1 .. L`` (``L = 8``), widths ``w_d = min(64·2^d,
512)``, ``w_0 = 64``; every norm is ``InstanceNorm2d(affine=True)``::

    stem      conv3x3 6 -> 64                                               (256)
    level d   down   lrelu, conv4x4 s2 p3 dilation 2 w_{d-1} -> w_{d-1}, IN   (halves)
              expand lrelu, conv3x3 w_{d-1} -> w_d, [CSA layer at d = 3], IN
              ... level d + 1 ...
              merge  relu, convT3x3 2 w_d -> w_{d-1}, IN
              up     relu, convT4x4 s2 p1 w_{d-1} -> w_{d-1}, IN
    level L   lrelu, conv4x4 s2 p3 d2 512 -> 512; relu, convT4x4 s2 p1 512 -> 512, IN
    head      relu, convT3x3 128 -> 3                                      (no tanh)

Spatial: 256 -> 128 -> 64 -> **32 (CSA, 512 channels)** -> 16 -> 8 -> 4 -> 2 -> 1. The skip of
level ``d`` is ``LeakyReLU(0.2)`` of its output (the official blocks start with an in-place
LeakyReLU on the tensor their parent concatenates). 77,692,291 parameters. The consistency loss
reads the CSA layer's output (official ``InnerCos``) and the first 512 channels of the decoder
input of level 3, i.e. the output of level 4 (``InnerCos2``).

**Image discriminator** ``netD``: pix2pix ``NLayerDiscriminator(3, 64, 3)`` with affine
instance norm, no spectral norm, on ``[-1, 1]`` images: 2,766,529 parameters, logits 30x30 at
256 px. **Feature discriminator** ``netF`` (``PFDiscriminator``) on the VGG16 feature the
official ``Vgg16`` calls ``relu3_3`` (its ``slice3`` ends with the third max-pool, so it is
``pool3``: 256 @ H/8): conv4 s2 p1 256 -> 512, LReLU; conv4 s2 p1 512 -> 512,
``InstanceNorm2d(512)`` (not affine), LReLU; conv4 s2 p1 512 -> 512: 10,487,296 parameters.

Conventions: public images ``[0, 1]``, masks 1 = hole; the networks convert to ``[-1, 1]``.
Sizes: ``H, W`` multiples of ``2 ** num_downs`` (256 for the full networks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.blocks.coherent_attention import CoherentSemanticAttention, csa_latent_mask
from inpaintzoo.blocks.init import init_weights
from inpaintzoo.blocks.layers import norm2d
from inpaintzoo.blocks.patchgan import NLayerDiscriminator
from inpaintzoo.blocks.unet import (
    Pix2PixUNet,
    pix2pix_depth_from_keys,
    pix2pix_key_rules,
    unet_widths,
)
from inpaintzoo.conventions import from_signed, to_signed

__all__ = [
    "CSA_LEVEL",
    "CSA_VARIANTS",
    "HOLE_FILL",
    "OFFICIAL_PARAM_COUNTS",
    "CSADiscriminator",
    "FeatureDiscriminator",
    "RefineGenerator",
    "RoughGenerator",
    "build_csa_nets",
    "convert_official_state_dict",
]

CSA_VARIANTS: dict[str, dict[str, int]] = {
    # the official train.ipynb options: ngf = ndf = 64, 8 levels (256 px)
    "full": {
        "base_channels": 64,
        "max_channels": 512,
        "num_downs": 8,
        "disc_channels": 64,
        "feature_disc_channels": 512,
    },
    # 6 levels (64 px down to 1x1, the CSA layer at 8x8), widths 16..128: trains 64 px on CPU
    # (widths 8..64 are 2.5x faster a batch but need twice the batches to learn)
    "tiny": {
        "base_channels": 16,
        "max_channels": 128,
        "num_downs": 6,
        "disc_channels": 16,
        "feature_disc_channels": 32,
    },
}

OFFICIAL_PARAM_COUNTS: dict[str, int] = {
    # specs/csa.md §7 [COMPUTED: official modules instantiated]; checked here the same way
    "rough_generator": 54_419_459,
    "refine_generator": 77_692_291,
    "discriminator": 2_766_529,
    "feature_discriminator": 10_487_296,
}

#: the refinement level holding the CSA layer (32x32 of 256 px: three halvings)
CSA_LEVEL = 3
#: the rough network's hole colour in [-1, 1] (official CSA.set_input: ImageNet mean 123/104/117)
HOLE_FILL = (2 * 123.0 / 255.0 - 1.0, 2 * 104.0 / 255.0 - 1.0, 2 * 117.0 / 255.0 - 1.0)
#: channels of the VGG16 feature netF judges (pool3)
FEATURE_CHANNELS = 256


def _check_inputs(name: str, image: torch.Tensor, mask: torch.Tensor, multiple: int) -> None:
    if image.ndim != 4 or image.shape[1] != 3 or mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(
            f"{name} expects image (B, 3, H, W) and mask (B, 1, H, W), got {tuple(image.shape)} "
            f"and {tuple(mask.shape)}"
        )
    h, w = image.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(
            f"{name} needs H and W divisible by {multiple}, got {h}x{w}; pad the input "
            "(inpaintzoo's predictor pads and crops back)"
        )


class RoughGenerator(nn.Module):
    """CSA's rough network ``netP`` (pix2pix U-Net).

    Shape: ``forward(image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) 1 = hole) -> (B, 3, H, W)
    in [0, 1]`` (hole content ignored: the hole is filled with :data:`HOLE_FILL`).
    """

    def __init__(
        self,
        base_channels: int = 64,
        max_channels: int = 512,
        num_downs: int = 8,
        init: bool = True,
    ) -> None:
        super().__init__()
        self.unet = Pix2PixUNet(3, 3, num_downs, base_channels, max_channels, "instance")
        self.size_multiple = self.unet.size_multiple
        self.register_buffer(
            "hole_fill", torch.tensor(HOLE_FILL).view(1, 3, 1, 1), persistent=False
        )
        if init:
            init_weights(self, "normal", 0.02)

    def network_input(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[-1, 1]`` image with the hole set to the ImageNet mean colour."""
        _check_inputs("RoughGenerator", image, mask, self.size_multiple)
        return to_signed(image) * (1.0 - mask) + self.hole_fill.to(image.dtype) * mask

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return from_signed(self.unet(self.network_input(image, mask)))


class _RefineLevel(nn.Module):
    """One ``UnetSkipConnectionBlock_3`` (or the innermost block): see :class:`RefineGenerator`."""

    def __init__(self, outer: int, inner: int, innermost: bool) -> None:
        super().__init__()
        self.innermost = innermost
        self.down = nn.Conv2d(outer, outer, 4, stride=2, padding=3, dilation=2)
        if innermost:
            if inner != outer:
                raise ValueError(f"the innermost level needs equal widths, got {outer}, {inner}")
            self.up = nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1)
            self.up_norm = norm2d("instance", outer, affine=True)
            return
        self.down_norm = norm2d("instance", outer, affine=True)
        self.expand = nn.Conv2d(outer, inner, 3, padding=1)
        self.expand_norm = norm2d("instance", inner, affine=True)
        self.merge = nn.ConvTranspose2d(2 * inner, outer, 3, padding=1)
        self.merge_norm = norm2d("instance", outer, affine=True)
        self.up = nn.ConvTranspose2d(outer, outer, 4, stride=2, padding=1)
        self.up_norm = norm2d("instance", outer, affine=True)

    def encode(self, x: torch.Tensor, attend=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` is the (already LeakyReLU-activated) input; returns the level's output and the
        CSA layer's output (``attend(h) -> h``), if any."""
        h = F.leaky_relu(self.down_norm(self.down(x)), 0.2)
        h = self.expand(h)
        attended = None
        if attend is not None:
            h = attended = attend(h)
        return self.expand_norm(h), attended

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` = cat(output of the next level, LeakyReLU(this level's output))."""
        z = self.merge_norm(self.merge(F.relu(z)))
        return self.up_norm(self.up(F.relu(z)))

    def innermost_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up_norm(self.up(F.relu(self.down(x))))


class RefineGenerator(nn.Module):
    """CSA's refinement network ``netG`` with the coherent semantic attention layer.

    Args:
        base_channels, max_channels, num_downs: widths and levels (64, 512, 8).
        csa_level: the level whose expand conv is followed by the CSA layer (3: 32x32).
        threshold: latent-mask threshold (5/16).
        triple_weight: the CSA layer's gradient redistribution weight (1).
        init: the official init (conv weights N(0, 0.02), biases 0).

    Shape:
        ``forward(coarse, image, mask) -> (B, 3, H, W)``: ``coarse`` the rough output in
        [0, 1] (only its hole is used), ``image`` in [0, 1] (only its known part is used),
        ``mask`` 1 = hole. The output is the official raw output (no ``tanh``) mapped by
        ``(x + 1) / 2`` (not clamped). :meth:`features` also returns the consistency taps.
    """

    def __init__(
        self,
        base_channels: int = 64,
        max_channels: int = 512,
        num_downs: int = 8,
        csa_level: int = CSA_LEVEL,
        threshold: float = 5.0 / 16.0,
        triple_weight: float = 1.0,
        init: bool = True,
    ) -> None:
        super().__init__()
        if not 1 <= csa_level < num_downs:
            raise ValueError(f"csa_level must be in 1..{num_downs - 1}, got {csa_level}")
        widths = unet_widths(base_channels, max_channels, num_downs + 1)
        self.num_downs = num_downs
        self.csa_level = csa_level
        self.threshold = float(threshold)
        self.size_multiple = 2**num_downs
        self.widths = widths
        self.stem = nn.Conv2d(6, widths[0], 3, padding=1)
        self.levels = nn.ModuleList(
            [
                _RefineLevel(widths[d - 1], widths[d], d == num_downs)
                for d in range(1, num_downs + 1)
            ]
        )
        self.head = nn.ConvTranspose2d(2 * widths[0], 3, 3, padding=1)
        self.csa = CoherentSemanticAttention(triple_weight)
        if init:
            init_weights(self, "normal", 0.02)

    def network_input(self, coarse, image, mask) -> torch.Tensor:
        """Official ``Middle = cat(Syn, input_A)``: rough output in the hole + image outside,
        and the image with the hole set to 0 (all in [-1, 1])."""
        _check_inputs("RefineGenerator", image, mask, self.size_multiple)
        masked = to_signed(image) * (1.0 - mask)
        syn = to_signed(coarse) * mask + masked
        return torch.cat([syn, masked], dim=1)

    def latent_hole(self, mask: torch.Tensor) -> torch.Tensor:
        """Bool (B, 1, H / 2**csa_level, ...) latent hole mask of the CSA layer."""
        return csa_latent_mask(mask, self.csa_level, self.threshold)

    def features(
        self,
        coarse: torch.Tensor,
        image: torch.Tensor,
        mask: torch.Tensor,
        csa_hole: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``output`` (B, 3, H, W) ([0, 1] scale, unclamped), ``raw`` (the official [-1, 1]
        output), ``csa`` (the CSA layer's output, official ``InnerCos`` input), ``decoder`` (the
        output of level ``csa_level + 1``, official ``InnerCos2`` input) and ``hole`` (the
        latent mask, or ``csa_hole`` when given: the CSA layer then uses it instead)."""
        hole = self.latent_hole(mask) if csa_hole is None else csa_hole
        x0 = self.stem(self.network_input(coarse, image, mask))
        outs = [x0]
        taps: dict[str, torch.Tensor] = {"hole": hole}
        for d, level in enumerate(self.levels[:-1], start=1):
            attend = (lambda h: self.csa(h, hole)) if d == self.csa_level else None
            out, attended = level.encode(F.leaky_relu(outs[-1], 0.2), attend)
            if attended is not None:
                taps["csa"] = attended
            outs.append(out)
        u = self.levels[-1].innermost_forward(F.leaky_relu(outs[-1], 0.2))
        for d in range(self.num_downs - 1, 0, -1):
            if d == self.csa_level:
                taps["decoder"] = u
            u = self.levels[d - 1].decode(torch.cat([u, F.leaky_relu(outs[d], 0.2)], dim=1))
        raw = self.head(F.relu(torch.cat([u, F.leaky_relu(x0, 0.2)], dim=1)))
        return {"output": from_signed(raw), "raw": raw, **taps}

    def forward(
        self, coarse: torch.Tensor, image: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        return self.features(coarse, image, mask)["output"]


class CSADiscriminator(NLayerDiscriminator):
    """``netD``: 70x70 PatchGAN with affine instance norm on ``[0, 1]`` images (converted to
    ``[-1, 1]``); logits (B, 1, H // 8 - 2, W // 8 - 2)."""

    def __init__(self, base_channels: int = 64) -> None:
        super().__init__(3, base_channels, 3, norm="instance", use_spectral_norm=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return super().forward(to_signed(image))


class FeatureDiscriminator(nn.Module):
    """``netF`` (official ``PFDiscriminator``) on VGG16 pool3 features (256 channels).

    Shape: ``(B, 256, h, w) -> (B, width, h / 8, w / 8)`` (every element a logit; 4x4 for the
    32x32 pool3 map of a 256 px image).
    """

    def __init__(self, width: int = 512, in_channels: int = FEATURE_CHANNELS) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 4, stride=2, padding=1),
            nn.InstanceNorm2d(width),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 4, stride=2, padding=1),
        )
        self.in_channels = in_channels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 4 or features.shape[1] != self.in_channels:
            raise ValueError(
                f"FeatureDiscriminator expects VGG16 pool3 features (B, {self.in_channels}, h, w), "
                f"got {tuple(features.shape)}"
            )
        return self.model(features)


def build_csa_nets(variant: str = "full", **overrides: Any) -> dict[str, nn.Module]:
    """``{"rough_generator", "refine_generator", "discriminator", "feature_discriminator"}`` of
    a variant (``full``: the official sizes; ``tiny``: 6 levels for 64 px); the variant's width
    keys and ``init`` may be overridden."""
    if variant not in CSA_VARIANTS:
        raise ValueError(f"unknown CSA variant {variant!r}; choose one of {sorted(CSA_VARIANTS)}")
    allowed = {*CSA_VARIANTS[variant], "init"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"unknown CSA override(s) {unknown}; allowed: {sorted(allowed)}")
    cfg: dict[str, Any] = {**CSA_VARIANTS[variant], **overrides}
    init = bool(cfg.get("init", True))
    widths = dict(
        base_channels=int(cfg["base_channels"]),
        max_channels=int(cfg["max_channels"]),
        num_downs=int(cfg["num_downs"]),
    )
    nets: dict[str, nn.Module] = {
        "rough_generator": RoughGenerator(**widths, init=init),
        "refine_generator": RefineGenerator(**widths, init=init),
        "discriminator": CSADiscriminator(int(cfg["disc_channels"])),
        "feature_discriminator": FeatureDiscriminator(int(cfg["feature_disc_channels"])),
    }
    if init:
        init_weights(nets["discriminator"], "normal", 0.02)
        init_weights(nets["feature_discriminator"], "normal", 0.02)
    return nets


# --------------------------------------------------------------------------- official weights
#: official ``UnetSkipConnectionBlock_3`` / ``CSA`` / innermost ``nn.Sequential`` index -> ours
_LEVEL_LAYERS = {1: "down", 2: "down_norm", 4: "expand", 5: "expand_norm", 8: "merge",
                 9: "merge_norm", 11: "up", 12: "up_norm"}  # fmt: skip
_CSA_LAYERS = {1: "down", 2: "down_norm", 4: "expand", 7: "expand_norm", 11: "merge",
               12: "merge_norm", 14: "up", 15: "up_norm"}  # fmt: skip
_INNERMOST_LAYERS = {1: "down", 3: "up", 4: "up_norm"}


def _refine_depth(keys: list[str]) -> int:
    """Levels of an official ``UnetGeneratorCSA`` from its key names (submodule hops: index 6 in
    a ``UnetSkipConnectionBlock_3``, 8 in the ``CSA`` block)."""
    depth = 0
    for key in keys:
        found = re.fullmatch(r"model\.(model\.1\.)?((?:model\.[68]\.)*)model\.\d+\.\w+", key)
        if found and found.group(1):
            depth = max(depth, 1 + found.group(2).count("model."))
    return depth


def _refine_rules(num_downs: int, csa_level: int = CSA_LEVEL) -> list[tuple[str, str]]:
    rules = [(r"model\.model\.0\.(\w+)", r"stem.\1"), (r"model\.model\.3\.(\w+)", r"head.\1")]
    for depth in range(1, num_downs + 1):
        hops = "".join(
            "model\\.8\\." if k == csa_level else "model\\.6\\." for k in range(1, depth)
        )
        path = "model\\.model\\.1\\." + hops
        if depth == num_downs:
            names = _INNERMOST_LAYERS
        elif depth == csa_level:
            names = _CSA_LAYERS
        else:
            names = _LEVEL_LAYERS
        for index, name in names.items():
            rules.append((rf"{path}model\.{index}\.(\w+)", rf"levels.{depth - 1}.{name}.\1"))
    return rules


def convert_official_state_dict(
    state_dict: Mapping[str, torch.Tensor], network: str, *, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """One official CSA state dict (``<epoch>_net_<G|P|D|F>.pth``, written by
    ``models/base_model.py`` ``save_network``) -> our keys, by name.

    ``network``: ``rough_generator`` (``net_P``: nested pix2pix keys -> ``unet.down.<i>`` /
    ``unet.up.<i>``, see :func:`~inpaintzoo.blocks.unet.pix2pix_key_rules`), ``refine_generator``
    (``net_G``: ``model.model.0`` -> ``stem``, ``model.model.3`` -> ``head``, the block at depth
    ``d`` -> ``levels.<d-1>`` with its ``nn.Sequential`` indices named ``down``, ``down_norm``,
    ``expand``, ``expand_norm``, ``merge``, ``merge_norm``, ``up``, ``up_norm`` (the ``CSA`` block
    has its parameter-free CSA/InnerCos layers in between, so its indices differ)),
    ``discriminator`` / ``feature_discriminator`` (``model.<i>``: same names). A ``module.``
    prefix is stripped.

    Raises:
        OfficialWeightsError: keys no rule knows, named.
    """
    from inpaintzoo.official.keymap import rename_keys, strip_data_parallel

    converted = strip_data_parallel(state_dict)
    if network == "rough_generator":
        rules = pix2pix_key_rules(pix2pix_depth_from_keys(list(converted)), "unet.")
    elif network == "refine_generator":
        rules = _refine_rules(max(_refine_depth(list(converted)), CSA_LEVEL + 1))
    elif network in ("discriminator", "feature_discriminator"):
        rules = [(r"model\.(\d+)\.(weight|bias)", r"model.\1.\2")]
    else:
        raise ValueError(
            "network must be rough_generator, refine_generator, discriminator or "
            f"feature_discriminator, got {network!r}"
        )
    return rename_keys(converted, rules, source=source)
