"""Sample grids and the masked-input preview."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintzoo.visualize import grid_header_height, masked_preview, save_sample_grid


def _columns(batch=3, height=24, width=32):
    image = torch.rand(batch, 3, height, width)
    mask = torch.zeros(batch, 1, height, width)
    mask[..., 8:16, 10:20] = 1
    edges = (torch.rand(batch, 1, height, width) > 0.8).float()
    return {
        "masked input": masked_preview(image, mask),
        "predicted edges": edges,
        "output": image,
        "ground truth": image,
    }


def test_grid_size_with_and_without_header(tmp_path):
    columns = _columns()
    plain = save_sample_grid(columns, tmp_path / "plain.png", header=False)
    with Image.open(plain) as image:
        assert image.size == (4 * 32, 3 * 24)
        assert image.mode == "RGB"
    titled = save_sample_grid(columns, tmp_path / "grid.png")
    header = grid_header_height(list(columns), 32)
    assert header > 0
    with Image.open(titled) as image:
        assert image.size == (4 * 32, 3 * 24 + header)
        pixels = np.asarray(image)
    assert (pixels[:header] < 128).any()  # some text was drawn
    assert not list(tmp_path.glob(".*.tmp"))


def test_max_rows_and_pixel_layout(tmp_path):
    columns = _columns(batch=5, height=8, width=8)
    path = save_sample_grid(columns, tmp_path / "grid.png", max_rows=2, header=False)
    pixels = np.asarray(Image.open(path))
    assert pixels.shape == (2 * 8, 4 * 8, 3)
    expected = (columns["output"][1].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(pixels[8:16, 16:24], expected)  # sample 1, third column


def test_one_channel_column_is_replicated(tmp_path):
    edges = torch.zeros(1, 1, 8, 8)
    edges[..., 2:4, :] = 1
    path = save_sample_grid({"edges": edges}, tmp_path / "edges.png", header=False)
    pixels = np.asarray(Image.open(path))
    assert pixels.shape == (8, 8, 3)
    assert np.array_equal(pixels[..., 0], pixels[..., 1])
    assert np.array_equal(pixels[..., 0], pixels[..., 2])
    assert (pixels[2:4] == 255).all() and (pixels[:2] == 0).all()


def test_masked_preview():
    image = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    mask[..., :4, :] = 1
    preview = masked_preview(image, mask)
    assert preview.dtype == torch.float64
    assert (preview[..., :4, :] == 1).all()
    assert torch.equal(preview[..., 4:, :], image[..., 4:, :])
    red = masked_preview(image, mask, fill=(1, 0, 0))
    assert (red[:, 0, :4] == 1).all() and (red[:, 1:, :4] == 0).all()


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="same batch size"):
        save_sample_grid(
            {"a": torch.rand(2, 3, 8, 8), "b": torch.rand(2, 3, 8, 9)}, tmp_path / "x.png"
        )
    with pytest.raises(ValueError, match="1 or 3"):
        save_sample_grid({"a": torch.rand(2, 2, 8, 8)}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one column"):
        save_sample_grid({}, tmp_path / "x.png")
