"""``inpaintzoo-train``: train a method, checkpoint it, evaluate it, write a leaderboard.

Hydra main over ``conf/train.yaml``. Examples::

    inpaintzoo-train experiment=demo                       # the embedded demo (make demo)
    inpaintzoo-train experiment=celeba64 model=edgeconnect model.variant=tiny
    inpaintzoo-train -m experiment=demo model.stage=1,2 train.max_batches=2   # a sweep

The run folder is stable (``outputs/<experiment>/<model>/``): rerunning the same command resumes
from ``checkpoints/last.ckpt`` (``resume=auto``); ``resume=false`` starts over. Checkpoints are
written atomically, so a run killed at any moment (even ``kill -9``) resumes from its last
complete checkpoint; a damaged ``last.ckpt`` (e.g. truncated by a copy) is refused with a clear
error, never loaded. Speed switches: ``trainer.precision=bf16-mixed``, ``train.channels_last``,
``train.compile`` (see docs/RELIABILITY.md).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from inpaintzoo.callbacks import BatchBudget, BatchCheckpoint
from inpaintzoo.cli.common import build_datamodule, build_model, config_dir, instantiate_dict
from inpaintzoo.cli.errors import friendly_errors

log = logging.getLogger("inpaintzoo.train")


def resolve_resume(cfg: DictConfig, ckpt_dir: Path) -> str | None:
    resume = cfg.get("resume", "auto")
    last = ckpt_dir / "last.ckpt"
    if resume in (False, None, "false", "False", "no"):
        if ckpt_dir.exists():
            log.info("resume=false: starting over (removing %s)", ckpt_dir)
            shutil.rmtree(ckpt_dir)
        return None
    if resume in ("auto", True, "true", "True"):
        if not last.is_file():
            return None
        read_resume_state(last)  # refuse a damaged file before Lightning touches it
        return str(last)
    path = Path(str(resume))
    if not path.is_file():
        raise FileNotFoundError(f"resume checkpoint not found: {path}")
    read_resume_state(path)
    return str(path)


def read_resume_state(path: str | Path) -> dict[str, Any]:
    """The ``inpaintzoo`` state of a checkpoint to resume from (weights-only load).

    Raises:
        RuntimeError: the file is truncated/corrupt (never half-loaded), or carries code.
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RuntimeError(
            f"cannot resume from {path}: the checkpoint is corrupt or truncated ({err}). "
            "inpaintzoo writes checkpoints atomically, so the file was damaged outside a run "
            "(a partial copy, a full disk). Rerun with resume=false to start over, or "
            "resume=<path of another checkpoint> (e.g. checkpoints/step0.ckpt)."
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise RuntimeError(f"cannot resume from {path}: not a Lightning checkpoint")
    return dict(ckpt.get("inpaintzoo") or {})


def init_weights_from(model, path: str) -> None:
    """Start ``model`` from another checkpoint of the same method (e.g. stage 3 from stage 1):
    its weights and its record of which networks are trained."""
    from inpaintzoo.zoo import load_checkpoint

    model.initialise_from(load_checkpoint(path, expected=model.method_name), label=str(path))


def check_init_from(cfg: DictConfig, run_dir: Path, resume_state: dict[str, Any] | None) -> None:
    """Refuse an ``init_from`` that this run cannot honour: one inside the run's own folder, or
    a run folder that already holds a run started from something else (resuming it would
    silently ignore ``init_from``)."""
    init_from = cfg.get("init_from")
    if not init_from:
        return
    source = Path(str(init_from)).resolve()
    if source.is_relative_to(run_dir.resolve()):
        raise ValueError(
            f"init_from={init_from} lies inside this run's own folder {run_dir}: train into "
            "another folder (run_dir=..., or model.stage=<N> for a stage run)"
        )
    if resume_state is not None and resume_state.get("init_from") != str(init_from):
        raise ValueError(
            f"{run_dir} already holds a run started from "
            f"{resume_state.get('init_from') or 'scratch'}, not from init_from={init_from}: "
            "rerun with resume=false to start over from init_from, or choose another run_dir"
        )


def max_batches_for(cfg: DictConfig, model) -> int:
    """The run length in batches: ``train.max_batches``, or the schedule's own length when it
    is null. A paper schedule is scaled to it here."""
    value = cfg.train.get("max_batches")
    model.resolve_schedule(None if value is None else int(value))
    if value is None:
        total = model.schedule_batches()
        if not total:
            raise ValueError("train.max_batches is null and the model has no schedule")
        return int(total)
    return int(value)


def build_trainer(
    cfg: DictConfig, run_dir: Path, max_batches: int, extra_callbacks=()
) -> pl.Trainer:
    callbacks = instantiate_dict(cfg.get("callbacks"))
    callbacks += [
        BatchBudget(max_batches),
        BatchCheckpoint(run_dir / "checkpoints", every_batches=int(cfg.train.ckpt_every_batches)),
        *extra_callbacks,
    ]
    loggers = instantiate_dict(cfg.get("logger"))
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    target = trainer_cfg.pop("_target_", "pytorch_lightning.Trainer")
    if target not in ("pytorch_lightning.Trainer", "lightning.pytorch.Trainer"):
        raise ValueError(f"trainer._target_ must be pytorch_lightning.Trainer, got {target}")
    val_every = int(cfg.train.get("val_every_batches") or 0)
    fast = bool(trainer_cfg.get("fast_dev_run"))
    trainer_cfg.setdefault("max_epochs", -1)
    trainer_cfg.setdefault("max_steps", -1)
    if val_every > 0 and not fast and not trainer_cfg.get("overfit_batches"):
        trainer_cfg.setdefault("val_check_interval", val_every)
        trainer_cfg.setdefault("check_val_every_n_epoch", None)
    trainer_cfg.setdefault("limit_val_batches", cfg.train.get("limit_val_batches", 1.0))
    if val_every <= 0:
        trainer_cfg["limit_val_batches"] = 0
    trainer_cfg.setdefault("enable_checkpointing", False)  # BatchCheckpoint does it in batches
    return pl.Trainer(
        default_root_dir=str(run_dir),
        callbacks=callbacks,
        logger=loggers if loggers else False,
        **trainer_cfg,
    )


def run_train(cfg: DictConfig) -> dict[str, Any]:
    """Train (or resume), then evaluate. Returns a summary dict (paths and metrics)."""
    start = time.time()
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(int(cfg.seed), workers=True)
    model = build_model(cfg.model)
    model.configure_speed(
        channels_last=bool(cfg.train.get("channels_last", False)),
        compile=cfg.train.get("compile", False) or False,
    )
    datamodule = build_datamodule(cfg.data, seed=int(cfg.seed))
    ckpt_dir = run_dir / "checkpoints"
    ckpt_path = resolve_resume(cfg, ckpt_dir)
    state = read_resume_state(ckpt_path) if ckpt_path else None
    check_init_from(cfg, run_dir, state)
    max_batches = max_batches_for(cfg, model)
    if state is None:
        if cfg.get("init_from"):
            init_weights_from(model, str(cfg.init_from))
        model.check_stage_requirements()  # a resumed run checks after its state is restored
    trainer = build_trainer(cfg, run_dir, max_batches)
    resumed_at = 0
    if state is not None:
        resumed_at = int(state.get("batches_seen", 0))
        log.info("resuming from %s (batch %d of %d)", ckpt_path, resumed_at, max_batches)
    if resumed_at >= max_batches:
        log.info("run already complete (%d batches); skipping training", resumed_at)
        from inpaintzoo.zoo import load_checkpoint

        model = load_checkpoint(ckpt_path, expected=model.method_name)
    else:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    summary: dict[str, Any] = {
        "run_dir": str(run_dir),
        "batches": int(model.batches_seen),
        "train_seconds": round(time.time() - start, 1),
        "last_checkpoint": str(ckpt_dir / "last.ckpt"),
    }
    if cfg.evaluate.get("enabled", True) and trainer.is_global_zero and not trainer.fast_dev_run:
        from inpaintzoo.cli.eval import evaluate_run

        summary.update(evaluate_run(cfg, model, run_dir))
    return summary


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
@friendly_errors
def main(cfg: DictConfig) -> float | None:
    """Entry point of ``inpaintzoo-train``; returns the trained model's PSNR for sweepers."""
    summary = run_train(cfg)
    metric = summary.get("psnr")
    return float(metric) if metric is not None else None


if __name__ == "__main__":
    main()
