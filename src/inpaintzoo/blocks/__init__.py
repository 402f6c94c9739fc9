"""Reusable layers: plain ``nn.Module`` blocks with documented shapes, no Lightning/Hydra.

Each block imports alone, e.g. ``from inpaintzoo.blocks import DilatedResBlock``.
"""

from inpaintzoo.blocks.cfa import CFA, MSFA, RegionAffinityLearning
from inpaintzoo.blocks.coherent_attention import CoherentSemanticAttention, csa_latent_mask
from inpaintzoo.blocks.context_discriminator import (
    ContextDiscriminator,
    ContextDiscriminatorBranch,
    crop_around_holes,
    hole_bounding_boxes,
    random_crops,
)
from inpaintzoo.blocks.contextual_attention import ContextualAttention
from inpaintzoo.blocks.conv import (
    conv2d,
    conv_transpose2d,
    has_spectral_norm,
    legacy_spectral_norm_keys_to_parametrization,
    spectral_norm,
)
from inpaintzoo.blocks.deepfill_discriminators import DeepFillCritic, DeepFillSNPatchGAN
from inpaintzoo.blocks.discriminators import PatchDiscriminator
from inpaintzoo.blocks.equalization import (
    ChannelEqualization,
    FeatureEqualization,
    SpatialEqualization,
    gaussian_aggregation_weights,
)
from inpaintzoo.blocks.flow import GaussianSampler, flow_warp, gaussian_sample
from inpaintzoo.blocks.fusion import BiGFF
from inpaintzoo.blocks.gaussian_activation import AsymmetricGaussian, MaskUpdate, mask_update
from inpaintzoo.blocks.init import init_weights
from inpaintzoo.blocks.knowledge_attention import KnowledgeConsistentAttention
from inpaintzoo.blocks.layers import (
    ChannelLayerNorm,
    ConvNormAct,
    GatedConv2d,
    activation,
    norm2d,
)
from inpaintzoo.blocks.learnable_attention import (
    ForwardAttentionConv,
    ReverseAttentionConv,
    ReverseAttentionUp,
)
from inpaintzoo.blocks.mask_kernel_pconv import MaskKernelPartialConv2d
from inpaintzoo.blocks.nonlocal_attention import PooledNonLocalAttention
from inpaintzoo.blocks.partial_conv import PartialConv2d, PartialConvBlock
from inpaintzoo.blocks.patchgan import NLayerDiscriminator
from inpaintzoo.blocks.residual import DilatedResBlock
from inpaintzoo.blocks.shift import ShiftConnection, shift_latent_mask
from inpaintzoo.blocks.unet import Pix2PixUNet
from inpaintzoo.blocks.vsr import ResidualBottleneck, VisualStructureReconstruction

__all__ = [
    "activation",
    "AsymmetricGaussian",
    "BiGFF",
    "CFA",
    "ChannelEqualization",
    "ChannelLayerNorm",
    "CoherentSemanticAttention",
    "ContextDiscriminator",
    "ContextDiscriminatorBranch",
    "ContextualAttention",
    "conv2d",
    "conv_transpose2d",
    "ConvNormAct",
    "crop_around_holes",
    "csa_latent_mask",
    "DeepFillCritic",
    "DeepFillSNPatchGAN",
    "DilatedResBlock",
    "FeatureEqualization",
    "flow_warp",
    "ForwardAttentionConv",
    "GatedConv2d",
    "gaussian_aggregation_weights",
    "gaussian_sample",
    "GaussianSampler",
    "has_spectral_norm",
    "hole_bounding_boxes",
    "init_weights",
    "KnowledgeConsistentAttention",
    "legacy_spectral_norm_keys_to_parametrization",
    "mask_update",
    "MaskKernelPartialConv2d",
    "MaskUpdate",
    "MSFA",
    "NLayerDiscriminator",
    "norm2d",
    "PartialConv2d",
    "PartialConvBlock",
    "PatchDiscriminator",
    "Pix2PixUNet",
    "PooledNonLocalAttention",
    "random_crops",
    "RegionAffinityLearning",
    "ResidualBottleneck",
    "ReverseAttentionConv",
    "ReverseAttentionUp",
    "shift_latent_mask",
    "ShiftConnection",
    "SpatialEqualization",
    "spectral_norm",
    "VisualStructureReconstruction",
]
