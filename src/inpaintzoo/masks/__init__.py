"""Masks: polarity handling, mask files, random generators, mask sources and hole-ratio bins.

Numpy masks here are float32 ``(H, W)`` in ``{0, 1}``, **1 = hole** (see
:mod:`inpaintzoo.conventions`). No Lightning or Hydra import in this package.

>>> import numpy as np
>>> from inpaintzoo.masks import free_form_mask, hole_ratio, CTSDG_BINS
>>> mask = free_form_mask(64, 64, np.random.default_rng(0))
>>> mask.shape, mask.dtype, CTSDG_BINS.index(hole_ratio(mask)) >= -1
((64, 64), dtype('float32'), True)
"""

from inpaintzoo.masks.files import (
    MASK_EXTENSIONS,
    MaskFiles,
    list_mask_files,
    load_mask,
    read_mask_array,
)
from inpaintzoo.masks.generators import (
    DEEPFILL_REFERENCE_SIZE,
    deepfill_box_mask,
    deepfill_v2_mask,
    free_form_mask,
    half_mask,
    rectangle_mask,
    square_mask,
)
from inpaintzoo.masks.polarity import AUTO_MAX_HOLE_RATIO, binarize_mask, to_gray
from inpaintzoo.masks.ratio import (
    CTSDG_BINS,
    NVIDIA6_BINS,
    HoleRatioBins,
    hole_ratio,
    hole_ratio_batch,
)
from inpaintzoo.masks.sources import (
    MASK_KINDS,
    DeepFillV2Masks,
    FreeFormMasks,
    HalfMasks,
    MaskSource,
    MixedMasks,
    RectangleMasks,
    SquareMasks,
    build_mask_source,
    check_mask_array,
)

__all__ = [
    "AUTO_MAX_HOLE_RATIO",
    "CTSDG_BINS",
    "DEEPFILL_REFERENCE_SIZE",
    "MASK_EXTENSIONS",
    "MASK_KINDS",
    "NVIDIA6_BINS",
    "DeepFillV2Masks",
    "FreeFormMasks",
    "HalfMasks",
    "HoleRatioBins",
    "MaskFiles",
    "MaskSource",
    "MixedMasks",
    "RectangleMasks",
    "SquareMasks",
    "binarize_mask",
    "build_mask_source",
    "check_mask_array",
    "deepfill_box_mask",
    "deepfill_v2_mask",
    "free_form_mask",
    "half_mask",
    "hole_ratio",
    "hole_ratio_batch",
    "list_mask_files",
    "load_mask",
    "read_mask_array",
    "rectangle_mask",
    "square_mask",
    "to_gray",
]
