"""Reading and writing images: any common file -> uint8 ``(H, W, 3)`` RGB, and tensor helpers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from inpaintzoo.utils.files import IMAGE_DECODE_ERRORS

__all__ = ["ImageReadError", "image_to_tensor", "read_image", "tensor_to_image", "write_image"]


class ImageReadError(ValueError):
    """An image file exists but cannot be decoded (corrupt, truncated or unsupported)."""


def _to_uint8_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit gray: scale 0..65535 to 0..255 (value / 257, rounded), not clip or wrap.
        values = np.asarray(image).astype(np.float64)
        gray = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        values = np.asarray(image).astype(np.float64)
        if values.size and values.max() <= 1.0:  # float images in [0, 1]
            values = values * 255.0
        gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("1", "L", "LA"):
        gray = np.asarray(image.convert("L") if mode == "1" else image)
        gray = gray[:, :, 0] if gray.ndim == 3 else gray  # LA: drop alpha
        return np.repeat(gray[:, :, None], 3, axis=2).astype(np.uint8)
    if mode == "RGBA":
        return np.ascontiguousarray(np.asarray(image)[:, :, :3])  # drop alpha, no compositing
    if mode == "RGB":
        return np.asarray(image).copy()
    # P, PA, CMYK, YCbCr, LAB, HSV, RGBX, ...: PIL's own conversion (palette -> colours).
    return np.asarray(image.convert("RGB")).copy()


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 ``(H, W, 3)`` RGB.

    Handles grayscale (replicated to 3 channels), RGBA / LA (alpha dropped, not composited),
    palette (expanded), 16-bit gray PNG (scaled to 8 bits as ``round(value / 257)``), 1-bit,
    CMYK, and the EXIF orientation of camera JPEGs.

    Raises:
        FileNotFoundError: the path does not exist (the message names it).
        ImageReadError: (a ``ValueError``) the file is corrupt, truncated or not an image:
            "cannot decode image file <path>: corrupt or unsupported (...)".
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()  # decode now: truncated files fail here, not later
            image = ImageOps.exif_transpose(image)
            array = _to_uint8_rgb(image)
    except IMAGE_DECODE_ERRORS as err:
        raise ImageReadError(
            f"cannot decode image file {path}: corrupt or unsupported ({err})"
        ) from err
    return array


def write_image(path: str | os.PathLike, image: np.ndarray | torch.Tensor) -> Path:
    """Write a uint8 ``(H, W, 3)`` array or a float ``(3, H, W)`` tensor in ``[0, 1]`` as an image
    (format from the suffix; PNG recommended). Creates the parent folder."""
    if isinstance(image, torch.Tensor):
        image = tensor_to_image(image)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image)).save(path)
    return path


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` (or ``(H, W)``) -> float32 ``(3, H, W)`` tensor in ``[0, 1]``.
    Float arrays are taken as already in ``[0, 1]``."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got {tuple(array.shape)}")
    if array.dtype == np.uint8:
        tensor = torch.from_numpy(np.ascontiguousarray(array)).float().div_(255.0)
    elif np.issubdtype(array.dtype, np.floating):
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    else:
        raise ValueError(f"image must be uint8 or float in [0, 1], got dtype {array.dtype}")
    return tensor.permute(2, 0, 1).contiguous()


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """float ``(3, H, W)`` or ``(1, 3, H, W)`` tensor in ``[0, 1]`` -> uint8 ``(H, W, 3)``
    (clamped, rounded). A 1-channel tensor is replicated to RGB."""
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {tensor.shape[0]}")
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
        raise ValueError(f"tensor must be (3, H, W) or (1, H, W), got {tuple(tensor.shape)}")
    if tensor.shape[0] == 1:
        tensor = tensor.expand(3, -1, -1)
    array = tensor.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0)
    return array.cpu().numpy().copy()
