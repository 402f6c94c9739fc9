"""Mask sources: what a dataset calls to get the mask of one sample.

A mask source is any callable ``source(index, height, width, rng) -> np.ndarray`` returning
float32 ``(height, width)`` in ``{0, 1}`` (1 = hole). ``index`` is the sample index (used by
deterministic file sources), ``rng`` a ``numpy.random.Generator`` that the dataset seeds (per
item in evaluation, so the image x mask pairing is reproducible). Sources are small picklable
objects, so DataLoader workers can copy them. :func:`build_mask_source` builds one from a plain
dict, e.g. a Hydra config ``mask: {kind: free_form}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from inpaintzoo.masks.files import MaskFiles
from inpaintzoo.masks.generators import (
    deepfill_v2_mask,
    free_form_mask,
    half_mask,
    rectangle_mask,
    square_mask,
)

__all__ = [
    "MASK_KINDS",
    "DeepFillV2Masks",
    "FreeFormMasks",
    "HalfMasks",
    "MaskSource",
    "MixedMasks",
    "RectangleMasks",
    "SquareMasks",
    "build_mask_source",
]


@runtime_checkable
class MaskSource(Protocol):
    """``source(index, height, width, rng) -> float32 (height, width) in {0, 1}``."""

    def __call__(
        self, index: int, height: int, width: int, rng: np.random.Generator
    ) -> np.ndarray: ...


@dataclass
class FreeFormMasks:
    """DeepFill v2 brush strokes (:func:`~inpaintzoo.masks.free_form_mask`); ``params`` are
    its keyword arguments (``num_strokes``, ``num_vertex``, ``brush_width``, ...)."""

    params: dict[str, Any] = field(default_factory=dict)

    def __init__(self, **params: Any) -> None:
        self.params = params

    def __call__(self, index: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return free_form_mask(height, width, rng, **self.params)


@dataclass
class DeepFillV2Masks:
    """DeepFill v2 training masks: box ∪ brush strokes
    (:func:`~inpaintzoo.masks.deepfill_v2_mask`)."""

    params: dict[str, Any] = field(default_factory=dict)

    def __init__(self, **params: Any) -> None:
        self.params = params

    def __call__(self, index: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return deepfill_v2_mask(height, width, rng, **self.params)


@dataclass
class RectangleMasks:
    """One random box with sides uniform in ``[min_frac, max_frac]`` of the image's
    (:func:`~inpaintzoo.masks.rectangle_mask`)."""

    min_frac: float = 0.25
    max_frac: float = 0.5

    def __call__(self, index: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return rectangle_mask(height, width, rng, min_frac=self.min_frac, max_frac=self.max_frac)


@dataclass
class SquareMasks:
    """EdgeConnect ``MASK=1``: an ``H*frac`` x ``W*frac`` block at a random position."""

    frac: float = 0.5

    def __call__(self, index: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return square_mask(height, width, rng, frac=self.frac)


@dataclass
class HalfMasks:
    """EdgeConnect ``MASK=2``: the left or the right half of the image."""

    def __call__(self, index: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return half_mask(height, width, rng)


@dataclass
class MixedMasks:
    """Pick one of ``sources`` per sample (with probabilities ``probs``, uniform by default)
    using ``rng``, then draw the mask from it with the same ``rng``. E.g. EdgeConnect
    ``MASK=4`` = ``MixedMasks([SquareMasks(), MaskFiles(...)], [0.5, 0.5])``. ``sources`` may be
    dicts for :func:`build_mask_source`."""

    sources: list[Any]
    probs: list[float] | None = None

    def __post_init__(self) -> None:
        self.sources = [_as_source(s) for s in self.sources]
        if not self.sources:
            raise ValueError("MixedMasks needs at least one source")
        if self.probs is None:
            self.probs = [1.0 / len(self.sources)] * len(self.sources)
        probs = np.asarray(self.probs, dtype=np.float64)
        if probs.shape != (len(self.sources),) or np.any(probs < 0) or probs.sum() <= 0:
            raise ValueError(
                f"MixedMasks probs must be {len(self.sources)} non-negative weights, "
                f"got {self.probs}"
            )
        self.probs = (probs / probs.sum()).tolist()

    def __call__(self, index: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        choice = int(rng.choice(len(self.sources), p=self.probs))
        return self.sources[choice](index, height, width, rng)


MASK_KINDS: dict[str, type] = {
    "free_form": FreeFormMasks,
    "deepfill_v2": DeepFillV2Masks,
    "rectangle": RectangleMasks,
    "square": SquareMasks,
    "half": HalfMasks,
    "files": MaskFiles,
    "mixed": MixedMasks,
}


def _plain(value: Any) -> Any:
    """OmegaConf containers -> plain dicts/lists (without importing omegaconf here)."""
    if type(value).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    return value


def _as_source(spec: Any) -> Any:
    spec = _plain(spec)
    if isinstance(spec, Mapping):
        return build_mask_source(**dict(spec))
    if isinstance(spec, str):
        return build_mask_source(spec)
    if not callable(spec):
        raise TypeError(f"a mask source must be callable or a dict with 'kind', got {spec!r}")
    return spec


def build_mask_source(kind: str, **kwargs: Any) -> Any:
    """Build a mask source by name (what Hydra configs use: ``mask: {kind: free_form}``).

    Kinds: ``free_form`` (:class:`FreeFormMasks`), ``deepfill_v2`` (:class:`DeepFillV2Masks`),
    ``rectangle`` (:class:`RectangleMasks`), ``square`` (:class:`SquareMasks`), ``half``
    (:class:`HalfMasks`), ``files`` (:class:`~inpaintzoo.masks.MaskFiles`), ``mixed``
    (:class:`MixedMasks`, whose ``sources`` may be dicts of this form). ``kwargs`` go to the
    class.

    >>> build_mask_source("files", root="../shared/data/nvidia_masks", polarity="white_hole")
    ... # doctest: +SKIP
    """
    kwargs = {k: _plain(v) for k, v in kwargs.items()}
    if kind not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; choose one of: {', '.join(MASK_KINDS)}")
    cls = MASK_KINDS[kind]
    for key in ("num_strokes", "num_vertex", "brush_width", "crop_scale"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise TypeError(f"mask kind {kind!r}: {err}") from err


def check_mask_array(mask: Any, height: int, width: int, source: Any) -> np.ndarray:
    """Check what a mask source returned: float32 ``(height, width)`` in ``{0, 1}``."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask source {source!r} returned {type(mask).__name__}, not a numpy array")
    if mask.shape != (height, width):
        raise ValueError(
            f"mask source {source!r} returned a mask of size {tuple(mask.shape)}, expected "
            f"({height}, {width})"
        )
    if mask.dtype != np.float32:
        mask = mask.astype(np.float32)
    if not np.all((mask == 0) | (mask == 1)):
        raise ValueError(
            f"mask source {source!r} returned a non-binary mask (values not in {{0, 1}})"
        )
    return mask
