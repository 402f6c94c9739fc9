"""Reusable layers: plain ``nn.Module`` blocks with documented shapes, no Lightning/Hydra.

Each block imports alone, e.g. ``from inpaintzoo.blocks import DilatedResBlock``.
"""

from inpaintzoo.blocks.conv import (
    conv2d,
    conv_transpose2d,
    has_spectral_norm,
    legacy_spectral_norm_keys_to_parametrization,
    spectral_norm,
)
from inpaintzoo.blocks.discriminators import PatchDiscriminator
from inpaintzoo.blocks.init import init_weights
from inpaintzoo.blocks.residual import DilatedResBlock, make_norm2d

__all__ = [
    "DilatedResBlock",
    "PatchDiscriminator",
    "conv2d",
    "conv_transpose2d",
    "has_spectral_norm",
    "init_weights",
    "legacy_spectral_norm_keys_to_parametrization",
    "make_norm2d",
    "spectral_norm",
]
