"""``inpaintzoo-export``: export a checkpoint's networks to safetensors and ONNX.

Hydra main over ``conf/export.yaml``::

    inpaintzoo-export ckpt=outputs/demo/edgeconnect/checkpoints/last.ckpt out=exports/edgeconnect
    inpaintzoo-export ckpt=... out=... formats=[safetensors]        # no onnx needed

Writes ``<out>/weights.safetensors`` and, per inference network, ``<out>/<net>.onnx`` plus the
manifest ``<out>/inpaintzoo_onnx.json``; ``inpaintzoo-predict ckpt=<out> ...`` runs the ONNX
graphs. The checkpoint is read with ``weights_only=True`` (a pickle carrying code is refused).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from inpaintzoo.cli.common import config_dir, to_plain
from inpaintzoo.cli.errors import friendly_errors

log = logging.getLogger("inpaintzoo.export")

FORMATS = ("safetensors", "onnx")


def run_export(cfg: DictConfig) -> dict[str, Any]:
    """Export ``cfg.ckpt`` into ``cfg.out``; returns ``{"safetensors": path, "onnx": manifest}``."""
    from inpaintzoo.export import export_onnx, export_safetensors
    from inpaintzoo.zoo import load_checkpoint

    formats = [str(f) for f in to_plain(cfg.formats)]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ValueError(f"unknown export format(s) {unknown or formats}; choose from {FORMATS}")
    model = load_checkpoint(cfg.ckpt)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    nets = to_plain(cfg.get("nets"))
    written: dict[str, Any] = {}
    if "safetensors" in formats:
        written["safetensors"] = export_safetensors(model, out / "weights.safetensors", nets=nets)
        log.info("weights -> %s", written["safetensors"])
    if "onnx" in formats:
        manifest = export_onnx(
            model,
            out,
            nets=nets,
            size=int(cfg.size),
            opset=int(cfg.opset),
            check=bool(cfg.check),
            atol=float(cfg.atol),
        )
        written["onnx"] = manifest
        for name, info in manifest["nets"].items():
            log.info(
                "%s -> %s (max abs diff %s)",
                name,
                out / info["file"],
                info.get("max_abs_diff", "not checked"),
            )
    return written


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="export")
@friendly_errors
def main(cfg: DictConfig) -> None:
    """Entry point of ``inpaintzoo-export``."""
    run_export(cfg)


if __name__ == "__main__":
    main()
