"""Random training masks, pure numpy + OpenCV drawing, seeded by an explicit generator.

Every generator has the signature ``f(height, width, rng, **params)`` with
``rng: numpy.random.Generator`` and returns float32 ``(height, width)`` in ``{0, 1}``, 1 = hole.
Integer ranges written as ``(low, high)`` are half-open, ``[low, high)``, like
``Generator.integers``.

Sources of the algorithms (facts only; the code here is written from the description):

* :func:`free_form_mask` and :func:`deepfill_box_mask` / :func:`deepfill_v2_mask`: DeepFill v2,
  Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV 2019, as trained by the
  official code (JiahuiYu/generative_inpainting v2.0.0, ``inpaint_ops.py``
  ``brush_stroke_mask`` / ``random_bbox`` / ``bbox2mask``); see ``specs/deepfill_v2.md`` §7.
* :func:`square_mask` and :func:`half_mask`: EdgeConnect mask types 1 and 2 (Nazeri et al.,
  2019, knazeri/edge-connect ``src/dataset.py``); see ``specs/edgeconnect.md`` §2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "DEEPFILL_REFERENCE_SIZE",
    "deepfill_box_mask",
    "deepfill_v2_mask",
    "free_form_mask",
    "half_mask",
    "rectangle_mask",
    "square_mask",
]

#: Image size (px) at which DeepFill v2's pixel parameters (brush width 12-40 px, box 128 px,
#: box shrink up to 16 px) are defined.
DEEPFILL_REFERENCE_SIZE = 256


def _check_size(height: int, width: int) -> tuple[int, int]:
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"mask size must be positive, got {height}x{width}")
    return height, width


def _check_rng(rng: np.random.Generator) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got "
            f"{type(rng).__name__}"
        )
    return rng


def _pair(value: Sequence[float], name: str) -> tuple[float, float]:
    low, high = value
    if high < low:
        raise ValueError(f"{name} must be (low, high) with low <= high, got {tuple(value)}")
    return low, high


def free_form_mask(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    num_strokes: Sequence[int] = (1, 4),
    num_vertex: Sequence[int] = (4, 12),
    mean_angle: float = 2 * math.pi / 5,
    angle_range: float = 2 * math.pi / 15,
    brush_width: Sequence[float] = (12.0, 40.0),
    average_radius: float | None = None,
    reference_size: int | None = DEEPFILL_REFERENCE_SIZE,
) -> np.ndarray:
    """DeepFill v2 free-form brush-stroke mask (``brush_stroke_mask`` of the official code).

    Algorithm (specs/deepfill_v2.md §7):

    * ``average_radius = sqrt(H² + W²) / 8`` (so stroke lengths scale with the image);
    * number of strokes uniform in ``[num_strokes)`` = {1, 2, 3};
    * per stroke: ``num_vertex`` uniform in ``[4, 12)``;
      ``angle_min = mean_angle - U(0, angle_range)``, ``angle_max = mean_angle + U(0, angle_range)``
      with ``mean_angle = 2π/5``, ``angle_range = 2π/15``; vertex angle ``i`` is
      ``2π - U(angle_min, angle_max)`` for even ``i`` and ``U(angle_min, angle_max)`` for odd
      ``i`` (a zig-zag); the start vertex is uniform over the image; each next vertex lies at
      distance ``r = clip(N(avg_r, avg_r // 2), 0, 2 avg_r)`` along its angle, its coordinates
      clipped to ``[0, W]`` x ``[0, H]``; brush width ``int(U(12, 40))`` px; the polyline is
      drawn with that width plus a filled disc of radius ``width // 2`` at every vertex.

    Scaling with size: the official code is defined at 256 px, where the brush width is
    12-40 px. With ``reference_size=256`` (default) the width range is multiplied by
    ``sqrt(H² + W²) / (256 √2)`` (1 at 256x256; 3-10 px at 64x64), like the stroke lengths, so
    the hole-ratio distribution does not depend on the image size. ``reference_size=None``
    keeps the widths in absolute pixels, exactly as the official code at any size. The
    official random flips are dead code there and are not reproduced. Measured hole ratio
    (tests/test_masks.py, 200 masks): mean 0.16 (range 0.02-0.39) at 64 and at 256 px;
    with the DeepFill v2 box added (:func:`deepfill_v2_mask`) mean 0.30 (0.14-0.49).

    Args:
        height, width: mask size in pixels.
        rng: the random generator (the only source of randomness).
        num_strokes: ``[low, high)`` range of the number of strokes.
        num_vertex: ``[low, high)`` range of the number of vertices per stroke.
        mean_angle, angle_range: the zig-zag angle parameters (radians).
        brush_width: ``(min, max)`` brush width in px at ``reference_size``.
        average_radius: mean segment length in px; default ``sqrt(H² + W²) / 8``.
        reference_size: size at which ``brush_width`` is given (``None``: absolute px).

    Returns:
        float32 ``(height, width)`` in ``{0, 1}``, 1 = hole.
    """
    height, width = _check_size(height, width)
    rng = _check_rng(rng)
    stroke_lo, stroke_hi = _pair(num_strokes, "num_strokes")
    vertex_lo, vertex_hi = _pair(num_vertex, "num_vertex")
    width_lo, width_hi = _pair(brush_width, "brush_width")
    diagonal = math.sqrt(height * height + width * width)
    radius = diagonal / 8 if average_radius is None else float(average_radius)
    scale = 1.0 if reference_size is None else diagonal / (reference_size * math.sqrt(2))

    canvas = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(stroke_lo, stroke_hi))):
        vertices = int(rng.integers(vertex_lo, vertex_hi))
        angle_min = mean_angle - rng.uniform(0, angle_range)
        angle_max = mean_angle + rng.uniform(0, angle_range)
        angles = [
            2 * math.pi - rng.uniform(angle_min, angle_max)
            if i % 2 == 0
            else rng.uniform(angle_min, angle_max)
            for i in range(vertices)
        ]
        points = [(int(rng.integers(0, width)), int(rng.integers(0, height)))]
        for angle in angles:
            step = min(max(float(rng.normal(radius, radius // 2)), 0.0), 2.0 * radius)
            x = min(max(points[-1][0] + step * math.cos(angle), 0.0), float(width))
            y = min(max(points[-1][1] + step * math.sin(angle), 0.0), float(height))
            points.append((int(x), int(y)))
        brush = max(1, int(rng.uniform(width_lo * scale, width_hi * scale)))
        for start, end in zip(points[:-1], points[1:]):
            cv2.line(canvas, start, end, 1, thickness=brush)
        for point in points:
            cv2.circle(canvas, point, brush // 2, 1, thickness=-1)
    return canvas.astype(np.float32)


def deepfill_box_mask(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    box_frac: float = 0.5,
    max_delta_frac: float = 0.125,
) -> np.ndarray:
    """DeepFill v2's training box (``random_bbox`` + ``bbox2mask`` of the official code).

    At 256 px: a 128x128 box at a uniformly random position (no margin), then shrunk by
    ``dh`` rows at the top *and* the bottom and ``dw`` columns at the left *and* the right,
    ``dh, dw`` independent and uniform in ``{0, ..., max_delta // 2}`` with ``max_delta = 32``.
    Here both are fractions of the image side: box ``box_frac * H`` by ``box_frac * W``,
    ``max_delta = max_delta_frac * H`` (resp. W), which gives exactly those numbers at 256 px.
    """
    height, width = _check_size(height, width)
    rng = _check_rng(rng)
    box_h = max(1, round(box_frac * height))
    box_w = max(1, round(box_frac * width))
    top = int(rng.integers(0, height - box_h + 1))
    left = int(rng.integers(0, width - box_w + 1))
    shrink_h = int(rng.integers(0, round(max_delta_frac * height) // 2 + 1))
    shrink_w = int(rng.integers(0, round(max_delta_frac * width) // 2 + 1))
    mask = np.zeros((height, width), np.float32)
    mask[top + shrink_h : top + box_h - shrink_h, left + shrink_w : left + box_w - shrink_w] = 1.0
    return mask


def deepfill_v2_mask(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    box_frac: float = 0.5,
    max_delta_frac: float = 0.125,
    **stroke_params,
) -> np.ndarray:
    """DeepFill v2 training mask: the union of :func:`deepfill_box_mask` and
    :func:`free_form_mask` (``stroke_params`` go to the latter)."""
    box = deepfill_box_mask(height, width, rng, box_frac=box_frac, max_delta_frac=max_delta_frac)
    strokes = free_form_mask(height, width, rng, **stroke_params)
    return np.maximum(box, strokes)


def rectangle_mask(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    min_frac: float = 0.25,
    max_frac: float = 0.5,
) -> np.ndarray:
    """One random axis-aligned box: its height and width are independent uniform fractions
    ``[min_frac, max_frac]`` of the image height and width (rounded, at least 1 px); its
    position is uniform over the image (the box stays inside)."""
    height, width = _check_size(height, width)
    rng = _check_rng(rng)
    if not 0.0 < min_frac <= max_frac <= 1.0:
        raise ValueError(f"need 0 < min_frac <= max_frac <= 1, got {min_frac}, {max_frac}")
    box_h = min(height, max(1, round(rng.uniform(min_frac, max_frac) * height)))
    box_w = min(width, max(1, round(rng.uniform(min_frac, max_frac) * width)))
    top = int(rng.integers(0, height - box_h + 1))
    left = int(rng.integers(0, width - box_w + 1))
    mask = np.zeros((height, width), np.float32)
    mask[top : top + box_h, left : left + box_w] = 1.0
    return mask


def square_mask(
    height: int, width: int, rng: np.random.Generator, *, frac: float = 0.5
) -> np.ndarray:
    """EdgeConnect ``MASK=1``: a block of ``int(H * frac)`` x ``int(W * frac)`` (H/2 x W/2, a
    quarter of the image, by default) at a uniformly random position inside the image."""
    height, width = _check_size(height, width)
    rng = _check_rng(rng)
    if not 0.0 < frac <= 1.0:
        raise ValueError(f"frac must lie in (0, 1], got {frac}")
    box_h, box_w = max(1, int(height * frac)), max(1, int(width * frac))
    top = int(rng.integers(0, height - box_h + 1))
    left = int(rng.integers(0, width - box_w + 1))
    mask = np.zeros((height, width), np.float32)
    mask[top : top + box_h, left : left + box_w] = 1.0
    return mask


def half_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """EdgeConnect ``MASK=2``: the left or the right half of the image (p = 0.5 each)."""
    height, width = _check_size(height, width)
    rng = _check_rng(rng)
    mask = np.zeros((height, width), np.float32)
    if rng.random() < 0.5:
        mask[:, : width // 2] = 1.0
    else:
        mask[:, width // 2 :] = 1.0
    return mask
