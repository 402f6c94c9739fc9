"""GLCIC networks: the dilated completion network and the global + local context
discriminator.

Iizuka, Simo-Serra, Ishikawa. "Globally and Locally Consistent Image Completion", ACM TOG
(SIGGRAPH) 2017. Official release: satoshiiizuka/siggraph2017_inpainting (Torch7/Lua, inference
only: ``inpaint.lua``; the ``.t7`` models are not PyTorch and no importer exists here). Layer facts
from ``../shared/specs/glcic.md`` §1-§2 (the paper's layer tables, checked against the layer
shapes of the unofficial otenim/GLCIC-PyTorch ``models.py``). Independent implementation.

Completion network (full variant, ``b = 64``; every layer conv -> BatchNorm -> ReLU as the
paper, except the output conv -> sigmoid)::

    input  cat((image - mean) * (1 - mask), mask)        4 x H x W
    conv1  5x5        -> b        H       conv7..10  3x3 dilation 2, 4, 8, 16 -> 4b  H/4
    conv2  3x3 s2     -> 2b       H/2     conv11, conv12  3x3 -> 4b           H/4
    conv3  3x3        -> 2b       H/2     deconv13 4x4 s1/2 -> 2b             H/2
    conv4  3x3 s2     -> 4b       H/4     conv14  3x3 -> 2b                   H/2
    conv5, conv6 3x3  -> 4b       H/4     deconv15 4x4 s1/2 -> b              H
                                          conv16  3x3 -> b/2;  conv17 3x3 -> 3 + sigmoid

"Same" padding everywhere (dilation x (k - 1) / 2; deconvs k4 s2 p1): ``H, W`` multiples of 4.
The official input is the image minus the dataset's mean pixel with the hole set to 0 (i.e. the
hole filled with the mean), plus the hole mask (1 = hole, inpaintzoo's polarity): the network
takes inpaintzoo's ``[0, 1]`` image and mask and does this conversion itself; its output is the
``[0, 1]`` RGB image (sigmoid), used in the hole.

Context discriminator (:class:`~inpaintzoo.blocks.context_discriminator.ContextDiscriminator`):
global branch 6 x conv5x5 s2 (64-128-256-512-512-512) on the 256 px image, local branch 5 x conv
5x5 s2 (64-128-256-512-512) on a 128 px patch around the hole, each -> FC 8192 -> 1024 + ReLU;
``[local, global]`` -> FC 2048 -> 1 (logit).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from inpaintzoo.blocks.context_discriminator import (
    ContextDiscriminator,
    ContextDiscriminatorBranch,
)
from inpaintzoo.blocks.layers import ConvNormAct

__all__ = [
    "GLCIC_VARIANTS",
    "OFFICIAL_PARAM_COUNTS",
    "SIZE_MULTIPLE",
    "CompletionNetwork",
    "build_context_discriminator",
    "build_glcic_nets",
    "discriminator_widths",
]

GLCIC_VARIANTS: dict[str, dict[str, int]] = {
    # the paper's Places2 networks: completion width 64; global D on 256 px (6 convs), local D on
    # 128 px patches (5 convs), FC 1024 each
    "full": {
        "base_channels": 64,
        "disc_channels": 64,
        "fc_features": 1024,
        "image_size": 256,
        "local_size": 128,
        "global_layers": 6,
        "local_layers": 5,
    },
    # CPU tests: a quarter of the widths, 64 px images with 32 px local patches (4 and 3 convs:
    # both branches end at 4 x 4 as in the paper), FC 128
    "tiny": {
        "base_channels": 16,
        "disc_channels": 16,
        "fc_features": 128,
        "image_size": 64,
        "local_size": 32,
        "global_layers": 4,
        "local_layers": 3,
    },
}

OFFICIAL_PARAM_COUNTS: dict[str, int] = {
    # specs/glcic.md §6 [COMPUTED with the paper's layer table; Places2 configuration]
    "generator": 6_072_131,
    "discriminator": 45_063_681,
}
#: the two stride-2 convolutions: H and W must be multiples of 4
SIZE_MULTIPLE = 4
#: ImageNet's mean pixel, our default hole fill (the official Places2 model stores the mean of
#: its own training set inside its .t7 file, ``data.mean``, which is not PyTorch)
DEFAULT_MEAN_PIXEL: tuple[float, float, float] = (0.485, 0.456, 0.406)


def _layer(cin: int, cout: int, k: int, stride: int = 1, dilation: int = 1) -> ConvNormAct:
    return ConvNormAct(
        cin,
        cout,
        k,
        stride=stride,
        padding=dilation * (k - 1) // 2,
        dilation=dilation,
        norm="batch",
        activation="relu",
    )


def _deconv(cin: int, cout: int) -> ConvNormAct:
    return ConvNormAct(
        cin, cout, 4, stride=2, padding=1, norm="batch", activation="relu", transposed=True
    )


class CompletionNetwork(nn.Module):
    """GLCIC's completion network (module docstring table; spec §1).

    Args:
        base_channels: ``b`` (64 in the paper): widths b, 2b, 4b and b/2 before the output.
        mean_pixel: the RGB value the hole is filled with (the training set's mean pixel), a
            persistent buffer saved with the weights.

    Shape:
        ``forward(image (B, 3, H, W) in [0, 1], mask (B, 1, H, W), 1 = hole)`` -> ``(B, 3, H, W)``
        in ``(0, 1)``; ``H, W`` multiples of 4. The hole's pixels of ``image`` are never read.
    """

    def __init__(
        self, base_channels: int = 64, mean_pixel: Sequence[float] = DEFAULT_MEAN_PIXEL
    ) -> None:
        super().__init__()
        b = int(base_channels)
        if b < 2 or b % 2:
            raise ValueError(f"base_channels must be an even number >= 2, got {base_channels}")
        if len(mean_pixel) != 3:
            raise ValueError(f"mean_pixel needs 3 values (RGB), got {list(mean_pixel)}")
        self.register_buffer(
            "mean_pixel", torch.tensor([float(v) for v in mean_pixel]).view(1, 3, 1, 1)
        )
        layers: list[tuple[str, nn.Module]] = [
            ("conv1", _layer(4, b, 5)),
            ("conv2", _layer(b, 2 * b, 3, stride=2)),
            ("conv3", _layer(2 * b, 2 * b, 3)),
            ("conv4", _layer(2 * b, 4 * b, 3, stride=2)),
            ("conv5", _layer(4 * b, 4 * b, 3)),
            ("conv6", _layer(4 * b, 4 * b, 3)),
        ]
        for i, d in zip(range(7, 11), (2, 4, 8, 16)):
            layers.append((f"conv{i}", _layer(4 * b, 4 * b, 3, dilation=d)))
        layers += [
            ("conv11", _layer(4 * b, 4 * b, 3)),
            ("conv12", _layer(4 * b, 4 * b, 3)),
            ("deconv13", _deconv(4 * b, 2 * b)),
            ("conv14", _layer(2 * b, 2 * b, 3)),
            ("deconv15", _deconv(2 * b, b)),
            ("conv16", _layer(b, b // 2, 3)),
            ("conv17", ConvNormAct(b // 2, 3, 3, padding=1, activation="sigmoid")),
        ]
        self.layers = nn.Sequential(OrderedDict(layers))

    def network_input(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The official input ``cat((image - mean) * (1 - mask), mask)``: ``(B, 4, H, W)``."""
        if not torch.jit.is_tracing():  # (ONNX export traces with symbolic sizes)
            _check_inputs(image, mask)
        mask = mask.to(image.dtype)
        mean = self.mean_pixel.to(image.dtype)
        return torch.cat([(image - mean) * (1.0 - mask), mask], dim=1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.layers(self.network_input(image, mask))


def _check_inputs(image: torch.Tensor, mask: torch.Tensor) -> None:
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"CompletionNetwork expects image (B, 3, H, W), got {image.shape}")
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"CompletionNetwork expects mask (B, 1, H, W) matching the image, got "
            f"{tuple(mask.shape)}"
        )
    h, w = image.shape[-2:]
    if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
        raise ValueError(
            f"GLCIC's completion network needs H and W divisible by {SIZE_MULTIPLE}, got "
            f"{h}x{w} (the predictor pads to the multiple)"
        )


