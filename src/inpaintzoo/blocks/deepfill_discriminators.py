"""The discriminators of DeepFill v1 and v2 (Yu et al., CVPR 2018 / ICCV 2019).

Facts from ``specs/deepfill_v1.md`` §5 and ``specs/deepfill_v2.md`` §5 (official
JiahuiYu/generative_inpainting ``inpaint_model.py`` and ``inpaint_ops.py`` ``dis_conv``, branches
v1.0.0 and master); an independent implementation. Both stack ``dis_conv`` layers: a 5 x 5
convolution at stride 2 with bias ('SAME' padding, here the symmetric padding 2) followed by
LeakyReLU(0.2).

* :class:`DeepFillCritic`: DeepFill v1's WGAN-GP critics, four ``dis_conv`` layers, no
  normalisation, flattened into one dense unit. The dense layer fixes the input size: the local
  critic (widths 64, 128, 256, 512) judges the 128 x 128 patch around the hole, the global
  critic (64, 128, 256, 256) the 256 x 256 image.
* :class:`DeepFillSNPatchGAN`: DeepFill v2's SN-PatchGAN, six spectral-normalised ``dis_conv``
  layers (64, 128, 256, 256, 256, 256), LeakyReLU after every one including the last, and no
  1-channel head: **every element** of the last feature map is a logit (the hinge loss averages
  over all of them). Any input size.

Weights are initialised as TensorFlow's defaults in the official code (Glorot/Xavier uniform
weights, zero biases), before spectral normalisation is attached.

GLCIC's global + local discriminators (fully connected heads, BCE) are a different design and
live elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from inpaintzoo.blocks.conv import spectral_norm

__all__ = ["DeepFillCritic", "DeepFillSNPatchGAN", "dis_conv", "glorot_"]


def glorot_(layer: nn.Module) -> nn.Module:
    """TensorFlow's default initialisation of ``tf.layers.conv2d`` / ``dense`` (the official
    code's): Glorot (Xavier) uniform weights, zero bias. In place; returns the layer."""
    with torch.no_grad():
        nn.init.xavier_uniform_(layer.weight)
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


def dis_conv(in_channels: int, out_channels: int, spectral: bool = False) -> nn.Sequential:
    """DeepFill's ``dis_conv``: conv 5x5 stride 2 padding 2 (bias) + LeakyReLU(0.2); the conv is
    spectral-normalised with ``spectral`` (v2). Halves H and W (rounding up)."""
    conv = glorot_(nn.Conv2d(in_channels, out_channels, 5, stride=2, padding=2))
    return nn.Sequential(spectral_norm(conv, enabled=spectral), nn.LeakyReLU(0.2))


class DeepFillCritic(nn.Module):
    """DeepFill v1 WGAN critic: ``dis_conv`` stack -> flatten -> dense 1 (no sigmoid).

    Args:
        in_channels: 3 (RGB in [-1, 1]; the official ``GAN_WITH_MASK: False``).
        widths: output channels of the four ``dis_conv`` layers: ``(64, 128, 256, 512)`` for the
            local critic, ``(64, 128, 256, 256)`` for the global one.
        input_size: the square input side the dense layer is sized for (128 local, 256 global
            at the official training size); must be divisible by ``2 ** len(widths)``.

    Shape:
        ``(B, in_channels, input_size, input_size) -> (B, 1)`` critic scores (real values).
        Parameters: local (128 px) 4,339,329; global (256 px) 2,733,441.

    Example:
        >>> critic = DeepFillCritic(widths=(8, 16, 32, 32), input_size=32)
        >>> critic(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 1])
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = (64, 128, 256, 512),
        input_size: int = 128,
    ) -> None:
        super().__init__()
        factor = 2 ** len(widths)
        if input_size < factor or input_size % factor:
            raise ValueError(
                f"a DeepFill critic with {len(widths)} stride-2 layers needs an input size "
                f"divisible by {factor}, got {input_size}"
            )
        self.input_size = int(input_size)
        chans = [in_channels, *widths]
        self.convs = nn.Sequential(*(dis_conv(chans[i], chans[i + 1]) for i in range(len(widths))))
        side = input_size // factor
        self.fc = glorot_(nn.Linear(side * side * chans[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(
                f"this DeepFill critic's dense layer is sized for {self.input_size}x"
                f"{self.input_size} inputs, got {x.shape[-2]}x{x.shape[-1]}: train at the size "
                "the critics were built for (the method's train_size option)"
            )
        return self.fc(self.convs(x).flatten(1))


class DeepFillSNPatchGAN(nn.Module):
    """DeepFill v2 SN-PatchGAN: six spectral-normalised ``dis_conv`` layers, every output
    element a logit.

    Args:
        in_channels: 4 = RGB in [-1, 1] + mask (``gan_with_mask: True``); 5 with the sketch.
        base_channels: width of the first layer (64); the widths are
            ``base x (1, 2, 4, 4, 4, 4)``.
        num_layers: number of ``dis_conv`` layers (6).

    Shape:
        ``(B, in_channels, H, W) -> (B, 4 base, ceil(H / 64), ceil(W / 64))`` (after the last
        LeakyReLU; 256 x 4 x 4 at 256 px), all of them logits of the hinge loss.
        Parameters: 5,946,816 with 4 input channels, 5,948,416 with 5.

    Example:
        >>> d = DeepFillSNPatchGAN(4, base_channels=8)
        >>> d(torch.rand(2, 4, 64, 64)).shape
        torch.Size([2, 32, 1, 1])
    """

    def __init__(self, in_channels: int = 4, base_channels: int = 64, num_layers: int = 6) -> None:
        super().__init__()
        widths = [base_channels * min(2**i, 4) for i in range(num_layers)]
        chans = [in_channels, *widths]
        self.convs = nn.Sequential(
            *(dis_conv(chans[i], chans[i + 1], spectral=True) for i in range(num_layers))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x)
