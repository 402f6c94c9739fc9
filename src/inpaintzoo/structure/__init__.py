"""Structure maps as batched torch ops: gray (scikit-image coefficients), Canny edges (kornia),
Sobel gradients, RTV structure smoothing (StructureFlow), and EdgeConnect's edge
precision/recall.

No Lightning/Hydra here; every function takes and returns ``(B, C, H, W)`` tensors.
"""

from inpaintzoo.structure.edges import (
    CannyEdges,
    canny_edges,
    canny_kernel_size,
    dilate_hole,
    edge_precision_recall,
)
from inpaintzoo.structure.gradient import gradient_magnitude, sobel_gradients
from inpaintzoo.structure.gray import SKIMAGE_GRAY_WEIGHTS, rgb_to_gray
from inpaintzoo.structure.rtv import (
    RTV_DEFAULTS,
    RTV_SOLVERS,
    RTVCache,
    rtv_smooth,
    rtv_smooth_reference,
    rtv_solve,
)

__all__ = [
    "RTV_DEFAULTS",
    "RTVCache",
    "RTV_SOLVERS",
    "rtv_smooth",
    "rtv_smooth_reference",
    "rtv_solve",
    "SKIMAGE_GRAY_WEIGHTS",
    "CannyEdges",
    "canny_edges",
    "canny_kernel_size",
    "dilate_hole",
    "edge_precision_recall",
    "gradient_magnitude",
    "rgb_to_gray",
    "sobel_gradients",
]
