"""``inpaintzoo-import``: the authors' released weights -> an ordinary inpaintzoo checkpoint.

Hydra main over ``conf/import.yaml``::

    inpaintzoo-import method=edgeconnect official=checkpoints/places2/ out=weights/ec_places2
    inpaintzoo-predict ckpt=weights/ec_places2 image=photo.jpg mask=hole.png out=result.png
    inpaintzoo-eval protocol=ctsdg protocol.images.root=/data/places2/test \\
        'methods=[edgeconnect:weights/ec_places2]'

``official`` is what the authors publish, as they publish it (see
:mod:`inpaintzoo.official`); ``out/model.ckpt`` works wherever an inpaintzoo checkpoint does
(including ``init_from=`` to fine-tune) and results name it ``official weights (<sha256>)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from inpaintzoo.cli.common import config_dir, to_plain
from inpaintzoo.cli.errors import friendly_errors

log = logging.getLogger("inpaintzoo.import")


def run_import(cfg: DictConfig) -> Path:
    """Import ``cfg.official`` for ``cfg.method`` into ``cfg.out``; returns the checkpoint path."""
    from inpaintzoo.official import import_official

    options = dict(to_plain(cfg.get("options")) or {})
    target = import_official(
        str(cfg.method),
        str(cfg.official),
        str(cfg.out),
        overwrite=bool(cfg.get("overwrite", False)),
        **options,
    )
    out = Path(str(cfg.out))
    log.info("wrote %s", target)
    log.info(
        "predict: inpaintzoo-predict ckpt=%s image=photo.png mask=hole.png out=result.png", out
    )
    log.info("evaluate: inpaintzoo-eval 'methods=[%s:%s]'", cfg.method, out)
    log.info("fine-tune: inpaintzoo-train model=%s init_from=%s", cfg.method, target)
    return target


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="import")
@friendly_errors
def main(cfg: DictConfig) -> None:
    """Entry point of ``inpaintzoo-import``."""
    run_import(cfg)


if __name__ == "__main__":
    main()
