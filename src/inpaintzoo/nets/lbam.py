"""LBAM networks: the bidirectional-attention U-Net generator and the double-column discriminator.

Xie, Liu, Li, Cheng, Zuo, Liu, Wen, Ding, "Image Inpainting with Learnable Bidirectional Attention
Maps", ICCV 2019. Official code: Vious/LBAM_Pytorch (``models/LBAMModel.py``,
``models/discriminator.py``, ``models/forwardAttentionLayer.py``,
``models/reverseAttentionLayer.py``). Architecture facts from ``specs/lbam.md`` §2-§3 and §6;
this is an independent implementation.

Generator (full variant, 256 px; every conv k4 s2 p1, bias-free, no BatchNorm: the released
model's ``bn=False``)::

    input  [image * M, M_1] (4 ch), mask M (3 ch, 1 = valid)
    encoder   ec_1..ec_7: ForwardAttentionConv 4->64->128->256->512->512->512->512
              (128, 64, 32, 16, 8, 4, 2 px), each giving features, the next soft mask, the raw
              conv output (decoder skip) and its forward attention map
    reverse   rev_1..rev_6: ReverseAttentionConv on 1 - M: 3->64->...->512, reverse maps
    decoder   dc_1..dc_6: ReverseAttentionUp; step j (level l = 7 - j): ConvT to the width of
              level l, cat(raw skip of ec_l, .) * cat(forward map l, reverse map l), LReLU 0.2
              (4 -> 128 px; channels 1024, 1024, 1024, 512, 256, 128)
    output    ConvT 128 -> 3 (k4 s2 p1, no bias) at 256 px, then (tanh(x) + 1) / 2

The bottleneck level's (ec_7's) mask, raw output and map are computed and unused, as officially.
Public interface: images in ``[0, 1]`` and inpaintzoo's hole mask (1 = hole); the network
converts once (``M = 1 - mask``, three channels) and returns an image in ``[0, 1]``.
``H, W`` must be multiples of ``2 ** num_levels`` (128 for the full variant).

Discriminator (training only): two columns of six k4 s2 p1 convs (with bias; BatchNorm from the
second, LReLU 0.2), the global one on ``image * M`` (known region), the local one on
``image * (1 - M)`` (hole); concat (1024 ch at 4x4 for 256 px) -> conv k4 (valid) -> sigmoid,
``(B, 1)``: the official output is a **sigmoid probability although the loss is WGAN-GP**
(kept: ``forward(..., sigmoid=False)`` gives the logits).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from inpaintzoo.blocks.learnable_attention import (
    ForwardAttentionConv,
    ReverseAttentionConv,
    ReverseAttentionUp,
)

__all__ = [
    "LBAM_VARIANTS",
    "OFFICIAL_PARAM_COUNTS",
    "DoubleColumnDiscriminator",
    "LBAMGenerator",
    "build_lbam_nets",
    "convert_official_discriminator_state_dict",
    "convert_official_state_dict",
    "lbam_widths",
]

LBAM_VARIANTS: dict[str, dict[str, int]] = {
    # official LBAMModel(4, 3) and DiscriminatorDoubleColumn(3): 7 levels, 256 px training
    "full": {
        "base_channels": 64,
        "max_channels": 512,
        "num_levels": 7,
        "disc_channels": 64,
        "disc_layers": 6,
    },
    # 6 levels (H, W multiples of 64), widths 16..128; a 4-layer discriminator column reaches
    # the 4x4 map its fusion conv needs at 64 px.
    "tiny": {
        "base_channels": 16,
        "max_channels": 128,
        "num_levels": 6,
        "disc_channels": 16,
        "disc_layers": 4,
    },
}

OFFICIAL_PARAM_COUNTS: dict[str, int] = {
    # specs/lbam.md §6 [COMPUTED from the official module definitions]; the generator's count
    # includes the 13 x 4 learnable scalars of its asymmetric Gaussian activations
    "generator": 68_304_948,
    "discriminator": 22_316_417,
}


def lbam_widths(base_channels: int, max_channels: int, num_levels: int) -> list[int]:
    """Encoder widths of levels 1..L: ``min(base * 2**(i-1), max)`` (64..512 at full size)."""
    return [min(base_channels * 2**i, max_channels) for i in range(num_levels)]


class LBAMGenerator(nn.Module):
    """LBAM generator (see the module docstring).

    Args:
        base_channels, max_channels, num_levels: widths ``min(base * 2**i, max)`` of the
            ``num_levels`` encoder levels (64, 512, 7 officially).

    Shape:
        ``forward(image (B, 3, H, W) in [0, 1], mask (B, 1, H, W), 1 = hole)`` -> ``(B, 3, H, W)``
        in ``[0, 1]`` (hole content of ``image`` is ignored). :meth:`features` also returns the
        intermediate maps.
    """

    def __init__(
        self, base_channels: int = 64, max_channels: int = 512, num_levels: int = 7
    ) -> None:
        super().__init__()
        if num_levels < 2:
            raise ValueError(f"num_levels must be >= 2, got {num_levels}")
        widths = lbam_widths(base_channels, max_channels, num_levels)
        self.widths = widths
        self.num_levels = num_levels
        self.size_multiple = 2**num_levels
        self.encoder = nn.ModuleList(
            [ForwardAttentionConv(4, widths[0], mask_channels=3)]
            + [ForwardAttentionConv(widths[i - 1], widths[i]) for i in range(1, num_levels)]
        )
        self.reverse = nn.ModuleList(
            [ReverseAttentionConv(3, widths[0])]
            + [ReverseAttentionConv(widths[i - 1], widths[i]) for i in range(1, num_levels - 1)]
        )
        decoder = []
        for level in range(num_levels - 1, 0, -1):  # decoder step j produces level L - j
            cin = widths[-1] if level == num_levels - 1 else 2 * widths[level]
            decoder.append(ReverseAttentionUp(cin, widths[level - 1]))
        self.decoder = nn.ModuleList(decoder)
        self.output_conv = nn.ConvTranspose2d(2 * widths[0], 3, 4, 2, 1, bias=False)

    def _check(self, image: torch.Tensor, mask: torch.Tensor) -> None:
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"LBAMGenerator expects image (B, 3, H, W), got {tuple(image.shape)}")
        if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != image.shape[0]:
            raise ValueError(
                f"LBAMGenerator expects mask (B, 1, H, W) matching the image "
                f"{tuple(image.shape)}, got {tuple(mask.shape)}"
            )
        h, w = image.shape[-2:]
        m = self.size_multiple
        if h % m or w % m or mask.shape[-2:] != image.shape[-2:]:
            raise ValueError(
                f"LBAMGenerator ({self.num_levels} levels) needs image and mask of one size with "
                f"H and W divisible by {m}, got {h}x{w} and {tuple(mask.shape[-2:])}; pad the "
                "input (inpaintzoo's predictor pads and crops back)"
            )

    def features(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, Any]:
        """Every intermediate map: ``encoder`` (features per level), ``masks`` (soft masks,
        index 0 = the input's), ``forward_maps``, ``reverse_maps``, ``decoder`` and ``output``."""
        self._check(image, mask)
        valid = (1.0 - mask).expand(-1, 3, -1, -1)  # official masks: 3 channels, 1 = valid
        x = torch.cat([image * valid, valid[:, :1]], dim=1)
        features, masks, skips, forward_maps = [], [valid], [], []
        m = valid
        for layer in self.encoder:
            x, m, raw, attention = layer(x, m)
            features.append(x)
            masks.append(m)
            skips.append(raw)
            forward_maps.append(attention)
        reverse_maps = []
        r = 1.0 - valid
        for layer in self.reverse:
            attention, r = layer(r)
            reverse_maps.append(attention)
        decoded = []
        for step, layer in enumerate(self.decoder):
            level = self.num_levels - 1 - step  # 1-based level of the skip / maps used
            maps = torch.cat([forward_maps[level - 1], reverse_maps[level - 1]], dim=1)
            x = layer(skips[level - 1], x, maps)
            decoded.append(x)
        output = (torch.tanh(self.output_conv(x)) + 1.0) / 2.0
        return {
            "encoder": features,
            "masks": masks,
            "forward_maps": forward_maps,
            "reverse_maps": reverse_maps,
            "decoder": decoded,
            "output": output,
        }

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.features(image, mask)["output"]

    @torch.no_grad()
    def project_attention_(self) -> None:
        """Clamp every ``g_A`` parameter into its official range, in place (after a step)."""
        for layer in (*self.encoder, *self.reverse):
            layer.attention.project_()


def _column(in_channels: int, widths: list[int]) -> nn.Sequential:
    """conv k4 s2 p1 + LReLU, then (conv k4 s2 p1, BN, LReLU) per further width: the official
    Sequential's index layout (convs at 0, 2, 5, 8, ...; BatchNorms at 3, 6, ...)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, widths[0], 4, 2, 1),
        nn.LeakyReLU(0.2, inplace=True),
    ]
    for cin, cout in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
    return nn.Sequential(*layers)


class DoubleColumnDiscriminator(nn.Module):
    """LBAM's double-column discriminator (see the module docstring).

    Args:
        base_channels: width of the first conv (64); widths ``min(base * 2**i, 8 * base)``.
        num_layers: stride-2 convs per column (6: 256 px -> 4x4, the fusion conv's kernel).
        in_channels: image channels (3).

    Shape:
        ``forward(image (B, 3, H, W), mask (B, 1, H, W) 1 = hole, sigmoid=True)`` -> ``(B, N)``
        with ``N = (H / 2**num_layers - 3) * (W / 2**num_layers - 3)`` (1 at the training size:
        256 px full, 64 px tiny): sigmoid probabilities as officially, or logits.
    """

    def __init__(self, base_channels: int = 64, num_layers: int = 6, in_channels: int = 3) -> None:
        super().__init__()
        widths = [min(base_channels * 2**i, 8 * base_channels) for i in range(num_layers)]
        self.global_column = _column(in_channels, widths)
        self.local_column = _column(in_channels, widths)
        self.fusion = nn.Conv2d(2 * widths[-1], 1, 4)
        self.num_layers = num_layers

    def forward(
        self, image: torch.Tensor, mask: torch.Tensor, sigmoid: bool = True
    ) -> torch.Tensor:
        smallest = 2**self.num_layers * 4
        if min(image.shape[-2:]) < smallest:
            raise ValueError(
                f"DoubleColumnDiscriminator ({self.num_layers} stride-2 convs and a 4x4 fusion "
                f"conv) needs images of at least {smallest}x{smallest}, got "
                f"{tuple(image.shape[-2:])}: train the full LBAM at 256 px (the tiny variant at "
                "64 px)"
            )
        valid = 1.0 - mask
        known = self.global_column(image * valid)
        hole = self.local_column(image * mask)
        logits = self.fusion(torch.cat([known, hole], dim=1)).flatten(1)
        return torch.sigmoid(logits) if sigmoid else logits


def build_lbam_nets(variant: str = "full", **overrides: Any) -> dict[str, nn.Module]:
    """``{"generator", "discriminator"}`` for a named variant; ``overrides`` replace the
    variant's ``base_channels``, ``max_channels``, ``num_levels``, ``disc_channels``,
    ``disc_layers``."""
    if variant not in LBAM_VARIANTS:
        raise ValueError(f"unknown LBAM variant {variant!r}; choose one of {sorted(LBAM_VARIANTS)}")
    unknown = sorted(set(overrides) - set(LBAM_VARIANTS[variant]))
    if unknown:
        raise ValueError(
            f"unknown LBAM override(s) {unknown}; allowed: {sorted(LBAM_VARIANTS[variant])}"
        )
    cfg = {**LBAM_VARIANTS[variant], **{k: v for k, v in overrides.items() if v is not None}}
    return {
        "generator": LBAMGenerator(
            int(cfg["base_channels"]), int(cfg["max_channels"]), int(cfg["num_levels"])
        ),
        "discriminator": DoubleColumnDiscriminator(
            int(cfg["disc_channels"]), int(cfg["disc_layers"])
        ),
    }


# --------------------------------------------------------------------------- official weights
# Official module path -> ours, by name (Vious/LBAM_Pytorch models/LBAMModel.py: ec1..ec7,
# reverseConv1..6, dc1..dc6, dc7; the ForwardAttention wrapper holds its layer as `.conv`).
_GAUSS = r"activationFuncG_A\.(a|mu|sigma1|sigma2)"
_OFFICIAL_GENERATOR_RULES = [
    (r"ec([1-7])\.conv\.conv\.weight", lambda m: f"encoder.{int(m[1]) - 1}.feature_conv.weight"),
    (r"ec([1-7])\.conv\.maskConv\.weight", lambda m: f"encoder.{int(m[1]) - 1}.mask_conv.weight"),
    (rf"ec([1-7])\.conv\.{_GAUSS}", lambda m: f"encoder.{int(m[1]) - 1}.attention.{m[2]}"),
    (
        r"reverseConv([1-6])\.reverseMaskConv\.weight",
        lambda m: f"reverse.{int(m[1]) - 1}.mask_conv.weight",
    ),
    (rf"reverseConv([1-6])\.{_GAUSS}", lambda m: f"reverse.{int(m[1]) - 1}.attention.{m[2]}"),
    (r"dc([1-6])\.conv\.weight", lambda m: f"decoder.{int(m[1]) - 1}.conv.weight"),
    (r"dc7\.weight", "output_conv.weight"),
]
_OFFICIAL_DISCRIMINATOR_RULES = [
    (r"globalConv\.(\d+)\.(.+)", r"global_column.\1.\2"),
    (r"localConv\.(\d+)\.(.+)", r"local_column.\1.\2"),
    (r"fusionLayer\.0\.(weight|bias)", r"fusion.\1"),
]


def convert_official_state_dict(
    state_dict: Mapping[str, torch.Tensor], *, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """Official ``LBAMModel(4, 3)`` state dict (the file ``train.py`` saves with
    ``torch.save(netG.state_dict(), ...)``; ``test.py`` loads it) -> :class:`LBAMGenerator`
    keys, by name.

    ``ec<i>.conv.conv`` / ``ec<i>.conv.maskConv`` -> ``encoder.<i-1>.feature_conv`` /
    ``mask_conv``, ``ec<i>.conv.activationFuncG_A.<p>`` -> ``encoder.<i-1>.attention.<p>``,
    ``reverseConv<i>.reverseMaskConv`` / ``.activationFuncG_A`` -> ``reverse.<i-1>.*``,
    ``dc<i>.conv`` -> ``decoder.<i-1>.conv``, ``dc7`` -> ``output_conv``. A ``module.`` prefix
    (``nn.DataParallel``) is stripped. The official conventions (mask 1 = valid, 3 channels,
    ``(tanh + 1) / 2`` output) live in :class:`LBAMGenerator`, so no tensor changes.

    Raises:
        OfficialWeightsError: BatchNorm keys (the paper's ``bn=True`` variant, which the authors
            did not release and this generator does not build), or any key no rule knows.
    """
    from inpaintzoo.official.errors import OfficialWeightsError, describe_keys
    from inpaintzoo.official.keymap import rename_keys, strip_data_parallel

    state_dict = strip_data_parallel(state_dict)
    batch_norm = [k for k in state_dict if re.fullmatch(r"(ec|dc)\d+\.bn\..+", k)]
    if batch_norm:
        raise OfficialWeightsError(
            f"{source} is an LBAM generator with BatchNorm (the paper's bn=True version; keys "
            f"{describe_keys(batch_norm, 3)}); the authors' released model and this zoo's "
            "generator have no BatchNorm: use the released file (README: bn set to false)",
            source,
            batch_norm,
        )
    return rename_keys(state_dict, _OFFICIAL_GENERATOR_RULES, source=source)


def convert_official_discriminator_state_dict(
    state_dict: Mapping[str, torch.Tensor], *, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """Official ``DiscriminatorDoubleColumn(3)`` state dict -> :class:`DoubleColumnDiscriminator`
    keys (``globalConv`` -> ``global_column``, ``localConv`` -> ``local_column``,
    ``fusionLayer.0`` -> ``fusion``; Sequential indices and BatchNorm statistics kept). The
    official training code never saves the discriminator, so no release holds one; this is for
    users' own official-code runs and for the parity proof."""
    from inpaintzoo.official.keymap import rename_keys, strip_data_parallel

    return rename_keys(
        strip_data_parallel(state_dict), _OFFICIAL_DISCRIMINATOR_RULES, source=source
    )
