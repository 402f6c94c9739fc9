"""Reusable layers: plain ``nn.Module`` blocks with documented shapes, no Lightning/Hydra.

Each block imports alone, e.g. ``from inpaintzoo.blocks import DilatedResBlock``.
"""

from inpaintzoo.blocks.cfa import CFA, MSFA, RegionAffinityLearning
from inpaintzoo.blocks.conv import (
    conv2d,
    conv_transpose2d,
    has_spectral_norm,
    legacy_spectral_norm_keys_to_parametrization,
    spectral_norm,
)
from inpaintzoo.blocks.discriminators import PatchDiscriminator
from inpaintzoo.blocks.flow import GaussianSampler, flow_warp, gaussian_sample
from inpaintzoo.blocks.fusion import BiGFF
from inpaintzoo.blocks.init import init_weights
from inpaintzoo.blocks.layers import (
    ChannelLayerNorm,
    ConvNormAct,
    GatedConv2d,
    activation,
    norm2d,
)
from inpaintzoo.blocks.nonlocal_attention import PooledNonLocalAttention
from inpaintzoo.blocks.partial_conv import PartialConv2d, PartialConvBlock
from inpaintzoo.blocks.residual import DilatedResBlock

__all__ = [
    "CFA",
    "MSFA",
    "BiGFF",
    "ChannelLayerNorm",
    "ConvNormAct",
    "DilatedResBlock",
    "GatedConv2d",
    "GaussianSampler",
    "PartialConv2d",
    "PartialConvBlock",
    "PatchDiscriminator",
    "PooledNonLocalAttention",
    "RegionAffinityLearning",
    "conv2d",
    "conv_transpose2d",
    "flow_warp",
    "gaussian_sample",
    "has_spectral_norm",
    "activation",
    "init_weights",
    "legacy_spectral_norm_keys_to_parametrization",
    "norm2d",
    "spectral_norm",
]
