"""OpenCV's diffusion inpainters: Telea's fast marching method and Navier-Stokes.

Telea, "An image inpainting technique based on the fast marching method", J. Graphics Tools 2004;
Bertalmio, Bertozzi, Sapiro, "Navier-Stokes, fluid dynamics, and image and video inpainting",
CVPR 2001. Both are ``cv2.inpaint`` (8-bit, 3-channel image; 8-bit mask, non-zero = hole, the
same polarity as inpaintzoo). They are good on thin or small holes and blur large ones; that is
expected behaviour, not a bug.
"""

from __future__ import annotations

import numpy as np

from inpaintzoo.baselines.base import ClassicalInpainter

__all__ = ["OPENCV_METHODS", "OpenCVInpainter"]

# registry name -> name of the cv2 flag
OPENCV_METHODS = {"telea": "INPAINT_TELEA", "navier_stokes": "INPAINT_NS"}


class OpenCVInpainter(ClassicalInpainter):
    """Telea or Navier-Stokes inpainting with ``cv2.inpaint``.

    Args:
        method: ``"telea"`` or ``"navier_stokes"`` (also the instance's ``name``).
        radius: ``inpaintRadius``, the neighbourhood (in pixels) each filled pixel is estimated
            from; 3 is OpenCV's usual value.

    Call with ``image`` ``(B, 3, H, W)`` in ``[0, 1]`` and ``mask`` ``(B, 1, H, W)`` (1 = hole);
    returns the composite ``(B, 3, H, W)`` (see :class:`ClassicalInpainter`).

    Example:
        >>> import torch
        >>> image = torch.full((1, 3, 16, 16), 0.5)
        >>> mask = torch.zeros(1, 1, 16, 16)
        >>> mask[..., 6:10, 6:10] = 1
        >>> OpenCVInpainter("telea")(image, mask).shape
        torch.Size([1, 3, 16, 16])
    """

    def __init__(self, method: str = "telea", radius: float = 3) -> None:
        super().__init__()
        if method not in OPENCV_METHODS:
            choices = ", ".join(OPENCV_METHODS)
            raise ValueError(
                f"unknown OpenCV inpainting method {method!r}; choose one of: {choices}"
            )
        if isinstance(radius, bool) or not isinstance(radius, int | float) or not radius > 0:
            raise ValueError(f"radius must be a positive number of pixels, got {radius!r}")
        self.method = method
        self.name = method
        self.radius = float(radius)

    def extra_repr(self) -> str:
        return f"method={self.method!r}, radius={self.radius:g}"

    def inpaint_array(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        try:
            import cv2
        except ImportError as error:  # pragma: no cover - opencv is a core dependency
            raise ImportError(
                "OpenCV inpainting needs opencv-python-headless: pip install opencv-python-headless"
            ) from error
        flag = getattr(cv2, OPENCV_METHODS[self.method])
        hole_u8 = hole.astype(np.uint8) * 255
        # Channel order does not matter: both methods treat the channels independently.
        return cv2.inpaint(np.ascontiguousarray(image), hole_u8, self.radius, flag)
