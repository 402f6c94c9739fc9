"""File-name-safe labels for method names, checkpoints and protocol names."""

from __future__ import annotations

import re

__all__ = ["slug"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def slug(text: str) -> str:
    """``text`` with every run of characters outside ``[A-Za-z0-9_.-]`` replaced by one ``_``
    and leading/trailing ``_`` removed, e.g. ``"edgeconnect (tiny, 800 batches)"`` ->
    ``"edgeconnect_tiny_800_batches"``. Used in results, output and cache folder names."""
    return _UNSAFE.sub("_", str(text)).strip("_")
