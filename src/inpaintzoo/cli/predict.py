"""``inpaintzoo-predict``: inpaint one image, or whole folders, of any size with a checkpoint.

Hydra main over ``conf/predict.yaml``::

    inpaintzoo-predict ckpt=outputs/demo/edgeconnect/checkpoints/last.ckpt \\
        image=photo.png mask=hole.png mask_polarity=white_hole out=result.png
    inpaintzoo-predict ckpt=weights/edgeconnect_places2 image=photos/ mask=masks/ out=results/
    inpaintzoo-predict ckpt=... pairs=pairs.csv out=results/      # CSV columns image,mask[,out]

Folders (``image=DIR``): images and masks pair by relative file name (``photos/a/1.jpg`` <->
``masks/a/1.png``), or by a pairs CSV; results mirror the image tree as PNG under ``out``. Inputs
may have any and mixed sizes; same-size inputs are batched, decoding and encoding overlap the
computation, several images run in parallel on the CPU (``threads=``, ``workers=``), existing
results are skipped (rerun a killed command to resume; ``overwrite=true`` redoes them), an
unpaired or unreadable file gets a one-line error naming it while the rest go on, and a summary
lists the failures (exit status 1 when any). ``ckpt`` may be an ``inpaintzoo-import`` folder.

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
import torch
from omegaconf import DictConfig

from inpaintzoo.cli.common import config_dir, device_for, to_plain
from inpaintzoo.cli.errors import friendly_errors
from inpaintzoo.utils.io import save_image

log = logging.getLogger("inpaintzoo.predict")


def _load(cfg: DictConfig):
    from inpaintzoo.predictor import Predictor

    return Predictor.from_file(
        cfg.ckpt,
        device=device_for(cfg.device),
        max_side=cfg.get("max_side"),
        options=to_plain(cfg.get("model_options")) or None,
    )


def _folder_mode(cfg: DictConfig) -> bool:
    if cfg.input.get("pairs"):
        return True
    if cfg.input.get("image") is None:
        raise ValueError(
            "give the image: image=photo.png (or a folder: image=photos/ mask=masks/, or "
            "pairs=pairs.csv)"
        )
    return Path(str(cfg.input.image)).is_dir()


def run_predict_folder(cfg: DictConfig):
    """Folder / pairs-CSV prediction; returns the :class:`~inpaintzoo.predictor.FolderSummary`."""
    from inpaintzoo.predictor import pair_inputs, predict_folder

    threads = cfg.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    pairs, problems = pair_inputs(
        cfg.input.get("image"),
        cfg.input.get("mask"),
        cfg.out,
        pairs=cfg.input.get("pairs"),
        out_ext=str(cfg.get("out_ext") or ".png"),
    )
    for file, message in problems:
        log.error("%s: %s", file, message)
    predictor = _load(cfg)
    batch_size = cfg.get("batch_size")
    workers = cfg.get("workers")
    summary = predict_folder(
        predictor,
        pairs,
        batch_size=None if batch_size in (None, "auto") else int(batch_size),
        workers=None if workers in (None, "auto") else int(workers),
        mask_polarity=cfg.mask_polarity,
        mask_threshold=float(cfg.mask_threshold),
        overwrite=bool(cfg.get("overwrite", False)),
        progress=bool(cfg.get("progress", True)),
        edges_dir=cfg.get("save_edges"),
    )
    summary.failures[:0] = problems
    log.info(
        "%s -> %s: %s (%d worker(s) x %d thread(s))",
        cfg.input.get("pairs") or cfg.input.image,
        cfg.out,
        summary.describe(),
        summary.workers,
        summary.threads_per_worker,
    )
    if summary.failures:
        log.error("%d failure(s):", len(summary.failures))
        for file, message in summary.failures:
            log.error("  %s: %s", file, message)
    return summary


def run_predict(cfg: DictConfig) -> dict[str, Path]:
    if _folder_mode(cfg):
        summary = run_predict_folder(cfg)
        return {"out": Path(str(cfg.out)), "summary": summary}
    if cfg.input.get("mask") is None:
        raise ValueError("give the mask of the image: mask=hole.png")
    from inpaintzoo.data import image_to_tensor, read_image
    from inpaintzoo.masks import load_mask

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
    predictor = _load(cfg)
    extras = {}
    if cfg.input.get("sketch"):
        sketch = load_mask(cfg.input.sketch, polarity="white_hole", threshold=0.5)
        if sketch.shape != (h, w):
            raise ValueError(f"sketch {cfg.input.sketch} must have the image's size {w}x{h}")
        extras["edge_sketch"] = torch.from_numpy(sketch)[None, None].float()
    result = predictor(image, mask, **extras)
    written = {"out": save_image(result["composite"], cfg.out)}
    if cfg.get("save_edges") and "edge" in result:
        written["edges"] = save_image(1.0 - result["edge"], cfg.save_edges)
    hole = float(mask.mean()) * 100
    log.info(
        "inpainted %s (%dx%d, %.1f %% hole) -> %s", cfg.input.image, w, h, hole, written["out"]
    )
    return written


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="predict")
@friendly_errors
def _hydra_main(cfg: DictConfig) -> None:
    result = run_predict(cfg)
    summary = result.get("summary")
    if summary is not None and summary.failures:
        raise SystemExit(1)


SHORTHANDS = ("image", "mask", "sketch", "pairs")


def expand_shorthands(argv: list[str]) -> list[str]:
    """``image=``/``mask=``/``sketch=``/``pairs=`` -> ``input.image=`` etc. (``mask`` is also a
    group)."""
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
