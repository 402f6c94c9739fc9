"""``inpaintzoo-predict``: inpaint one image of any size with a checkpoint.

Hydra main over ``conf/predict.yaml``::

    inpaintzoo-predict ckpt=outputs/demo/edgeconnect/checkpoints/last.ckpt \\
        image=photo.png mask=hole.png mask_polarity=white_hole out=result.png

``ckpt`` may also be a ``.safetensors`` export or an ONNX export (``inpaintzoo-export``: its folder
or one of its ``.onnx`` files; the networks then run in onnxruntime)::

    inpaintzoo-predict ckpt=exports/edgeconnect/inpaint_generator.onnx image=... mask=... out=...

The mask is read with an explicit polarity (``white_hole``, ``black_hole`` or ``auto`` = white
hole with a warning when implausible) and must have the image's size. EdgeConnect accepts
``sketch=strokes.png``: white strokes added to the edge map inside the hole.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from inpaintzoo.cli.common import config_dir, device_for

log = logging.getLogger("inpaintzoo.predict")


def _save_png(tensor: torch.Tensor, path: str | Path) -> Path:
    import io

    from PIL import Image

    from inpaintzoo.utils.io import atomic_write_bytes

    array = tensor.detach().float().clamp(0, 1).cpu()[0]
    array = (array.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    if array.shape[2] == 1:
        array = array[..., 0]
    buffer = io.BytesIO()
    fmt = "JPEG" if str(path).lower().endswith((".jpg", ".jpeg")) else "PNG"
    Image.fromarray(array).save(buffer, format=fmt)
    return atomic_write_bytes(path, buffer.getvalue())


def run_predict(cfg: DictConfig) -> dict[str, Path]:
    from inpaintzoo.data import image_to_tensor, read_image
    from inpaintzoo.masks import load_mask
    from inpaintzoo.predictor import Predictor

    image_np = read_image(cfg.input.image)
    h, w = image_np.shape[:2]
    mask_np = load_mask(
        cfg.input.mask, polarity=cfg.mask_polarity, threshold=float(cfg.mask_threshold)
    )
    if mask_np.shape != (h, w):
        raise ValueError(
            f"mask {cfg.input.mask} is {mask_np.shape[1]}x{mask_np.shape[0]} but image "
            f"{cfg.input.image} is {w}x{h}: they must have the same size"
        )
    image = image_to_tensor(image_np).unsqueeze(0)
    mask = torch.from_numpy(mask_np)[None, None].float()
    predictor = Predictor.from_file(
        cfg.ckpt, device=device_for(cfg.device), max_side=cfg.get("max_side")
    )
    extras = {}
    if cfg.input.get("sketch"):
        sketch = load_mask(cfg.input.sketch, polarity="white_hole", threshold=0.5)
        if sketch.shape != (h, w):
            raise ValueError(f"sketch {cfg.input.sketch} must have the image's size {w}x{h}")
        extras["edge_sketch"] = torch.from_numpy(sketch)[None, None].float()
    result = predictor(image, mask, **extras)
    written = {"out": _save_png(result["composite"], cfg.out)}
    if cfg.get("save_edges") and "edge" in result:
        written["edges"] = _save_png(1.0 - result["edge"], cfg.save_edges)
    hole = float(mask.mean()) * 100
    log.info(
        "inpainted %s (%dx%d, %.1f %% hole) -> %s", cfg.input.image, w, h, hole, written["out"]
    )
    return written


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="predict")
def _hydra_main(cfg: DictConfig) -> None:
    run_predict(cfg)


SHORTHANDS = ("image", "mask", "sketch")


def expand_shorthands(argv: list[str]) -> list[str]:
    """``image=``/``mask=``/``sketch=`` -> ``input.image=`` etc. (``mask`` is also a group)."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        out.append(f"input.{key}={value}" if sep and key in SHORTHANDS else arg)
    return out


def main() -> None:
    """Entry point of ``inpaintzoo-predict``."""
    import sys

    sys.argv[1:] = expand_shorthands(sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
