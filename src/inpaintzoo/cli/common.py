"""Pieces shared by the Hydra entry points (train, eval, predict)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

REPO_CONF = Path(__file__).resolve().parents[3] / "conf"


def run_name(model_name: str, stage: Any = None) -> str:
    """The run folder name of a training run: the model's name, plus ``_stage<N>`` when one
    stage is trained alone (so a later stage never resumes an earlier stage's run)."""
    if stage in (None, "", "None", "null"):
        return str(model_name)
    return f"{model_name}_stage{stage}"


OmegaConf.register_new_resolver("run_name", run_name, replace=True)


def config_dir() -> str:
    """The ``conf/`` folder: ``$INPAINTZOO_CONF`` or the repository's (editable installs)."""
    env = os.environ.get("INPAINTZOO_CONF")
    path = Path(env) if env else REPO_CONF
    if not (path / "train.yaml").is_file():
        raise FileNotFoundError(
            f"inpaintzoo config folder not found at {path}; run from a checkout installed with "
            "`pip install -e .` or set INPAINTZOO_CONF to the repository's conf/ folder"
        )
    return str(path)


def to_plain(cfg: Any) -> Any:
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def model_kwargs(model_cfg: DictConfig) -> tuple[str, str, dict]:
    """``(name, variant, kwargs)`` from a ``model`` config group entry."""
    plain = dict(to_plain(model_cfg))
    name = plain.pop("name")
    variant = plain.pop("variant", "full")
    return name, variant, plain


def build_model(model_cfg: DictConfig):
    from inpaintzoo import zoo

    name, variant, kwargs = model_kwargs(model_cfg)
    return zoo.create_model(name, variant=variant, **kwargs)


def build_datamodule(data_cfg: DictConfig, seed: int = 0):
    from inpaintzoo.data import InpaintDataModule

    plain = dict(to_plain(data_cfg))
    plain.setdefault("seed", seed)
    return InpaintDataModule(**plain)


def instantiate_dict(cfg: DictConfig | None) -> list:
    """Instantiate every non-null ``_target_`` entry of a config dict (loggers, callbacks)."""
    from hydra.utils import instantiate

    if not cfg:
        return []
    out = []
    for key, value in cfg.items():
        if value is None:
            continue
        if isinstance(value, DictConfig) and "_target_" in value:
            out.append(instantiate(value))
        else:
            log.debug("skipping %s: no _target_", key)
    return out


def device_for(accelerator: str | None = None) -> str:
    import torch

    if accelerator in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if accelerator in ("gpu", "cuda") else "cpu"
