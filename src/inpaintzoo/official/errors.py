"""The one error type of the official-weights importers."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["OfficialWeightsError", "describe_keys"]


def describe_keys(keys: Iterable[str], limit: int = 8) -> str:
    """``'a', 'b', ... (+12 more)``: a bounded, readable list of state-dict keys."""
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


class OfficialWeightsError(ValueError):
    """An official weights file is not what it claims to be (wrong method, damaged, unsafe,
    missing or extra keys). The message names the file and the offending keys.

    Attributes:
        file: the file (or folder) concerned, as given.
        keys: the offending keys (may be empty).
    """

    def __init__(self, message: str, file: str | None = None, keys: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.file = file
        self.keys = list(keys)
