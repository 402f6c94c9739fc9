"""EdgeConnect networks: edge generator G1, inpainting generator G2, SN PatchGAN D1/D2.

Nazeri, Ng, Joseph, Qureshi, Ebrahimi. "EdgeConnect: Structure Guided Image Inpainting using Edge
Prediction", ICCV Workshops 2019 (arXiv:1901.00212). Official code: knazeri/edge-connect
(``src/networks.py``). Architecture facts are taken from ``specs/edgeconnect.md`` §3; this is an
independent implementation.

Both generators are the same encoder / dilated-residual middle / decoder::

    ReflectionPad(3), Conv k7 in->b;  IN; ReLU          (H, W)
    Conv k4 s2 p1 b->2b;              IN; ReLU          (H/2, W/2)
    Conv k4 s2 p1 2b->4b;             IN; ReLU          (H/4, W/4)
    n x DilatedResBlock(4b, dilation 2)                 (H/4, W/4)
    ConvTranspose k4 s2 p1 4b->2b;    IN; ReLU          (H/2, W/2)
    ConvTranspose k4 s2 p1 2b->b;     IN; ReLU          (H, W)
    ReflectionPad(3), Conv k7 b->out  (bias, no SN, no norm)

with ``IN = InstanceNorm2d(affine=False, track_running_stats=False)`` (no parameters). G1
spectral-normalises every conv but the last (and its residual convs are then bias-free); G2 has
no spectral norm. Sizes: ``H, W`` must be multiples of :data:`SIZE_MULTIPLE` (4) and at least
:data:`MIN_SIZE` (12, the reflection pads of the 1/4-resolution residual blocks); the
discriminators need at least :data:`DISCRIMINATOR_MIN_SIZE` (24).

Value ranges follow the official code and the project conventions: inputs in ``[0, 1]``, mask
1 = hole, G1 outputs an edge probability (sigmoid), G2 an RGB image ``(tanh(x) + 1) / 2`` in
``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from inpaintzoo.blocks import (
    DilatedResBlock,
    PatchDiscriminator,
    conv2d,
    conv_transpose2d,
    init_weights,
)
from inpaintzoo.conventions import from_signed

__all__ = [
    "DISCRIMINATOR_MIN_SIZE",
    "EDGECONNECT_VARIANTS",
    "MIN_SIZE",
    "OFFICIAL_PARAM_COUNTS",
    "SIZE_MULTIPLE",
    "EdgeConnectDiscriminator",
    "EdgeGenerator",
    "InpaintGenerator",
    "build_edgeconnect_nets",
    "convert_official_state_dict",
]

SIZE_MULTIPLE = 4
"""Two stride-2 stages: generator inputs need ``H, W`` divisible by 4."""

MIN_SIZE = 12
"""Smallest generator side: the 1/4-resolution map (3 px) must exceed the res-block pad (2)."""

DISCRIMINATOR_MIN_SIZE = 24
"""Smallest discriminator input side giving a 1x1 patch map (``H // 8 - 2 >= 1``)."""

EDGECONNECT_VARIANTS: dict[str, dict[str, int]] = {
    "full": {"base_channels": 64, "num_residual_blocks": 8, "disc_channels": 64},
    "tiny": {"base_channels": 16, "num_residual_blocks": 4, "disc_channels": 16},
}

OFFICIAL_PARAM_COUNTS: dict[str, int] = {
    # Computed from the official module definitions (spec §3.4); SN u/v are buffers.
    "edge_generator": 10_761_089,
    "inpaint_generator": 10_774_595,
    "edge_discriminator": 2_762_752,
    "inpaint_discriminator": 2_763_776,
}


def _check_input(x: torch.Tensor, in_channels: int, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(
            f"{name} expects input of shape (B, {in_channels}, H, W), got {tuple(x.shape)}"
        )
    h, w = x.shape[-2:]
    if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
        raise ValueError(
            f"{name} needs H and W divisible by {SIZE_MULTIPLE} (size_multiple), got {h}x{w}; "
            "pad the input (inpaintzoo's predictor pads and crops back automatically)"
        )
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(f"{name} needs H and W >= {MIN_SIZE} (min_size), got {h}x{w}")


class _EdgeConnectGenerator(nn.Module):
    """Shared encoder / middle / decoder of G1 and G2; ``forward_logits`` is pre-activation.

    Submodule names and ``nn.Sequential`` indices follow the official ``encoder``, ``middle``,
    ``decoder`` so that :func:`convert_official_state_dict` output loads with ``strict=True``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_channels: int,
        num_residual_blocks: int,
        use_spectral_norm: bool,
        init: bool,
    ) -> None:
        super().__init__()
        b, sn = base_channels, use_spectral_norm
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3),
            conv2d(in_channels, b, 7, use_spectral_norm=sn),
            nn.InstanceNorm2d(b, track_running_stats=False),
            nn.ReLU(inplace=True),
            conv2d(b, 2 * b, 4, stride=2, padding=1, use_spectral_norm=sn),
            nn.InstanceNorm2d(2 * b, track_running_stats=False),
            nn.ReLU(inplace=True),
            conv2d(2 * b, 4 * b, 4, stride=2, padding=1, use_spectral_norm=sn),
            nn.InstanceNorm2d(4 * b, track_running_stats=False),
            nn.ReLU(inplace=True),
        )
        self.middle = nn.Sequential(
            *[
                DilatedResBlock(4 * b, dilation=2, use_spectral_norm=sn)
                for _ in range(num_residual_blocks)
            ]
        )
        self.decoder = nn.Sequential(
            conv_transpose2d(4 * b, 2 * b, 4, stride=2, padding=1, use_spectral_norm=sn),
            nn.InstanceNorm2d(2 * b, track_running_stats=False),
            nn.ReLU(inplace=True),
            conv_transpose2d(2 * b, b, 4, stride=2, padding=1, use_spectral_norm=sn),
            nn.InstanceNorm2d(b, track_running_stats=False),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(3),
            # The output conv is never spectrally normalised and never normalised.
            conv2d(b, out_channels, 7),
        )
        if init:
            init_weights(self, "normal", 0.02)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W) -> (B, out_channels, H, W)`` pre-activation output."""
        _check_input(x, self.in_channels, type(self).__name__)
        return self.decoder(self.middle(self.encoder(x)))


class EdgeGenerator(_EdgeConnectGenerator):
    """EdgeConnect G1: masked gray + masked edges + mask -> full edge map (spec §3.1).

    Args:
        in_channels: 3 = ``[gray * (1 - m) + m, edge * (1 - m), m]`` in the official code.
        base_channels: encoder width ``b`` (64; widths b, 2b, 4b).
        num_residual_blocks: dilated residual blocks at 1/4 resolution (8).
        use_spectral_norm: SN on every conv except the last (True); the residual convs are
            bias-free when SN is on.
        init: EdgeConnect init (conv weights N(0, 0.02), biases 0).

    Shape:
        ``forward``: ``(B, in_channels, H, W) -> (B, 1, H, W)`` edge probability in ``[0, 1]``;
        ``forward_logits``: the same before the sigmoid (use with ``BCEWithLogits`` under
        autocast). ``H, W`` divisible by 4 and >= 12, else ``ValueError``.

    Example:
        >>> g1 = EdgeGenerator(base_channels=8, num_residual_blocks=1)
        >>> g1(torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 1, 64, 64])
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        num_residual_blocks: int = 8,
        use_spectral_norm: bool = True,
        init: bool = True,
    ) -> None:
        super().__init__(
            in_channels, 1, base_channels, num_residual_blocks, use_spectral_norm, init
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W) -> (B, 1, H, W)`` edge probability (sigmoid)."""
        return torch.sigmoid(self.forward_logits(x))


class InpaintGenerator(_EdgeConnectGenerator):
    """EdgeConnect G2: masked RGB + composite edge map -> RGB (spec §3.2).

    Same topology as :class:`EdgeGenerator` without spectral norm (residual convs with bias)
    and with a 3-channel output conv.

    Args:
        in_channels: 4 = ``[rgb * (1 - m) + m (3 ch), edge (1 ch)]`` in the official code.
        base_channels: encoder width (64).
        num_residual_blocks: dilated residual blocks (8).
        init: EdgeConnect init (conv weights N(0, 0.02), biases 0).

    Shape:
        ``forward``: ``(B, in_channels, H, W) -> (B, 3, H, W)`` image ``(tanh(x) + 1) / 2`` in
        ``[0, 1]``; ``forward_logits``: ``x`` before the tanh. ``H, W`` divisible by 4 and
        >= 12, else ``ValueError``.

    Example:
        >>> g2 = InpaintGenerator(base_channels=8, num_residual_blocks=1)
        >>> g2(torch.rand(1, 4, 64, 64)).shape
        torch.Size([1, 3, 64, 64])
    """

    def __init__(
        self,
        in_channels: int = 4,
        base_channels: int = 64,
        num_residual_blocks: int = 8,
        init: bool = True,
    ) -> None:
        super().__init__(in_channels, 3, base_channels, num_residual_blocks, False, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W) -> (B, 3, H, W)`` RGB in ``[0, 1]``."""
        return from_signed(torch.tanh(self.forward_logits(x)))


class EdgeConnectDiscriminator(PatchDiscriminator):
    """EdgeConnect D1/D2: spectrally normalised, bias-free 5-conv PatchGAN (spec §3.3).

    D1 takes ``in_channels=2`` (full gray image, edge map), D2 ``in_channels=3`` (RGB).

    Shape:
        ``(B, in_channels, H, W) -> (logits (B, 1, H // 8 - 2, W // 8 - 2), [5 features])``;
        256 -> 30x30, 64 -> 6x6. Logits, no sigmoid (the official nsgan sigmoid lives in the
        loss here).
    """

    def __init__(self, in_channels: int, base_channels: int = 64, init: bool = True) -> None:
        super().__init__(
            in_channels, base_channels, use_spectral_norm=True, bias=False, num_layers=3
        )
        if init:
            init_weights(self, "normal", 0.02)


def build_edgeconnect_nets(variant: str = "full", **overrides: Any) -> dict[str, nn.Module]:
    """Build G1, G2, D1, D2 for a named width variant.

    Args:
        variant: a key of :data:`EDGECONNECT_VARIANTS` (``"full"`` = official sizes,
            ``"tiny"`` = width 16, 4 residual blocks, for CPU tests).
        **overrides: ``base_channels``, ``num_residual_blocks``, ``disc_channels`` replace the
            variant's values; ``use_spectral_norm`` (G1 only) and ``init`` pass through.

    Returns:
        ``{"edge_generator", "inpaint_generator", "edge_discriminator",
        "inpaint_discriminator"}``; full-size parameter counts equal
        :data:`OFFICIAL_PARAM_COUNTS`.
    """
    if variant not in EDGECONNECT_VARIANTS:
        raise ValueError(
            f"unknown EdgeConnect variant {variant!r}; choose one of {sorted(EDGECONNECT_VARIANTS)}"
        )
    allowed = {*EDGECONNECT_VARIANTS[variant], "use_spectral_norm", "init"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"unknown EdgeConnect override(s) {unknown}; allowed: {sorted(allowed)}")
    cfg: dict[str, Any] = {**EDGECONNECT_VARIANTS[variant], **overrides}
    init = bool(cfg.get("init", True))
    return {
        "edge_generator": EdgeGenerator(
            in_channels=3,
            base_channels=cfg["base_channels"],
            num_residual_blocks=cfg["num_residual_blocks"],
            use_spectral_norm=bool(cfg.get("use_spectral_norm", True)),
            init=init,
        ),
        "inpaint_generator": InpaintGenerator(
            in_channels=4,
            base_channels=cfg["base_channels"],
            num_residual_blocks=cfg["num_residual_blocks"],
            init=init,
        ),
        "edge_discriminator": EdgeConnectDiscriminator(2, cfg["disc_channels"], init=init),
        "inpaint_discriminator": EdgeConnectDiscriminator(3, cfg["disc_channels"], init=init),
    }


#: Key prefixes of G1's spectrally normalised transposed convs (SN over dim 1 there).
_TRANSPOSED_SN = ("decoder.0", "decoder.3")


def convert_official_state_dict(
    state_dict: Mapping[str, torch.Tensor], *, source: str = "state dict"
) -> dict[str, torch.Tensor]:
    """Map one official EdgeConnect network's state dict onto these modules, by name.

    Pass the inner dict of an official file: ``torch.load("EdgeModel_gen.pth")["generator"]``
    (G1), ``InpaintingModel_gen.pth["generator"]`` (G2), ``*_dis.pth["discriminator"]``
    (D1/D2); official ``src/models.py`` ``BaseModel.save`` writes them. Module paths already
    match (``encoder``, ``middle.<i>.conv_block``, ``decoder``, ``conv1..conv5``); the
    conversion

    * strips a ``module.`` prefix (a generator saved under ``nn.DataParallel``);
    * drops the discriminator's ``features.*`` keys: the official ``Discriminator`` does
      ``self.conv1 = self.features = nn.Sequential(...)``, so its state dict holds the first
      conv twice; the copies must be equal (else :class:`OfficialWeightsError`);
    * renames the legacy spectral-norm keys ``weight_orig / weight_u / weight_v`` to the
      parametrization API's, solving ``v`` for pre-1.0 files that store ``weight`` instead
      (:func:`inpaintzoo.official.keymap.legacy_spectral_norm_to_parametrization`).

    ``source`` names the file in error messages. The result loads with ``strict=True``; use
    :func:`inpaintzoo.official.keymap.check_state_dict` for a message listing every bad key.
    """
    from inpaintzoo.official.keymap import (
        drop_module_aliases,
        legacy_spectral_norm_to_parametrization,
        strip_data_parallel,
    )

    converted = strip_data_parallel(state_dict)
    converted = drop_module_aliases(converted, "features", "conv1", source=source)
    return legacy_spectral_norm_to_parametrization(
        converted, source=source, transposed=_TRANSPOSED_SN
    )
