"""Shift-Net networks: the U-Net generator with the shift-connection layer and its PatchGAN.

Yan, Li, Li, Zuo, Shan. "Shift-Net: Image Inpainting via Deep Feature Rearrangement", ECCV 2018
(arXiv:1801.09392). Official code: Zhaoyi-Yan/Shift-Net_pytorch (``models/modules/shift_unet.py``
``UnetGeneratorShiftTriple``, ``models/modules/unet.py``, ``models/modules/discrimators.py``,
``models/networks.py``, ``options/base_options.py``). Facts from ``../shared/specs/shiftnet.md``;
independent implementation.

Generator (full variant, 256 px): the pix2pix ``unet_256`` (:class:`~inpaintzoo.blocks.unet.
Pix2PixUNet`, 8 stride-2 levels, widths 64-128-256-512-512-512-512-512, every conv with a bias,
``tanh`` output) whose level-2 decoder step (the 32x32 level, ``layer_to_last = 3``) runs the
shift-connection layer between its ``ReLU`` and its transposed conv::

    z = relu(cat(u_3, lrelu(d_2)))            former = z[:, :256] (decoder), latter = z[:, 256:]
    z = cat(former, latter, shift(former, latter, hole_32))          (768 @ 32x32)
    u_2 = norm(convT 768 -> 128 (z))

The guidance loss (:meth:`ShiftNetGenerator.features`) compares ``former`` with the ``latter`` of
the ground truth (:meth:`ShiftNetGenerator.guidance_target`) in the hole.

Two configurations of the official code (options ``norm`` and ``mask_channel``):

================================ ======================== ===============
configuration                    official options         generator params
================================ ======================== ===============
repository default (``full``)    ``--norm instance``,     54,944,771
                                 ``--add_mask2input 1``
paper-era (batch norm, RGB only) ``--norm batch``,        54,943,747
                                 ``--add_mask2input 0``
================================ ======================== ===============

Both counts are those of the official classes instantiated (``UnetGeneratorShiftTriple`` with
the repository's ``get_norm_layer``: instance norms affine, batch norms affine; biases on every
conv). ``../shared/specs/shiftnet.md`` §3 lists 54,938,307 and 54,934,915 from a pix2pix-style
rebuild (no conv biases before batch norm; instance norm without affine): the official code has
5,440 more conv biases and 9,856 instance-norm affine parameters than that rebuild
(docs/methods/shiftnet.md).

Discriminator: pix2pix ``NLayerDiscriminator`` (70x70 PatchGAN, ``ndf`` 64, three layers) with the
same norm as the generator and, by the repository default, spectral norm on every conv
(:class:`~inpaintzoo.blocks.patchgan.NLayerDiscriminator`): 2,766,529 parameters with instance
norm, 2,765,633 with batch norm.

Conventions: public inputs are images in ``[0, 1]`` and masks (1 = hole); the networks convert to
the official ``[-1, 1]`` with the hole set to 0 and, with ``mask_channel``, append the official
fourth channel ``1 - mask`` (1 = known).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from inpaintzoo.blocks.init import init_weights
from inpaintzoo.blocks.patchgan import NLayerDiscriminator
from inpaintzoo.blocks.shift import ShiftConnection, shift_latent_mask
from inpaintzoo.blocks.unet import Pix2PixUNet, pix2pix_depth_from_keys, pix2pix_key_rules
from inpaintzoo.conventions import from_signed, to_signed

__all__ = [
    "GENERATOR_PARAM_COUNTS",
    "OFFICIAL_PARAM_COUNTS",
    "SHIFTNET_VARIANTS",
    "ShiftNetDiscriminator",
    "ShiftNetGenerator",
    "build_shiftnet_nets",
    "convert_official_state_dict",
]

SHIFTNET_VARIANTS: dict[str, dict[str, Any]] = {
    # the official repository's defaults (options/base_options.py): unet_shift_triple, ngf 64,
    # 8 levels (256 px), instance norm, mask as a 4th input channel, spectral norm on D
    "full": {
        "base_channels": 64,
        "max_channels": 512,
        "num_downs": 8,
        "disc_channels": 64,
        "norm": "instance",
        "mask_channel": True,
        "disc_spectral_norm": True,
    },
    # 6 levels (64 px down to 1x1; the shift at 8x8), widths 16..128: trains 64 px images on
    # CPU (widths 8..64 learned too slowly: +2 dB only after ~120 batches)
    "tiny": {
        "base_channels": 16,
        "max_channels": 128,
        "num_downs": 6,
        "disc_channels": 16,
        "norm": "instance",
        "mask_channel": True,
        "disc_spectral_norm": True,
    },
}

#: the shift level (``layer_to_last = 3``: the decoder step at H/8)
SHIFT_LEVEL = 2

OFFICIAL_PARAM_COUNTS: dict[str, int] = {
    # the official classes instantiated with the repository defaults (see the module docstring)
    "generator": 54_944_771,
    "discriminator": 2_766_529,
}

#: generator parameters of the official configurations: (norm, mask_channel) -> count
GENERATOR_PARAM_COUNTS: dict[tuple[str, bool], int] = {
    ("instance", True): 54_944_771,
    ("instance", False): 54_943_747,
    ("batch", True): 54_944_771,
    ("batch", False): 54_943_747,
}


class ShiftNetGenerator(nn.Module):
    """Shift-Net generator: pix2pix U-Net with the shift-connection layer at ``shift_level``.

    Args:
        base_channels, max_channels, num_downs: U-Net widths and depth (64, 512, 8).
        norm: ``instance`` (repository default) or ``batch`` (the paper's pix2pix setting).
        mask_channel: append ``1 - mask`` as a 4th input channel (repository
            ``--add_mask2input 1``).
        shift_level: the U-Net level whose decoder step shifts (2: 32x32 of 256 px).
        triple_weight: scale of the gradient the shifted features send to their sources (1).
        init: the official init (conv weights N(0, 0.02), biases 0, batch-norm weights
            N(1, 0.02)).

    Shape:
        ``forward(image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) 1 = hole) -> (B, 3, H, W) in
        [0, 1]`` (hole content ignored); ``H, W`` multiples of ``2 ** num_downs`` (256).
    """

    def __init__(
        self,
        base_channels: int = 64,
        max_channels: int = 512,
        num_downs: int = 8,
        norm: str = "instance",
        mask_channel: bool = True,
        shift_level: int = SHIFT_LEVEL,
        triple_weight: float = 1.0,
        init: bool = True,
    ) -> None:
        super().__init__()
        if not 0 < shift_level < num_downs - 1:
            raise ValueError(f"shift_level must be in 1..{num_downs - 2}, got {shift_level}")
        self.mask_channel = bool(mask_channel)
        self.norm = norm
        self.shift_level = int(shift_level)
        in_channels = 4 if mask_channel else 3
        probe = Pix2PixUNet(3, 3, num_downs, base_channels, max_channels, "none")
        width = probe.widths[shift_level]
        self.unet = Pix2PixUNet(
            in_channels,
            3,
            num_downs,
            base_channels,
            max_channels,
            norm=norm,
            extra_up_channels={shift_level: width},
        )
        self.shift = ShiftConnection(triple_weight)
        self.size_multiple = self.unet.size_multiple
        if init:
            init_weights(self, "normal", 0.02)

    def network_input(self, image: torch.Tensor, mask: torch.Tensor, keep_hole: bool = False):
        """The official input: ``[-1, 1]`` image with the hole set to 0 (``keep_hole``: the full
        image, as the official ground-truth pass) and, with ``mask_channel``, ``1 - mask``."""
        if image.ndim != 4 or image.shape[1] != 3 or mask.shape[1:2] != (1,):
            raise ValueError(
                f"ShiftNetGenerator expects image (B, 3, H, W) and mask (B, 1, H, W), got "
                f"{tuple(image.shape)} and {tuple(mask.shape)}"
            )
        x = to_signed(image)
        if not keep_hole:
            x = x * (1.0 - mask)
        if self.mask_channel:
            x = torch.cat([x, 1.0 - mask], dim=1)
        return x

    def latent_hole(self, mask: torch.Tensor) -> torch.Tensor:
        """Bool (B, 1, H / 2**(shift_level+1), ...) hole mask of the shift level."""
        return shift_latent_mask(mask, self.shift_level + 1)

    def features(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """``output`` (B, 3, H, W) in [0, 1], the shift level's ``decoder`` and ``encoder``
        features (after the ReLU, what the shift compares), ``shifted`` and ``hole``."""
        hole = self.latent_hole(mask)
        taps: dict[str, torch.Tensor] = {}

        def between(level: int, z: torch.Tensor) -> torch.Tensor:
            if level != self.shift_level:
                return z
            former, latter = z.chunk(2, dim=1)
            out = self.shift(former, latter, hole)
            taps.update(decoder=former, encoder=latter, shifted=out[:, 2 * former.shape[1] :])
            return out

        feats = self.unet.encode(self.network_input(image, mask))
        output = from_signed(self.unet.decode(feats, between))
        return {"output": output, "hole": hole, **taps}

    @torch.no_grad()
    def guidance_target(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The guidance target: the shift level's encoder feature ``relu(d_l)`` of the **ground
        truth** (official ``set_gt_latent``: the full image through the same network), detached.
        Only the encoder levels up to the shift level run."""
        x = self.network_input(image, mask, keep_hole=True)
        return torch.relu(self.unet.encode(x, levels=self.shift_level + 1)[-1])

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.features(image, mask)["output"]


