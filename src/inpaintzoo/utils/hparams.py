"""Checkpoint hyperparameters: plain Python types, and the keys that are not constructor
arguments.

A method stores its constructor arguments plus a few metadata keys (:data:`META_KEYS`) in its
checkpoint's ``hyper_parameters``, all as plain types so that ``torch.load(weights_only=True)``
can read them (DESIGN.md, "Testing habits").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["META_KEYS", "split_hparams", "to_plain_types"]

#: hyperparameters recorded for loaders and the predictor, never passed to the constructor
META_KEYS: tuple[str, ...] = ("method", "size_multiple", "min_size", "value_range")


def split_hparams(
    hparams: Mapping[str, Any], default_variant: str = "full"
) -> tuple[str, dict[str, Any]]:
    """``(variant, constructor kwargs)`` of stored hyperparameters: :data:`META_KEYS` dropped,
    ``variant`` taken out (``default_variant`` when absent)."""
    kwargs = {k: v for k, v in hparams.items() if k not in META_KEYS}
    variant = kwargs.pop("variant", default_variant)
    return variant, kwargs


def to_plain_types(value: Any) -> Any:
    """OmegaConf containers, mappings, lists/tuples and paths -> plain ``dict`` / ``list`` /
    ``str`` (recursively; mapping keys become ``str``). Other values are returned as they are.

    omegaconf is imported only to recognise its containers (no hard dependency here).
    """
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency of the package
        pass
    if isinstance(value, Mapping):
        return {str(k): to_plain_types(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain_types(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
