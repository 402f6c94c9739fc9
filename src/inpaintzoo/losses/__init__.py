"""Losses shared by the methods: adversarial (nsgan/lsgan/hinge), L1 variants, feature matching,
VGG19 perceptual/style. Plain ``torch`` modules and functions; no Lightning/Hydra.

Pretrained VGG weights are never downloaded: :class:`MissingWeightsError` names the file to put
in the torch hub cache, or how to switch the VGG-based losses off.
"""

from inpaintzoo.losses.adversarial import ADVERSARIAL_KINDS, AdversarialLoss
from inpaintzoo.losses.feature_matching import feature_matching_loss
from inpaintzoo.losses.perceptual import (
    DEFAULT_PERCEPTUAL_LAYERS,
    DEFAULT_STYLE_LAYERS,
    VGG19_LAYER_INDICES,
    MissingWeightsError,
    PerceptualLoss,
    StyleLoss,
    VGG19Features,
    VGGLoss,
    exclude_from_state_dict,
    gram_matrix,
    hub_checkpoint_path,
    vgg19_weights_path,
)
from inpaintzoo.losses.pyramid import PyramidStructureLoss, edge_priority_map
from inpaintzoo.losses.reconstruction import hole_normalized_l1, l1_loss, masked_l1

__all__ = [
    "ADVERSARIAL_KINDS",
    "DEFAULT_PERCEPTUAL_LAYERS",
    "DEFAULT_STYLE_LAYERS",
    "VGG19_LAYER_INDICES",
    "AdversarialLoss",
    "MissingWeightsError",
    "PerceptualLoss",
    "PyramidStructureLoss",
    "StyleLoss",
    "VGG19Features",
    "VGGLoss",
    "edge_priority_map",
    "exclude_from_state_dict",
    "feature_matching_loss",
    "gram_matrix",
    "hole_normalized_l1",
    "hub_checkpoint_path",
    "l1_loss",
    "masked_l1",
    "vgg19_weights_path",
]
