"""Classical (non-learned) inpainting baselines for the benchmark.

Each baseline is a :class:`ClassicalInpainter`: call it with an image ``(B, 3, H, W)`` in
``[0, 1]`` and a mask ``(B, 1, H, W)`` (1 = hole); it returns the composite. No parameters, no
training; deterministic.

>>> from inpaintzoo.baselines import create_baseline
>>> telea = create_baseline("telea", radius=5)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inpaintzoo.baselines.base import ALL_HOLE_FILL, ClassicalInpainter
from inpaintzoo.baselines.opencv import OPENCV_METHODS, OpenCVInpainter
from inpaintzoo.baselines.patchmatch import PatchMatchInpainter, patchmatch_availability

__all__ = [
    "ALL_HOLE_FILL",
    "CLASSICAL_METHODS",
    "ClassicalInpainter",
    "OPENCV_METHODS",
    "OpenCVInpainter",
    "PatchMatchInpainter",
    "create_baseline",
    "patchmatch_availability",
]


def _telea(radius: float = 3) -> OpenCVInpainter:
    """Telea's fast marching inpainting (``cv2.INPAINT_TELEA``)."""
    return OpenCVInpainter("telea", radius=radius)


def _navier_stokes(radius: float = 3) -> OpenCVInpainter:
    """Navier-Stokes inpainting (``cv2.INPAINT_NS``)."""
    return OpenCVInpainter("navier_stokes", radius=radius)


def _patchmatch(patch_size: int = 3, seed: int = 0) -> PatchMatchInpainter:
    """PatchMatch completion (``pypatchmatch``), 7x7 patches, fixed seed."""
    return PatchMatchInpainter(patch_size=patch_size, seed=seed)


# registry name -> factory taking the method's keyword arguments.
CLASSICAL_METHODS: dict[str, Callable[..., ClassicalInpainter]] = {
    "telea": _telea,
    "navier_stokes": _navier_stokes,
    "patchmatch": _patchmatch,
}


def create_baseline(name: str, **kwargs: Any) -> ClassicalInpainter:
    """Build the classical inpainter registered as ``name`` (e.g. ``telea``, ``navier_stokes``).

    Raises:
        ValueError: ``name`` is not a registered baseline (the message lists the names).
    """
    if name not in CLASSICAL_METHODS:
        choices = ", ".join(sorted(CLASSICAL_METHODS))
        raise ValueError(f"unknown classical baseline {name!r}; available: {choices}")
    return CLASSICAL_METHODS[name](**kwargs)


def _register() -> None:
    """Register the baselines in the zoo (zoo.list_models(kind="classical"))."""
    from inpaintzoo.zoo import ModelInfo, register_model

    papers = {
        "telea": "Telea, An Image Inpainting Technique Based on the Fast Marching Method, 2004",
        "navier_stokes": "Bertalmio et al., Navier-Stokes, Fluid Dynamics, and Image and Video "
        "Inpainting, CVPR 2001",
        "patchmatch": "Barnes et al., PatchMatch: A Randomized Correspondence Algorithm for "
        "Structural Image Editing, SIGGRAPH 2009 (completion after Wexler et al., 2007)",
    }
    for name, paper in papers.items():
        register_model(
            ModelInfo(
                name=name,
                target="inpaintzoo.baselines:create_baseline",
                kind="classical",
                paper=paper,
                kwargs={"name": name},
            )
        )


_register()
