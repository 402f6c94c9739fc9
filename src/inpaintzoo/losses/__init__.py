"""Losses shared by the methods: adversarial (nsgan, lsgan, EdgeConnect's lsgan_sigmoid, hinge,
WGAN-GP with a masked penalty, relativistic-average LSGAN), L1 variants, feature matching, the
VGG16/VGG19 feature extractor with perceptual/style losses, the PConv-family loss (hole/valid
L1, perceptual, style, total variation). Plain ``torch`` modules and functions; no
Lightning/Hydra.

Pretrained VGG weights are never downloaded: :class:`MissingWeightsError` names the file to put
in the torch hub cache, or how to switch the VGG-based losses off.
"""

from inpaintzoo.losses.adversarial import ADVERSARIAL_KINDS, AdversarialLoss, gradient_penalty
from inpaintzoo.losses.feature_matching import feature_matching_loss
from inpaintzoo.losses.pconv import PCONV_TERMS, PConvLoss, hole_valid_l1, total_variation
from inpaintzoo.losses.perceptual import (
    DEFAULT_PERCEPTUAL_LAYERS,
    DEFAULT_STYLE_LAYERS,
    VGG19_LAYER_INDICES,
    VGG_LAYER_INDICES,
    MissingWeightsError,
    PerceptualLoss,
    StyleLoss,
    VGG19Features,
    VGGFeatures,
    VGGLoss,
    exclude_from_state_dict,
    gram_matrix,
    hub_checkpoint_path,
    vgg19_weights_path,
    vgg_weights_url,
)
from inpaintzoo.losses.pyramid import PyramidStructureLoss, edge_priority_map
from inpaintzoo.losses.reconstruction import hole_normalized_l1, l1_loss, masked_l1
from inpaintzoo.losses.spatial_discount import spatial_discounting_mask, spatially_discounted_l1

__all__ = [
    "ADVERSARIAL_KINDS",
    "AdversarialLoss",
    "DEFAULT_PERCEPTUAL_LAYERS",
    "DEFAULT_STYLE_LAYERS",
    "edge_priority_map",
    "exclude_from_state_dict",
    "feature_matching_loss",
    "gradient_penalty",
    "gram_matrix",
    "hole_normalized_l1",
    "hole_valid_l1",
    "hub_checkpoint_path",
    "l1_loss",
    "masked_l1",
    "MissingWeightsError",
    "PCONV_TERMS",
    "PConvLoss",
    "PerceptualLoss",
    "PyramidStructureLoss",
    "spatial_discounting_mask",
    "spatially_discounted_l1",
    "StyleLoss",
    "total_variation",
    "VGG19_LAYER_INDICES",
    "vgg19_weights_path",
    "VGG19Features",
    "VGG_LAYER_INDICES",
    "vgg_weights_url",
    "VGGFeatures",
    "VGGLoss",
]
