"""PConv-Net: the partial-convolution U-Net of Liu et al.

Liu, Reda, Shih, Wang, Tao, Catanzaro. "Image Inpainting for Irregular Holes Using Partial
Convolutions", ECCV 2018 (arXiv:1804.07723). The authors released only the layer and a VGG loss
(NVIDIA/partialconv ``models/partialconv2d.py``, ``models/loss.py``): **there is no official
network or weight release**. The layer table is the paper's as written out by the unofficial
naoto0804/pytorch-inpainting-with-partial-conv ``net.py`` (the reference every later paper's
"PConv" numbers come from), via ``../shared/specs/pconv.md`` §2. Independent implementation over
:class:`~inpaintzoo.blocks.PartialConv2d` (the NVIDIA rule ``sum(1)/sum(M)``; its all-ones mask
kernel is a buffer, so parameter counts are the trainable ones).

U-Net with ``L`` levels (``L = 7`` at 256 px: ``full``; ``L = 8`` at 512 px: ``full512``)::

    enc_1  PConv 7x7 s2  3 -> 64       ReLU (no BN)           H/2
    enc_2  PConv 5x5 s2  64 -> 128     BN ReLU                H/4
    enc_3  PConv 5x5 s2  128 -> 256    BN ReLU                H/8
    enc_4  PConv 3x3 s2  256 -> 512    BN ReLU                H/16
    enc_5..enc_L  PConv 3x3 s2  512 -> 512  BN ReLU           ... H/2**L
    dec_i (i = L..1): nearest x2 of features and masks, concatenated with enc_{i-1}'s (features
        and masks; enc_0 = the input image and mask), PConv 3x3 s1: 1024 -> 512 (i >= 5),
        768 -> 256, 384 -> 128, 192 -> 64 with BN + LeakyReLU(0.2); dec_1 67 -> 3 with bias, no
        BN, no activation (unbounded output).

No conv has a bias except ``dec_1``. Masks are multi-channel (one per feature channel), **1 =
valid** inside the network (the partial-convolution convention): the network takes inpaintzoo's
hole mask (1 = hole) and converts it once, at its input. The image goes in and comes out in the
working space the method chooses (naoto0804 and NVIDIA's loss: ImageNet-normalised); the hole's
pixels are never read (every partial convolution multiplies its input by its mask, including
``dec_1``'s skip of the input image). ``H, W`` must be multiples of ``2**L``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.blocks.partial_conv import PartialConv2d, PartialConvBlock

__all__ = [
    "OFFICIAL_PARAM_COUNTS",
    "OFFICIAL_PARAM_COUNTS_BY_VARIANT",
    "PCONV_VARIANTS",
    "PConvUNet",
    "build_pconv_nets",
    "encoder_widths",
]

PCONV_VARIANTS: dict[str, dict[str, int]] = {
    # the zoo's default full size: 7 levels, trained at 256 px (naoto0804's layer_size=7)
    "full": {"base_channels": 64, "max_channels": 512, "num_levels": 7},
    # the paper's 512 px network: 8 levels (H, W multiples of 256)
    "full512": {"base_channels": 64, "max_channels": 512, "num_levels": 8},
    # CPU tests: 5 levels (64 px reaches 2 x 2), widths 16..64
    "tiny": {"base_channels": 16, "max_channels": 64, "num_levels": 5},
}

OFFICIAL_PARAM_COUNTS_BY_VARIANT: dict[str, dict[str, int]] = {
    # specs/pconv.md §6 [COMPUTED from naoto0804's PConvUNet, trainable parameters]
    "full": {"generator": 25_779_796},
    "full512": {"generator": 32_859_732},
}
OFFICIAL_PARAM_COUNTS: dict[str, int] = OFFICIAL_PARAM_COUNTS_BY_VARIANT["full"]

# the first three encoder levels keep the paper's kernels (7, 5, 5), deeper levels use 3
_KERNELS = (7, 5, 5)


def encoder_widths(base_channels: int, max_channels: int, num_levels: int) -> list[int]:
    """Widths of encoder levels 1..L: ``min(base * 2**(i-1), max)`` (64..512)."""
    return [min(base_channels * 2**i, max_channels) for i in range(num_levels)]


class PConvUNet(nn.Module):
    """The PConv-Net U-Net (module docstring).

    Args:
        base_channels, max_channels, num_levels: the widths ``min(base * 2**(i-1), max)`` of
            the ``L = num_levels`` encoder levels (64, 512, 7 or 8).
        in_channels: image channels (3).

    Shape:
        ``forward(x (B, C, H, W), mask (B, 1, H, W), 1 = hole)`` -> ``(B, C, H, W)``, in the
        space ``x`` was given in (unbounded). ``H, W`` multiples of ``2**num_levels``.
    """

    def __init__(
        self,
        base_channels: int = 64,
        max_channels: int = 512,
        num_levels: int = 7,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if num_levels < 2:
            raise ValueError(f"num_levels must be >= 2, got {num_levels}")
        self.num_levels = int(num_levels)
        self.in_channels = int(in_channels)
        widths = encoder_widths(base_channels, max_channels, num_levels)
        self.widths = widths
        encoder: dict[str, nn.Module] = {}
        cin = in_channels
        for level, cout in enumerate(widths, start=1):
            k = _KERNELS[level - 1] if level <= len(_KERNELS) else 3
            encoder[f"enc_{level}"] = PartialConvBlock(
                cin, cout, k, stride=2, padding=k // 2, bn=level > 1, activation="relu"
            )
            cin = cout
        decoder: dict[str, nn.Module] = {}
        for level in range(num_levels, 0, -1):
            skip = widths[level - 2] if level >= 2 else in_channels
            if level >= 2:
                block = PartialConvBlock(widths[level - 1] + skip, skip, 3, activation="leaky_relu")
            else:
                block = PartialConvBlock(
                    widths[0] + skip, in_channels, 3, bn=False, activation="none", bias=True
                )
            decoder[f"dec_{level}"] = block
        self.encoder = nn.ModuleDict(encoder)
        self.decoder = nn.ModuleDict(decoder)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Kaiming-normal (fan_in) weights and zero biases for the partial convolutions, as the
        paper and naoto0804's ``weights_init('kaiming')``; BatchNorm keeps PyTorch's init."""
        for m in self.modules():
            if isinstance(m, PartialConv2d):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def size_multiple(self) -> int:
        return 2**self.num_levels

    def encoder_batch_norms(self) -> list[nn.Module]:
        """The encoder's BatchNorms (frozen while fine-tuning)."""
        return [m for m in self.encoder.modules() if isinstance(m, nn.BatchNorm2d)]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing():  # (ONNX export traces with symbolic sizes)
            self._check(x, mask)
        valid = (1.0 - mask.to(x.dtype)).expand(-1, x.shape[1], -1, -1)
        features, masks = [x], [valid]
        for block in self.encoder.values():
            x, valid = block(x, valid)
            features.append(x)
            masks.append(valid)
        for level in range(self.num_levels, 0, -1):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            valid = F.interpolate(valid, scale_factor=2.0, mode="nearest")
            x = torch.cat([x, features[level - 1]], dim=1)
            valid = torch.cat([valid, masks[level - 1]], dim=1)
            x, valid = self.decoder[f"dec_{level}"](x, valid)
        return x

    def _check(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"PConvUNet expects x (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[-2:] != x.shape[-2:]:
            raise ValueError(
                f"PConvUNet expects a hole mask (B, 1, H, W) matching x, got {tuple(mask.shape)}"
            )
        h, w = x.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(
                f"PConvUNet with {self.num_levels} levels needs H and W divisible by {m}, got "
                f"{h}x{w} (the predictor pads to the multiple)"
            )


def build_pconv_nets(variant: str = "full", **overrides: Any) -> dict[str, nn.Module]:
    """``{"generator": PConvUNet}`` for a named variant.

    Args:
        variant: ``"full"`` (7 levels, 256 px), ``"full512"`` (8 levels, 512 px) or ``"tiny"``.
        **overrides: ``base_channels``, ``max_channels``, ``num_levels`` replace the variant's.
    """
    if variant not in PCONV_VARIANTS:
        raise ValueError(
            f"unknown PConv variant {variant!r}; choose one of {sorted(PCONV_VARIANTS)}"
        )
    unknown = sorted(set(overrides) - set(PCONV_VARIANTS[variant]))
    if unknown:
        raise ValueError(
            f"unknown PConv override(s) {unknown}; allowed: {sorted(PCONV_VARIANTS[variant])}"
        )
    cfg = {**PCONV_VARIANTS[variant], **overrides}
    return {
        "generator": PConvUNet(
            int(cfg["base_channels"]), int(cfg["max_channels"]), int(cfg["num_levels"])
        )
    }
