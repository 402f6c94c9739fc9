"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A reader never sees a partial file: either the old content or the new one. Includes the one
tensor -> image-file writer (:func:`save_image`).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + ``os.replace``). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_image(tensor: Any, path: str | os.PathLike) -> Path:
    """Write one image tensor to ``path`` atomically: JPEG for ``.jpg``/``.jpeg``, else PNG.

    Args:
        tensor: ``(C, H, W)`` or ``(1, C, H, W)`` with ``C`` 1 (saved as 8-bit gray) or 3 (RGB),
            values in ``[0, 1]`` (clamped), on any device.
        path: the file to write (parent folders are created).

    Pixel values are ``round(255 * value)`` (``torch.round``: halves to even). Returns ``path``.
    """
    import torch
    from PIL import Image

    image = tensor.detach()
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(
            f"save_image needs a (C, H, W) or (1, C, H, W) tensor with C = 1 or 3, "
            f"got {tuple(image.shape)}"
        )
    array = (image.float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    pixels = array[0].numpy() if array.shape[0] == 1 else array.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    fmt = "JPEG" if str(path).lower().endswith((".jpg", ".jpeg")) else "PNG"
    Image.fromarray(pixels).save(buffer, format=fmt)
    return atomic_write_bytes(path, buffer.getvalue())
