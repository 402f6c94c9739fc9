"""Patch discriminators.

:class:`PatchDiscriminator` is the pix2pix ``NLayerDiscriminator`` topology (Isola et al.,
"Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017) as used,
spectrally normalised and without normalisation layers, by EdgeConnect's D1/D2 (Nazeri et al.
ICCVW 2019, knazeri/edge-connect ``src/networks.py``), CTSDG's texture/structure branches and the
structure-knowledge discriminator (with bias). See ``specs/edgeconnect.md`` §3.3.
"""

from __future__ import annotations

import torch
from torch import nn

from inpaintzoo.blocks.conv import conv2d

__all__ = ["PatchDiscriminator"]


class PatchDiscriminator(nn.Module):
    """PatchGAN of ``num_layers + 2`` k4 p1 convs returning logits and per-stage features.

    With ``num_layers=3`` (default, EdgeConnect) the convs are::

        in -> base (s2) -> 2 base (s2) -> 4 base (s2) -> 8 base (s1) -> 1 (s1)

    each followed by LeakyReLU(0.2) except the last. Widths are ``base * min(2**i, 8)``.
    No normalisation layers and **no sigmoid**: the last stage returns logits, so the loss
    applies the sigmoid (``BCEWithLogits``, autocast-safe) or uses them directly (hinge).

    Args:
        in_channels: input channels (EdgeConnect D1: 2 = gray + edge; D2: 3 = RGB).
        base_channels: width of the first conv (64 in EdgeConnect).
        use_spectral_norm: spectral-normalise every conv (EdgeConnect: True).
        bias: conv bias; ``None`` means ``not use_spectral_norm`` (EdgeConnect's rule).
        num_layers: number of stride-2 convs (pix2pix ``n_layers``); the total is
            ``num_layers + 2`` convs.

    Shape:
        ``x (B, in_channels, H, W) -> (logits (B, 1, H', W'), features)`` where ``features`` is
        the list of the ``num_layers + 2`` stage outputs after their activation, the last one
        being ``logits`` itself (used by the feature-matching loss). With ``num_layers=3``:
        ``H' = H // 8 - 2``; 256 -> 30, 64 -> 6; needs ``H, W >= 24``.

    Example:
        >>> d = PatchDiscriminator(3)
        >>> logits, feats = d(torch.rand(1, 3, 64, 64))
        >>> logits.shape, len(feats)
        (torch.Size([1, 1, 6, 6]), 5)
    """

    def __init__(
        self,
        in_channels: int,
        base_channels: int = 64,
        use_spectral_norm: bool = True,
        bias: bool | None = None,
        num_layers: int = 3,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if bias is None:
            bias = not use_spectral_norm
        self.in_channels = in_channels
        self.num_layers = num_layers

        def widths(i: int) -> int:
            return base_channels * min(2**i, 8)

        # (in, out, stride, activation) per stage.
        plan: list[tuple[int, int, int, bool]] = [(in_channels, widths(0), 2, True)]
        plan += [(widths(i - 1), widths(i), 2, True) for i in range(1, num_layers)]
        plan.append((widths(num_layers - 1), widths(num_layers), 1, True))
        plan.append((widths(num_layers), 1, 1, False))

        # One Sequential per stage, named conv1..convN like the original so that converted
        # official state dicts load (``conv1.0.parametrizations.weight.original``...).
        self.stage_names: list[str] = []
        for idx, (cin, cout, stride, act) in enumerate(plan, start=1):
            layers: list[nn.Module] = [
                conv2d(
                    cin,
                    cout,
                    4,
                    stride=stride,
                    padding=1,
                    bias=bias,
                    use_spectral_norm=use_spectral_norm,
                )
            ]
            if act:
                layers.append(nn.LeakyReLU(0.2, inplace=True))
            name = f"conv{idx}"
            self.add_module(name, nn.Sequential(*layers))
            self.stage_names.append(name)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(B, C, H, W) -> (logits (B, 1, H', W'), [stage outputs])``."""
        features: list[torch.Tensor] = []
        for name in self.stage_names:
            x = getattr(self, name)(x)
            features.append(x)
        return x, features
