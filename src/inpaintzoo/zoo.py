"""The model registry: names are the API (configs, CLI, results files and docs all use them).

>>> from inpaintzoo import zoo
>>> "edgeconnect" in zoo.list_models()
True
>>> model = zoo.create_model("edgeconnect", variant="tiny")  # a LightningModule
>>> model.num_parameters() > 0
True

``create_model(name, variant="full"|"tiny", **overrides)`` returns the method's LightningModule
(its networks are attributes, e.g. ``model.inpaint_generator``) or, for classical methods, a
callable inpainter. ``load_checkpoint(path)`` restores a trained module for inference with
``torch.load(weights_only=True)``: a checkpoint that carries code is refused.
"""

from __future__ import annotations

import fnmatch
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "ModelInfo",
    "create_model",
    "get_model_info",
    "list_models",
    "load_checkpoint",
    "register_model",
]


@dataclass(frozen=True)
class ModelInfo:
    """Registry entry: where the implementation lives and what it is."""

    name: str
    target: str  # "module.path:ClassName"
    kind: str  # "learned" | "classical"
    paper: str = ""
    official_repo: str = ""
    official_params: dict[str, int] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def load_class(self):
        module_name, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module_name), attr)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(info: ModelInfo) -> ModelInfo:
    if info.name in _REGISTRY:
        raise ValueError(f"model {info.name!r} is already registered")
    _REGISTRY[info.name] = info
    return info


register_model(
    ModelInfo(
        name="edgeconnect",
        target="inpaintzoo.methods.edgeconnect:EdgeConnect",
        kind="learned",
        paper="Nazeri et al., EdgeConnect: Structure Guided Image Inpainting using Edge "
        "Prediction, ICCV Workshops 2019",
        official_repo="knazeri/edge-connect",
        official_params={"edge_generator": 10_761_089, "inpaint_generator": 10_774_595},
    )
)
register_model(
    ModelInfo(
        name="ctsdg",
        target="inpaintzoo.methods.ctsdg:CTSDG",
        kind="learned",
        paper="Guo, Yang, Huang, Image Inpainting via Conditional Texture and Structure Dual "
        "Generation, ICCV 2021",
        official_repo="Xiefan-Guo/CTSDG",
        official_params={"generator": 52_147_789, "discriminator": 5_531_729},
    )
)
register_model(
    ModelInfo(
        name="structure_knowledge",
        target="inpaintzoo.methods.structure_knowledge:StructureKnowledge",
        kind="learned",
        paper="Yang, Qi, Shi, Learning to Incorporate Structure Knowledge for Image Inpainting, "
        "AAAI 2020",
        official_repo="YoungGod/sturcture-inpainting (sic; TensorFlow 1.15)",
        official_params={"generator": 15_089_000, "discriminator": 2_764_737},
    )
)
register_model(
    ModelInfo(
        name="structureflow",
        target="inpaintzoo.methods.structureflow:StructureFlow",
        kind="learned",
        paper="Ren et al., StructureFlow: Image Inpainting via Structure-aware Appearance Flow, "
        "ICCV 2019",
        official_repo="RenYurui/StructureFlow",
        official_params={"structure_generator": 36_057_411, "texture_generator": 56_473_475},
    )
)
register_model(
    ModelInfo(
        name="telea",
        target="inpaintzoo.baselines:OpenCVInpainter",
        kind="classical",
        paper="Telea, An Image Inpainting Technique Based on the Fast Marching Method, 2004",
        kwargs={"method": "telea"},
    )
)
register_model(
    ModelInfo(
        name="navier_stokes",
        target="inpaintzoo.baselines:OpenCVInpainter",
        kind="classical",
        paper="Bertalmio et al., Navier-Stokes, Fluid Dynamics, and Image and Video Inpainting, "
        "CVPR 2001",
        kwargs={"method": "navier_stokes"},
    )
)
register_model(
    ModelInfo(
        name="patchmatch",
        target="inpaintzoo.baselines:PatchMatchInpainter",
        kind="classical",
        paper="Barnes et al., PatchMatch: A Randomized Correspondence Algorithm for Structural "
        "Image Editing, SIGGRAPH 2009 (completion after Wexler et al., 2007)",
    )
)


def list_models(pattern: str = "*", kind: str | None = None) -> list[str]:
    """Registered names matching a glob ``pattern`` (and ``kind``), sorted."""
    return sorted(
        name
        for name, info in _REGISTRY.items()
        if fnmatch.fnmatch(name, pattern) and (kind is None or info.kind == kind)
    )


def get_model_info(name: str) -> ModelInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; registered: {', '.join(list_models())}"
        ) from None


def create_model(name: str, variant: str = "full", **overrides: Any):
    """Build a registered method: its LightningModule (learned) or inpainter (classical)."""
    info = get_model_info(name)
    cls = info.load_class()
    if info.kind == "classical":
        return cls(**{**info.kwargs, **overrides})
    return cls(variant=variant, **{**info.kwargs, **overrides})


_META_KEYS = ("method", "size_multiple", "min_size", "value_range")


def load_checkpoint(
    path: str | Path, expected: str | None = None, map_location: str | torch.device = "cpu"
):
    """Load a trained module from a Lightning checkpoint, safely (``weights_only=True``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an inpaintzoo checkpoint, or one of another method than ``expected``.
        RuntimeError: the file carries code (a pickle that ``weights_only`` refuses) or is
            corrupt/truncated.
    """
    path = Path(path)
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
    kwargs = {k: v for k, v in hparams.items() if k not in _META_KEYS}
    variant = kwargs.pop("variant", "full")
    model = create_model(method, variant=variant, **kwargs)
    model.load_state_dict(ckpt["state_dict"])
    model.on_load_checkpoint(ckpt)
    model.eval()
    return model