def discriminator_widths(disc_channels: int, layers: int) -> list[int]:
    """Widths of a context discriminator branch: ``min(d * 2**i, 8 d)`` (64 ... 512)."""
    return [min(disc_channels * 2**i, 8 * disc_channels) for i in range(layers)]


def build_context_discriminator(
    disc_channels: int,
    fc_features: int,
    image_size: int,
    local_size: int,
    global_layers: int,
    local_layers: int,
) -> ContextDiscriminator:
    """The global + local context discriminator for RGB inputs (spec §2)."""
    return ContextDiscriminator(
        ContextDiscriminatorBranch(
            3, discriminator_widths(disc_channels, global_layers), image_size, fc_features
        ),
        ContextDiscriminatorBranch(
            3, discriminator_widths(disc_channels, local_layers), local_size, fc_features
        ),
    )


def build_glcic_nets(variant: str = "full", **overrides: Any) -> dict[str, nn.Module]:
    """``{"generator": CompletionNetwork, "discriminator": ContextDiscriminator}``.

    Args:
        variant: ``"full"`` (the paper's Places2 networks and counts) or ``"tiny"``.
        **overrides: replace the variant's values (``base_channels``, ``disc_channels``,
            ``fc_features``, ``image_size``, ``local_size``, ``global_layers``,
            ``local_layers``); ``mean_pixel`` passes to the completion network.

    Weights keep PyTorch's default initialisation (uniform ``+-1/sqrt(fan_in)``, the same rule as
    Torch7's default ``reset`` the authors' framework used; the paper names no other).
    """
    if variant not in GLCIC_VARIANTS:
        raise ValueError(
            f"unknown GLCIC variant {variant!r}; choose one of {sorted(GLCIC_VARIANTS)}"
        )
    allowed = {*GLCIC_VARIANTS[variant], "mean_pixel"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"unknown GLCIC override(s) {unknown}; allowed: {sorted(allowed)}")
    cfg: dict[str, Any] = {**GLCIC_VARIANTS[variant], **overrides}
    mean = cfg.get("mean_pixel", DEFAULT_MEAN_PIXEL)
    return {
        "generator": CompletionNetwork(int(cfg["base_channels"]), mean_pixel=mean),
        "discriminator": build_context_discriminator(
            int(cfg["disc_channels"]),
            int(cfg["fc_features"]),
            int(cfg["image_size"]),
            int(cfg["local_size"]),
            int(cfg["global_layers"]),
            int(cfg["local_layers"]),
        ),
    }
