"""Mask polarity and binarisation: any mask array -> float32 ``(H, W)`` in ``{0, 1}``, 1 = hole.

Mask files come in every convention (white = hole as in the NVIDIA irregular masks, EdgeConnect
and DeepFill; black = hole as in PConv-style "valid" masks; 0/127/255; anti-aliased or JPEG
edges). :func:`binarize_mask` converts them with an *explicit* polarity
(:class:`~inpaintzoo.conventions.MaskPolarity`) and a documented threshold. It never guesses the
polarity from the minority value: real test masks reach 60 % hole.
"""

from __future__ import annotations

import warnings

import numpy as np

from inpaintzoo.conventions import MaskPolarity

__all__ = ["AUTO_MAX_HOLE_RATIO", "binarize_mask", "to_gray"]

#: With ``polarity="auto"``, a result with more hole than this fraction triggers a warning.
AUTO_MAX_HOLE_RATIO = 0.9

# ITU-R BT.601 luma weights (what PIL's "L" conversion and cv2's RGB2GRAY use).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def _full_range(array: np.ndarray, name: str) -> float:
    """The value that means "white" for this array's dtype (see :func:`binarize_mask`)."""
    if array.dtype == np.uint8:
        return 255.0
    if array.dtype == np.uint16:
        return 65535.0
    if np.issubdtype(array.dtype, np.floating):
        if array.size and (np.nanmin(array) < 0.0 or np.nanmax(array) > 1.0):
            lo, hi = float(np.nanmin(array)), float(np.nanmax(array))
            hint = " (looks like [0, 255]; divide by 255)" if hi > 1.0 else ""
            raise ValueError(
                f"{name}: float mask values must lie in [0, 1], got [{lo}, {hi}]{hint}"
            )
        return 1.0
    if np.issubdtype(array.dtype, np.integer):
        lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if lo < 0 or hi > 255:
            raise ValueError(
                f"{name}: integer mask of dtype {array.dtype} has values in [{lo}, {hi}]; only "
                "uint8, uint16, bool, float in [0, 1], or other integers in {0, 1} / [0, 255] "
                "are accepted (cast 16-bit data to uint16)"
            )
        # Integer arrays built in code (e.g. int64 0/1) are binary already; otherwise 8-bit.
        return 1.0 if hi <= 1 else 255.0
    raise TypeError(f"{name}: unsupported mask dtype {array.dtype}")


def to_gray(array: np.ndarray, name: str = "mask") -> np.ndarray:
    """Reduce a mask array to one channel, keeping its dtype's value scale.

    ``(H, W)`` is returned as is; ``(H, W, 1)`` is squeezed; ``(H, W, 2)`` (gray + alpha) keeps
    the gray channel; ``(H, W, 3)`` RGB and ``(H, W, 4)`` RGBA become BT.601 luminance (float64)
    with the alpha channel ignored (a mask stored only in the alpha channel is therefore *not*
    read: store the hole in the colour channels).
    """
    array = np.asarray(array)
    if array.ndim == 2:
        return array
    if array.ndim == 3:
        channels = array.shape[2]
        if channels == 1:
            return array[:, :, 0]
        if channels == 2:
            return array[:, :, 0]
        if channels in (3, 4):
            rgb = array[:, :, :3]
            if np.all(rgb[:, :, 0] == rgb[:, :, 1]) and np.all(rgb[:, :, 1] == rgb[:, :, 2]):
                return rgb[:, :, 0]  # gray stored as RGB: exact, keeps the dtype
            return (rgb.astype(np.float64) @ _LUMA).astype(np.float64)
    raise ValueError(
        f"{name}: mask must have shape (H, W) or (H, W, 1|2|3|4), got {tuple(array.shape)}"
    )


def binarize_mask(
    array: np.ndarray,
    polarity: str | MaskPolarity = "auto",
    threshold: float = 0.5,
    name: str = "mask",
) -> np.ndarray:
    """Convert a mask array of any convention to float32 ``(H, W)`` in ``{0, 1}``, 1 = hole.

    Args:
        array: ``(H, W)`` or ``(H, W, C)`` with C in 1, 2 (gray + alpha), 3 (RGB), 4 (RGBA);
            RGB(A) is reduced to BT.601 luminance and alpha is ignored. Accepted dtypes: ``bool``
            (True = bright), ``uint8`` (full range 255), ``uint16`` (65535), float in ``[0, 1]``
            (1.0), and other integer dtypes whose values are in ``{0, 1}`` (taken as binary) or
            ``[0, 255]`` (taken as 8-bit).
        polarity: ``"white_hole"`` (bright = hole), ``"black_hole"`` (dark = hole) or ``"auto"``
            (same as white_hole, and warns when the result is implausible, see below).
        threshold: fraction of the dtype's full range: 0.5 -> 127.5 for uint8, 32767.5 for
            uint16, 0.5 for float. Soft, anti-aliased or JPEG masks are binarised at it:
            with white_hole a pixel is hole when ``value > threshold * full``; with black_hole
            when ``value < threshold * full``. A value exactly at the threshold is known.
        name: what to call the mask (usually the file path) in warnings and errors.

    Returns:
        float32 ``(H, W)`` array with values in ``{0, 1}``, 1 = hole.

    Warns:
        UserWarning: with ``polarity="auto"`` when over 90 % of the image is hole (the file
        probably marks the hole in black: pass ``mask_polarity=black_hole``) or when there is
        no hole at all (check the file). In any polarity, when an 8/16-bit mask only holds the
        values 0 and 1 (a 0/1 mask saved as an image: it would binarise to an empty mask).

    Raises:
        ValueError: wrong shape, float values outside ``[0, 1]``, threshold outside ``(0, 1)``.
    """
    mode = MaskPolarity.parse(polarity)
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"{name}: threshold must be a fraction in (0, 1), got {threshold}")
    raw = np.asarray(array)
    if raw.dtype == bool:
        raw = raw.astype(np.float32)  # True = bright
    full = _full_range(raw, name)
    gray = to_gray(raw, name=name)
    cut = float(threshold) * full
    if mode is MaskPolarity.BLACK_HOLE:
        hole = gray < cut
    else:
        hole = gray > cut
    mask = hole.astype(np.float32)

    if full > 1.0 and gray.size and 0 < float(gray.max()) <= 1.0:
        warnings.warn(
            f"mask {name}: its values are only 0 and 1 (of {int(full)}), which binarise to "
            f"{'an empty mask' if mode is not MaskPolarity.BLACK_HOLE else 'a full hole'}; "
            "if 1 marks the hole, rescale the file to 0/255 (or load it as a 0/1 array)",
            UserWarning,
            stacklevel=2,
        )
    elif mode is MaskPolarity.AUTO and mask.size:
        ratio = float(mask.mean())
        if ratio > AUTO_MAX_HOLE_RATIO:
            warnings.warn(
                f"mask {name}: {ratio:.1%} of the image is hole with mask_polarity=auto "
                "(white = hole). If this file marks the hole in black, pass "
                "mask_polarity=black_hole (or white_hole to silence this warning).",
                UserWarning,
                stacklevel=2,
            )
        elif ratio == 0.0:
            warnings.warn(
                f"mask {name}: empty mask (0 % hole) with mask_polarity=auto (white = hole). "
                "Check the file: is it blank, stored in the alpha channel, or with values 0/1?",
                UserWarning,
                stacklevel=2,
            )
    return mask
