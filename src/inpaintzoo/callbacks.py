"""Lightning callbacks that speak in batches (not optimizer steps) and write atomically.

In manual optimisation Lightning's ``global_step`` counts optimizer steps (2 per batch for a G/D
pair, more in joint stages), so run lengths and checkpoint intervals are counted here in batches
(``InpaintingModule.batches_seen``, stored in every checkpoint).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytorch_lightning as pl

log = logging.getLogger(__name__)


class BatchBudget(pl.Callback):
    """Stop training once ``max_batches`` batches have been trained (across resumes)."""

    def __init__(self, max_batches: int) -> None:
        if max_batches <= 0:
            raise ValueError(f"max_batches must be positive, got {max_batches}")
        self.max_batches = int(max_batches)

    def _check(self, trainer: pl.Trainer, pl_module) -> None:
        if pl_module.batches_seen >= self.max_batches:
            trainer.should_stop = True

    def on_train_start(self, trainer, pl_module) -> None:
        self._check(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._check(trainer, pl_module)


def save_checkpoint_atomic(trainer: pl.Trainer, path: str | os.PathLike) -> Path:
    """``trainer.save_checkpoint`` to a temporary file, then rename: never a partial file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    # full state (optimizers, loops) for exact resume; every rank calls it, rank 0 writes
    trainer.save_checkpoint(tmp, weights_only=False)
    if trainer.is_global_zero:
        _fsync(tmp)  # the bytes are on disk before the rename makes them visible
        os.replace(tmp, path)
    trainer.strategy.barrier("inpaintzoo_checkpoint")
    return path


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. a remote (fsspec) path
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BatchCheckpoint(pl.Callback):
    """Write ``last.ckpt`` every ``every_batches`` batches and at the end, atomically.

    Also writes ``step0.ckpt`` (the initial weights) when a run starts from scratch, so the
    untrained model can be evaluated next to the trained one.
    """

    def __init__(
        self, dirpath: str | os.PathLike, every_batches: int = 100, save_step0: bool = True
    ):
        self.dirpath = Path(dirpath)
        self.every_batches = int(every_batches)
        self.save_step0 = save_step0

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def on_train_start(self, trainer, pl_module) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        step0 = self.dirpath / "step0.ckpt"
        if self.save_step0 and pl_module.batches_seen == 0 and not step0.exists():
            save_checkpoint_atomic(trainer, step0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_batches > 0 and pl_module.batches_seen % self.every_batches == 0:
            save_checkpoint_atomic(trainer, self.last_path)

    def on_train_end(self, trainer, pl_module) -> None:
        save_checkpoint_atomic(trainer, self.last_path)
        log.info("checkpoint written: %s (batch %d)", self.last_path, pl_module.batches_seen)