class ShiftNetDiscriminator(NLayerDiscriminator):
    """The PatchGAN on ``[0, 1]`` images (converted to the official ``[-1, 1]``); returns
    logits (B, 1, H // 8 - 2, W // 8 - 2) (the official vanilla GAN applies a sigmoid and BCE;
    here BCE-with-logits)."""

    def __init__(
        self, base_channels: int = 64, norm: str = "instance", use_spectral_norm: bool = True
    ) -> None:
        super().__init__(3, base_channels, 3, norm=norm, use_spectral_norm=use_spectral_norm)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return super().forward(to_signed(image))


def build_shiftnet_nets(variant: str = "full", **overrides: Any) -> dict[str, nn.Module]:
    """``{"generator", "discriminator"}`` of a variant (``full``: the repository defaults;
    ``tiny``: 6 levels for 64 px); the variant's keys (``norm``, ``mask_channel``, widths, ...)
    and ``init`` may be overridden."""
    if variant not in SHIFTNET_VARIANTS:
        raise ValueError(
            f"unknown Shift-Net variant {variant!r}; choose one of {sorted(SHIFTNET_VARIANTS)}"
        )
    allowed = {*SHIFTNET_VARIANTS[variant], "init"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"unknown Shift-Net override(s) {unknown}; allowed: {sorted(allowed)}")
    cfg: dict[str, Any] = {**SHIFTNET_VARIANTS[variant], **overrides}
    if cfg["norm"] not in ("instance", "batch"):
        raise ValueError(f"Shift-Net norm must be 'instance' or 'batch', got {cfg['norm']!r}")
    init = bool(cfg.get("init", True))
    discriminator = ShiftNetDiscriminator(
        int(cfg["disc_channels"]), cfg["norm"], bool(cfg["disc_spectral_norm"])
    )
    if init:
        init_weights(discriminator, "normal", 0.02)
    return {
        "generator": ShiftNetGenerator(
            base_channels=int(cfg["base_channels"]),
            max_channels=int(cfg["max_channels"]),
            num_downs=int(cfg["num_downs"]),
            norm=cfg["norm"],
            mask_channel=bool(cfg["mask_channel"]),
            init=init,
        ),
        "discriminator": discriminator,
    }


