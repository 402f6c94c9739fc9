"""``inpaintzoo-app``: the interactive inpainting page (gradio), on 127.0.0.1 by default.

Hydra main over ``conf/app.yaml``::

    inpaintzoo-app ckpt=outputs/demo/edgeconnect/checkpoints/last.ckpt          # or `make app`
    inpaintzoo-app 'ckpt=[a/last.ckpt,exports/edgeconnect]' port=7861 max_side=768
    inpaintzoo-app ckpt=... share=true     # listen on all interfaces: reachable over the network

The page is a thin layer over the same predictor as ``inpaintzoo-predict``
(:mod:`inpaintzoo.app.pipeline`). ``share=true`` binds 0.0.0.0 so other machines can open it
(no authentication; no public tunnel is opened). Needs ``pip install 'inpaintzoo[app]'``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from inpaintzoo.cli.common import config_dir, device_for, to_plain

log = logging.getLogger("inpaintzoo.app")


class AppStartError(SystemExit):
    """A startup problem, reported as one line (exit status 2)."""

    def __init__(self, message: str) -> None:
        print(f"inpaintzoo-app: error: {message}", file=sys.stderr)
        super().__init__(2)


def _sources(cfg: DictConfig) -> list[str]:
    ckpt = to_plain(cfg.ckpt)
    if ckpt is None:
        ckpts: list[str] = []
    elif isinstance(ckpt, list | tuple):
        ckpts = [str(c) for c in ckpt]
    else:
        ckpts = [str(ckpt)]
    return ckpts + [str(b) for b in to_plain(cfg.get("baselines") or [])]


def build(cfg: DictConfig):
    """Load the models and build the page (no server yet): ``(demo, models)``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline machines: no pings
    try:
        import gradio  # noqa: F401
    except ImportError as err:
        raise AppStartError(
            f"the app needs gradio ({err}): pip install 'inpaintzoo[app]' (or `make install`)"
        ) from err
    from inpaintzoo.app.pipeline import AppError, load_model
    from inpaintzoo.app.ui import Models, build_app

    device = device_for(cfg.device)
    max_side = cfg.get("max_side")
    entries = []
    for source in _sources(cfg):
        try:
            entries.append(load_model(source, device=device, max_side=max_side))
        except AppError as err:
            raise AppStartError(str(err)) from err
    if not entries:
        raise AppStartError("no model to serve: give ckpt=PATH (or keep baselines)")
    for entry in entries:
        kind = "edge-guided" if entry.edge_guided else "mask only"
        log.info("model %s (%s) from %s", entry.label, kind, entry.source)
    models = Models(entries, device=device, max_side=max_side)
    demo = build_app(models, output_dir=cfg.get("output_dir"), max_pixels=int(cfg.max_pixels))
    return demo, models


def run_app(cfg: DictConfig, block: bool = True):
    """Build and launch the page; prints its address. ``block=False`` returns the running
    ``gr.Blocks`` (tests)."""
    demo, _ = build(cfg)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up probes
    host = "0.0.0.0" if cfg.share else str(cfg.host)
    if cfg.share:
        log.warning(
            "share=true: listening on all network interfaces; anyone who can reach this machine "
            "can use the page (no login)"
        )
    port = int(cfg.port) or None
    try:
        _, local_url, _ = demo.launch(
            server_name=host,
            server_port=port,
            share=False,  # never open gradio's public tunnel
            prevent_thread_lock=True,
            allowed_paths=[str(Path(demo.out_root))],
            max_file_size=cfg.get("max_file_size"),
            show_error=False,
            quiet=True,
        )
    except OSError as err:
        raise AppStartError(f"cannot listen on {host}:{cfg.port} ({err}); try port=0") from err
    print(f"inpaintzoo-app: serving on {local_url}", flush=True)
    if block:
        demo.block_thread()
    return demo


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="app")
def _hydra_main(cfg: DictConfig) -> None:
    run_app(cfg)


def main() -> None:
    """Entry point of ``inpaintzoo-app``."""
    _hydra_main()


if __name__ == "__main__":
    main()
