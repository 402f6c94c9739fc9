"""The model registry: names are the API (configs, CLI, results files and docs all use them).

>>> from inpaintzoo import zoo
>>> "edgeconnect" in zoo.list_models(kind="learned")
True
>>> model = zoo.create_model("edgeconnect", variant="tiny")  # a LightningModule
>>> model.num_parameters() > 0
True

Registration is timm-style and lives next to each implementation: a learned method is a class
decorated with :func:`~inpaintzoo.methods.contract.register_method` in its own module of
``inpaintzoo.methods`` (its ``contract`` declares name, networks, official counts, sizes,
stages, ...); a classical baseline calls :func:`register_model` in ``inpaintzoo.baselines``.
This module only imports those packages' modules on first use: adding a method never edits it.

``create_model(name, variant="full"|"tiny", **options)`` returns the method's LightningModule
(its networks are attributes, e.g. ``model.inpaint_generator``) or, for classical methods, a
callable inpainter. ``load_checkpoint(path)`` restores a trained module for inference with
``torch.load(weights_only=True)``: a checkpoint that carries code is refused.
``load_official(name, path)`` imports the authors' released weights.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from inpaintzoo.utils.hparams import split_hparams

__all__ = [
    "ModelInfo",
    "create_model",
    "get_model_info",
    "list_models",
    "load_checkpoint",
    "load_official",
    "register_model",
]

#: packages whose modules register models when imported
REGISTERING_PACKAGES: tuple[str, ...] = ("inpaintzoo.methods", "inpaintzoo.baselines")


@dataclass(frozen=True)
class ModelInfo:
    """Registry entry: where the implementation lives and what it is."""

    name: str
    target: str  # "module.path:ClassName" (or a factory)
    kind: str  # "learned" | "classical"
    paper: str = ""
    official_repo: str = ""
    official_params: dict[str, int] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def load_class(self):
        module_name, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module_name), attr)


_REGISTRY: dict[str, ModelInfo] = {}
_discovered = False


def register_model(info: ModelInfo) -> ModelInfo:
    """Register a (classical) model; learned methods use ``register_method``."""
    existing = _REGISTRY.get(info.name)
    if existing is not None and existing != info:
        raise ValueError(f"model {info.name!r} is already registered")
    _REGISTRY[info.name] = info
    return info


def _discover() -> None:
    """Import every module of :data:`REGISTERING_PACKAGES` once (each registers itself)."""
    global _discovered
    if _discovered:
        return
    from inpaintzoo.methods.contract import registered_methods

    for package_name in REGISTERING_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package_name}.{module.name}")
    for name, cls in registered_methods().items():
        c = cls.contract
        register_model(
            ModelInfo(
                name=name,
                target=f"{cls.__module__}:{cls.__qualname__}",
                kind="learned",
                paper=c.paper,
                official_repo=c.official_repo,
                official_params=dict(c.official_params),
            )
        )
    _discovered = True


def list_models(pattern: str = "*", kind: str | None = None) -> list[str]:
    """Registered names matching a glob ``pattern`` (and ``kind``: learned | classical)."""
    _discover()
    return sorted(
        name
        for name, info in _REGISTRY.items()
        if fnmatch.fnmatch(name, pattern) and (kind is None or info.kind == kind)
    )


def get_model_info(name: str) -> ModelInfo:
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; registered: {', '.join(list_models())}"
        ) from None


def get_method_class(name: str):
    """The LightningModule class of a learned method (its ``contract`` is the declaration)."""
    info = get_model_info(name)
    if info.kind != "learned":
        raise ValueError(f"{name!r} is a {info.kind} model, not a learned method")
    return info.load_class()


def create_model(name: str, variant: str = "full", **options: Any):
    """Build a registered method: its LightningModule (learned) or inpainter (classical).

    Raises:
        ValueError: unknown name, unknown variant, or an option the method does not have
            (the message names it and the valid ones).
    """
    info = get_model_info(name)
    cls = info.load_class()
    if info.kind == "classical":
        return cls(**{**info.kwargs, **options})
    return cls(variant=variant, **{**info.kwargs, **options})


def load_checkpoint(
    path: str | Path,
    expected: str | None = None,
    map_location: str | torch.device = "cpu",
    **options: Any,
):
    """Load a trained module from a Lightning checkpoint, safely (``weights_only=True``).

    ``path`` is the ``.ckpt`` file, or a folder written by ``inpaintzoo-import`` (its
    ``model.ckpt``).

    ``options`` override stored inference-time options (e.g. GLCIC's ``postprocess``,
    EdgeConnect's ``inference_edges``); they go through the same option check as training.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an inpaintzoo checkpoint, or one of another method than ``expected``.
        RuntimeError: the file carries code (a pickle that ``weights_only`` refuses) or is
            corrupt/truncated.
    """
    path = Path(path)
    if path.is_dir() and (path / "model.ckpt").is_file():
        path = path / "model.ckpt"  # an ``inpaintzoo-import`` folder (official weights)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        text = str(err)
        if "Unsupported global" in text or "GLOBAL" in text:
            raise RuntimeError(
                f"refusing to load {path}: it contains pickled Python objects/code that a "
                "weights-only load does not allow. Only load checkpoints you trust; inpaintzoo "
                "checkpoints hold tensors and plain types only."
            ) from err
        raise RuntimeError(f"cannot read checkpoint {path}: corrupt or truncated ({err})") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(f"{path} is not a Lightning checkpoint (no 'state_dict')")
    hparams = dict(ckpt.get("hyper_parameters") or {})
    method = hparams.get("method") or (ckpt.get("inpaintzoo") or {}).get("method")
    if method is None:
        raise ValueError(f"{path} is not an inpaintzoo checkpoint (no method name stored)")
    if expected is not None and method != expected:
        raise ValueError(f"{path} is a {method!r} checkpoint, but {expected!r} was requested")
    variant, kwargs = split_hparams(hparams)
    if isinstance(kwargs.get("schedule"), list) and kwargs.get("stage") is not None:
        kwargs.pop("stage")  # checkpoints before the method contract stored both; the list ruled
    model = create_model(method, variant=variant, **{**kwargs, **options})
    model.load_state_dict(ckpt["state_dict"])
    model.on_load_checkpoint(ckpt)
    model.eval()
    return model


def load_official(name: str, path: str | Path):
    """The method ``name`` with the authors' released weights from ``path`` (as they publish
    them), in eval mode. See :mod:`inpaintzoo.official`."""
    from inpaintzoo.official import load_official as _load_official

    return _load_official(name, path)
