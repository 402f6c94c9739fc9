"""The tensor and mask conventions of inpaintzoo, in one place.

Every public boundary of the library (datasets, methods, predictor, metrics, baselines) uses:

* **Images**: float tensors ``(B, 3, H, W)`` with values in ``[0, 1]``. A network that works in
  ``[-1, 1]`` converts inside itself (:func:`to_signed` / :func:`from_signed`).
* **Masks**: float tensors ``(B, 1, H, W)`` with values in ``{0, 1}``, **1 = hole (missing)**,
  0 = known pixel. Mask *files* come in either polarity; :mod:`inpaintzoo.masks` converts them
  with an explicit ``polarity`` (``white_hole`` | ``black_hole`` | ``auto``).
* **Masked input**: ``image * (1 - mask)``; **composite**: ``pred * mask + image * (1 - mask)``.
  Metrics are computed on the composite.
* **Structure maps**: edges ``(B, 1, H, W)`` in ``{0, 1}``; gray ``(B, 1, H, W)`` in ``[0, 1]``.
* **Batches** are dicts with ``image``, ``mask`` and optionally ``edge``, ``gray``, ``smooth``,
  ``name``.

The check functions raise :class:`ValueError` with a message that names the problem.
"""

from __future__ import annotations

from enum import StrEnum

import torch

__all__ = [
    "HOLE",
    "KNOWN",
    "MaskPolarity",
    "check_image",
    "check_mask",
    "check_pair",
    "composite",
    "from_signed",
    "masked_input",
    "to_signed",
]

HOLE = 1.0
KNOWN = 0.0

# Tolerance for values slightly outside [0, 1] produced by resampling.
_RANGE_EPS = 1e-3


class MaskPolarity(StrEnum):
    """How a mask *file* encodes the hole.

    ``white_hole``: bright pixels are the hole (NVIDIA irregular masks, EdgeConnect, DeepFill).
    ``black_hole``: dark pixels are the hole (e.g. PConv-style "valid" masks).
    ``auto``: treated as ``white_hole``, with a warning naming the file and the flag to flip
    when the result looks implausible (hole over 90 % or empty). It never guesses from the
    minority value: real test masks reach 60 % hole.
    """

    WHITE_HOLE = "white_hole"
    BLACK_HOLE = "black_hole"
    AUTO = "auto"

    @classmethod
    def parse(cls, value: str | MaskPolarity) -> MaskPolarity:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(p.value for p in cls)
            raise ValueError(f"unknown mask polarity {value!r}; choose one of: {choices}") from None


def check_image(image: torch.Tensor, name: str = "image") -> torch.Tensor:
    """Check an image batch: float ``(B, 3, H, W)`` in ``[0, 1]``. Returns it unchanged."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [0, 1], got dtype {image.dtype}")
    if image.numel() and (image.min() < -_RANGE_EPS or image.max() > 1 + _RANGE_EPS):
        lo, hi = float(image.min()), float(image.max())
        hint = " (looks like [-1, 1]; convert with from_signed)" if lo < -0.5 else ""
        hint = hint or (" (looks like [0, 255]; divide by 255)" if hi > 2 else "")
        raise ValueError(f"{name} values must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]{hint}")
    return image


def check_mask(mask: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """Check a mask batch: float ``(B, 1, H, W)`` with values in ``{0, 1}`` (1 = hole)."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"{name} must have shape (B, 1, H, W), got {tuple(mask.shape)}")
    if not mask.is_floating_point():
        raise ValueError(f"{name} must be a float tensor with values in {{0, 1}}, got {mask.dtype}")
    if mask.numel() and not torch.all((mask == 0) | (mask == 1)):
        raise ValueError(
            f"{name} must be binary (0 = known, 1 = hole); got values in "
            f"[{float(mask.min()):.3g}, {float(mask.max()):.3g}]. Binarise soft masks with "
            "inpaintzoo.masks.binarize_mask"
        )
    return mask


def check_pair(image: torch.Tensor, mask: torch.Tensor) -> None:
    """Check an image batch and its mask batch together (same batch size and H, W)."""
    check_image(image)
    check_mask(mask)
    if image.shape[0] != mask.shape[0] or image.shape[-2:] != mask.shape[-2:]:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not match image of shape "
            f"{tuple(image.shape)}: batch size and H, W must agree"
        )


def masked_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero the hole: ``image * (1 - mask)``."""
    return image * (1.0 - mask)


def composite(pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Keep known pixels, take the prediction in the hole: ``pred * m + image * (1 - m)``."""
    return pred * mask + image * (1.0 - mask)


def to_signed(image: torch.Tensor) -> torch.Tensor:
    """``[0, 1] -> [-1, 1]``."""
    return image * 2.0 - 1.0


def from_signed(image: torch.Tensor) -> torch.Tensor:
    """``[-1, 1] -> [0, 1]``."""
    return (image + 1.0) * 0.5
