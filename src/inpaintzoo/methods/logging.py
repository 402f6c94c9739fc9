"""Send sample grids to whichever Lightning loggers a trainer has.

CSV logger: PNG files under ``<log_dir>/samples/``; TensorBoard: ``add_image``; wandb:
``log_image``. Any other logger is skipped (with a debug message).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import torch
from torchvision.utils import make_grid

from inpaintzoo.utils.io import atomic_write_bytes

log = logging.getLogger(__name__)


def grid_tensor(columns: dict[str, torch.Tensor], max_rows: int = 8) -> torch.Tensor:
    """Rows = samples, columns in dict order; 1-channel maps replicated to RGB. (3, H', W')."""
    cols = []
    for value in columns.values():
        value = value[:max_rows].float().clamp(0, 1)
        if value.shape[1] == 1:
            value = value.expand(-1, 3, -1, -1)
        cols.append(value)
    rows = torch.stack(cols, dim=1).flatten(0, 1)  # (B*C, 3, H, W), row-major
    return make_grid(rows, nrow=len(cols), padding=2, pad_value=1.0)


def _png_bytes(grid: torch.Tensor) -> bytes:
    from PIL import Image

    array = (grid.permute(1, 2, 0).numpy() * 255.0 + 0.5).clip(0, 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def log_sample_grid(trainer, key: str, columns: dict[str, torch.Tensor], step: int) -> None:
    grid = grid_tensor(columns)
    for logger in trainer.loggers:
        name = type(logger).__name__
        try:
            if name == "CSVLogger":
                folder = Path(logger.log_dir) / "samples"
                fname = f"{key.replace('/', '_')}_{step:07d}.png"
                atomic_write_bytes(folder / fname, _png_bytes(grid))
            elif name == "TensorBoardLogger":
                logger.experiment.add_image(key, grid, global_step=step)
            elif name == "WandbLogger":
                logger.log_image(key=key, images=[grid], caption=[" | ".join(columns)], step=None)
            else:
                log.debug("logger %s does not take images; skipped", name)
        except Exception as err:  # a logging failure must never kill training
            log.warning("could not log sample grid to %s: %s", name, err)
