"""pix2pix ``NLayerDiscriminator`` with normalisation layers (and optional spectral norm).

Isola et al., CVPR 2017 (junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py``). Used with
instance norm by CSA's image discriminator ``netD`` (KumapowerLIU/CSA-inpainting
``models/networks.py``) and, spectrally normalised, by Shift-Net's discriminator
(Zhaoyi-Yan/Shift-Net_pytorch ``models/modules/discrimators.py``). The normalisation-free,
spectrally normalised variant of EdgeConnect is :class:`inpaintzoo.blocks.PatchDiscriminator`.

Layers (``n_layers = 3``, ``nf_i = base * min(2**i, 8)``)::

    conv4 s2 p1 in -> nf_0 (bias)                  LeakyReLU(0.2)
    conv4 s2 p1 nf_{i-1} -> nf_i, norm             LeakyReLU(0.2)     i = 1 .. n_layers - 1
    conv4 s1 p1 nf_{n-1} -> nf_n, norm             LeakyReLU(0.2)
    conv4 s1 p1 nf_n -> 1 (bias)                   (logits; no sigmoid here)

The inner convs have a bias only with instance norm (pix2pix's ``use_bias`` rule). Instance norms
are affine (the ``functools.partial(nn.InstanceNorm2d, affine=True)`` of both repositories).
"""

from __future__ import annotations

import torch
from torch import nn

from inpaintzoo.blocks.conv import spectral_norm as apply_spectral_norm
from inpaintzoo.blocks.layers import norm2d

__all__ = ["NLayerDiscriminator"]

PATCHGAN_NORMS = ("instance", "batch", "none")


class NLayerDiscriminator(nn.Module):
    """PatchGAN of ``n_layers + 2`` k4 convs with normalisation layers; returns logits.

    Args:
        in_channels: input channels (3 for images).
        base_channels: ``ndf`` (64).
        n_layers: stride-2 inner convs (3: the 70x70 PatchGAN).
        norm: ``instance`` (affine), ``batch`` or ``none``.
        use_spectral_norm: spectral-normalise every conv (Shift-Net ``use_spectral_norm_D=1``).

    Submodule ``model`` is an ``nn.Sequential`` laid out exactly as the original (conv,
    LeakyReLU, [conv, norm, LeakyReLU]..., conv), so state-dict keys are ``model.<i>.<param>``.

    Shape: ``(B, in_channels, H, W) -> (B, 1, H', W')`` logits with ``H' = H // 8 - 2`` for three
    layers (256 -> 30, 64 -> 6).

    Example:
        >>> d = NLayerDiscriminator(3, 16)
        >>> d(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 1, 6, 6])
    """

    def __init__(
        self,
        in_channels: int,
        base_channels: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        use_spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if norm not in PATCHGAN_NORMS:
            raise ValueError(f"unknown PatchGAN norm {norm!r}; choose one of {PATCHGAN_NORMS}")
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        use_bias = norm != "batch"

        def conv(cin: int, cout: int, stride: int, bias: bool) -> nn.Module:
            layer = nn.Conv2d(cin, cout, 4, stride=stride, padding=1, bias=bias)
            return apply_spectral_norm(layer) if use_spectral_norm else layer

        def width(i: int) -> int:
            return base_channels * min(2**i, 8)

        layers: list[nn.Module] = [conv(in_channels, width(0), 2, True), nn.LeakyReLU(0.2)]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            layers.append(conv(width(i - 1), width(i), stride, use_bias))
            if norm != "none":
                layers.append(norm2d(norm, width(i), affine=True))
            layers.append(nn.LeakyReLU(0.2))
        layers.append(conv(width(n_layers), 1, 1, True))
        self.model = nn.Sequential(*layers)
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"NLayerDiscriminator expects (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        return self.model(x)
