"""The common shape of every classical (non-learned) inpainter.

A classical inpainter is an :class:`torch.nn.Module` with no parameters, so the predictor and the
evaluation runner can treat it like a learned method (``.eval()``, ``.to(device)``,
``torch.no_grad()`` all work), but the work happens on the CPU in numpy/uint8:

1. the float image ``(B, 3, H, W)`` in ``[0, 1]`` is quantised to uint8 with ``round(x * 255)``;
2. the hole pixels are **zeroed before** the library sees them, so no method can read the
   ground truth under the hole (OpenCV, for example, returns the input unchanged for an all-hole
   mask, which would otherwise leak the ground truth into the benchmark);
3. :meth:`ClassicalInpainter.inpaint_array` fills the hole of one ``(H, W, 3)`` uint8 image;
4. the result goes back to float and is composited with the **original float image**:
   known pixels are returned bit-for-bit, only the hole carries uint8-quantised values.

A new method (PatchMatch, Criminisi, ...) subclasses :class:`ClassicalInpainter`, sets
``name`` and implements :meth:`~ClassicalInpainter.inpaint_array`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from inpaintzoo.conventions import check_pair

__all__ = ["ALL_HOLE_FILL", "ClassicalInpainter"]

# What an all-hole image becomes: there is no known pixel to propagate from, and reading the
# input under the hole would leak the ground truth, so the hole is filled with mid-gray.
ALL_HOLE_FILL = 0.5


class ClassicalInpainter(nn.Module):
    """Base class of the classical inpainters (no parameters, CPU, uint8 inside).

    Call it with ``image`` ``(B, 3, H, W)`` float in ``[0, 1]`` and ``mask`` ``(B, 1, H, W)`` in
    ``{0, 1}`` (1 = hole); it returns the **composite** ``(B, 3, H, W)`` in ``[0, 1]`` on the
    input's device and dtype. Known pixels (mask 0) are the input's values exactly; hole pixels
    are multiples of 1/255 because the libraries work on uint8. An image without a hole is
    returned unchanged; an image that is all hole is filled with :data:`ALL_HOLE_FILL` (mid-gray).

    Attributes:
        name: registry name (``telea``, ``navier_stokes``, ...).
        kind: always ``"classical"`` (the ``kind`` field of the results file).
        size_multiple, min_size: any ``H, W >= 1`` works, so the predictor neither pads nor resizes.
        num_parameters: ``None`` (the ``params`` field of the results file).
    """

    name: str = "classical"
    kind: str = "classical"
    size_multiple: int = 1
    min_size: int = 1
    num_parameters: int | None = None

    def inpaint_array(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """Fill the hole of one image.

        Args:
            image: ``(H, W, 3)`` uint8, RGB, hole pixels already set to 0.
            hole: ``(H, W)`` bool, True = hole; at least one pixel is known and one is missing.

        Returns:
            ``(H, W, 3)`` uint8; only its hole pixels are used.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement inpaint_array")

    @torch.no_grad()
    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Inpaint a batch; see the class docstring for shapes, ranges and guarantees."""
        check_pair(image, mask)
        hole = mask[:, 0].detach().to("cpu") > 0.5  # (B, H, W) bool
        pixels = image.detach().to("cpu", torch.float32).clamp(0.0, 1.0)
        pixels_u8 = (pixels * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        filled = np.empty_like(pixels_u8)
        for index in range(pixels_u8.shape[0]):
            sample_hole = hole[index].numpy()
            if not sample_hole.any():
                filled[index] = pixels_u8[index]
            elif sample_hole.all():
                filled[index] = round(ALL_HOLE_FILL * 255)
            else:
                sample = pixels_u8[index].copy()
                sample[sample_hole] = 0  # never let a method read the ground truth in the hole
                result = self.inpaint_array(sample, sample_hole)
                if result.shape != sample.shape or result.dtype != np.uint8:
                    raise RuntimeError(
                        f"{type(self).__name__}.inpaint_array returned {result.dtype} "
                        f"{result.shape}, expected uint8 {sample.shape}"
                    )
                filled[index] = result
        prediction = torch.from_numpy(filled).permute(0, 3, 1, 2).to(torch.float32) / 255.0
        prediction = prediction.to(device=image.device, dtype=image.dtype)
        # torch.where, not arithmetic blending: known pixels stay bit-for-bit the input's.
        return torch.where(mask > 0.5, prediction, image.detach())