# --------------------------------------------------------------------------- official weights
def convert_official_state_dict(
    state_dict: Mapping[str, torch.Tensor], network: str, *, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """An official Shift-Net state dict (``<epoch>_net_G.pth`` / ``<epoch>_net_D.pth``, written by
    ``models/shift_net/base_model.py`` ``save_networks``) -> our keys, by name.

    ``network="generator"``: the nested ``UnetGeneratorShiftTriple`` keys (see
    :func:`~inpaintzoo.blocks.unet.pix2pix_key_rules`; the shift block at depth 2 has its up
    conv at index 7 and its norm at 8, after the parameter-free ``InnerCos`` and shift layers)
    -> ``unet.down.<i>`` / ``unet.up.<i>``; batch-norm statistics carried over.
    ``network="discriminator"``: ``model.<i>`` keys are ours; legacy spectral-norm keys
    (``weight_orig/_u/_v``) become parametrization keys. A ``module.`` prefix is stripped.

    Raises:
        OfficialWeightsError: keys no rule knows (e.g. a ``face_unet_shift_triple`` generator,
            whose layers are named ``e1_c, d1_dc, ...``), named in the message.
    """
    from inpaintzoo.official.keymap import (
        legacy_spectral_norm_to_parametrization,
        rename_keys,
        strip_data_parallel,
    )

    converted = strip_data_parallel(state_dict)
    if network == "generator":
        num_downs = pix2pix_depth_from_keys(list(converted))
        special = {SHIFT_LEVEL: {1: "down.{depth}.conv", 2: "down.{depth}.norm",
                                 7: "up.{depth}.conv", 8: "up.{depth}.norm"}}  # fmt: skip
        return rename_keys(converted, pix2pix_key_rules(num_downs, "unet.", special), source=source)
    if network == "discriminator":
        renamed = rename_keys(converted, [(r"model\.(\d+)\.(\w+)", r"model.\1.\2")], source=source)
        return legacy_spectral_norm_to_parametrization(renamed, source=source)
    raise ValueError(f"network must be 'generator' or 'discriminator', got {network!r}")
