"""Sample grids: rows = samples, columns = stages (masked input, edges, output, ground truth)."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from inpaintzoo.conventions import check_pair
from inpaintzoo.utils.io import atomic_write_bytes

__all__ = ["grid_header_height", "masked_preview", "save_sample_grid"]

_FONT_SIZE = 10
_LINE_SPACING = 2
_HEADER_PAD = 3


def masked_preview(
    image: torch.Tensor, mask: torch.Tensor, fill: Sequence[float] = (1.0, 1.0, 1.0)
) -> torch.Tensor:
    """The image with its hole painted ``fill`` (white by default), for a "masked input" column.

    Args:
        image: ``(B, 3, H, W)`` in ``[0, 1]``.
        mask: ``(B, 1, H, W)``, 1 = hole.
        fill: RGB colour in ``[0, 1]``.

    Returns:
        ``(B, 3, H, W)`` on the image's device and dtype.
    """
    check_pair(image, mask)
    if len(fill) != 3:
        raise ValueError(f"fill must be an RGB triple, got {fill!r}")
    colour = torch.tensor(fill, device=image.device, dtype=image.dtype).view(1, 3, 1, 1)
    return torch.where(mask > 0.5, colour.expand_as(image), image)


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=_FONT_SIZE)
    except (TypeError, OSError, ImportError):  # older Pillow or no FreeType: bitmap font
        return ImageFont.load_default()


def _wrap(text: str, width: int, draw, font) -> list[str]:
    """Greedy word wrap to ``width`` pixels; a word too long for a line is cut with an ellipsis."""

    def fits(candidate: str) -> bool:
        return draw.textlength(candidate, font=font) <= width

    lines: list[str] = []
    for word in text.split() or [""]:
        if lines and fits(f"{lines[-1]} {word}"):
            lines[-1] = f"{lines[-1]} {word}"
            continue
        while word and not fits(word):
            word = word[:-2] + "…" if len(word) > 1 else ""
        lines.append(word)
    return lines


def _line_height(draw, font) -> int:
    left, top, right, bottom = draw.textbbox((0, 0), "Ag", font=font)
    return bottom - top


def grid_header_height(names: Sequence[str], column_width: int) -> int:
    """Height in pixels of the header strip of :func:`save_sample_grid` for these names."""
    from PIL import Image, ImageDraw

    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = _font()
    lines = max(len(_wrap(name, column_width - 2, draw, font)) for name in names)
    line_height = _line_height(draw, font)
    return 2 * _HEADER_PAD + lines * line_height + (lines - 1) * _LINE_SPACING


def _to_rgb_uint8(tensor: torch.Tensor, name: str, rows: int) -> np.ndarray:
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4 or tensor.shape[1] not in (1, 3):
        shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(f"column {name!r} must be a (B, 1 or 3, H, W) tensor, got {shape}")
    batch = tensor[:rows].detach().to("cpu", torch.float32).clamp(0.0, 1.0)
    if batch.shape[1] == 1:
        batch = batch.expand(-1, 3, -1, -1)
    return (batch * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def save_sample_grid(
    columns: Mapping[str, torch.Tensor],
    path: str | os.PathLike,
    max_rows: int = 8,
    header: bool = True,
) -> Path:
    """Save a grid of samples as a PNG (atomically).

    Args:
        columns: column title -> ``(B, C, H, W)`` in ``[0, 1]`` (``C`` = 1 or 3; one channel is
            shown as gray), in display order; every column has the same ``B, H, W``. Typical:
            ``{"masked input": ..., "predicted edges": ..., "output": ..., "ground truth": ...}``.
        path: the PNG to write.
        max_rows: at most this many samples (the first ones).
        header: draw the column titles on a strip above the images (PIL's default font).

    Returns:
        ``path``. The image is ``len(columns) * W`` wide and
        ``min(B, max_rows) * H + grid_header_height(...)`` high (no header: ``rows * H``).
    """
    from PIL import Image, ImageDraw

    if not columns:
        raise ValueError("save_sample_grid needs at least one column")
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    names = list(columns)
    shapes = {
        name: (tuple(t.shape[:1]) + tuple(t.shape[2:])) if isinstance(t, torch.Tensor) else None
        for name, t in columns.items()
    }
    first = shapes[names[0]]
    if first is None or len(first) != 3 or any(shape != first for shape in shapes.values()):
        detail = ", ".join(f"{name}: {shape}" for name, shape in shapes.items())
        raise ValueError(f"every column must share the same batch size, H and W; got {detail}")
    batch, height, width = first
    rows = min(batch, max_rows)
    if rows == 0:
        raise ValueError("the columns hold no samples (batch size 0)")
    tiles = [_to_rgb_uint8(columns[name], name, rows) for name in names]
    body = np.concatenate([np.concatenate(list(tile), axis=0) for tile in tiles], axis=1)
    grid = Image.fromarray(body)

    if header:
        header_height = grid_header_height(names, width)
        canvas = Image.new("RGB", (grid.width, grid.height + header_height), "white")
        canvas.paste(grid, (0, header_height))
        draw = ImageDraw.Draw(canvas)
        font = _font()
        line_height = _line_height(draw, font)
        ascent_offset = draw.textbbox((0, 0), "Ag", font=font)[1]
        for index, name in enumerate(names):
            top = _HEADER_PAD
            for line in _wrap(name, width - 2, draw, font):
                left = index * width + (width - draw.textlength(line, font=font)) / 2
                # shift by the glyphs' top offset so the text starts at `top`, inside the strip
                draw.text((left, top - ascent_offset), line, fill="black", font=font)
                top += line_height + _LINE_SPACING
        grid = canvas

    buffer = io.BytesIO()
    grid.save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())
