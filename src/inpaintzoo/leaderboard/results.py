"""Read and validate results files (schema version 1, see docs/CONTRACTS.md)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "METRIC_INFO", "SCHEMA_VERSION", "load_results", "validate_results"]

SCHEMA_VERSION = 1

# metric key -> (display name, "higher" | "lower" is better)
METRIC_INFO: dict[str, tuple[str, str]] = {
    "psnr": ("PSNR", "higher"),
    "ssim": ("SSIM", "higher"),
    "ssim_lbam": ("SSIM (LBAM/CTSDG def.)", "higher"),
    "l1": ("L1 (%)", "lower"),
    "lpips_alex": ("LPIPS (alex)", "lower"),
    "lpips_vgg": ("LPIPS (vgg)", "lower"),
    "fid": ("FID", "lower"),
}

KINDS = ("learned", "untrained", "classical", "paper")

_REQUIRED_KEYS = ("schema_version", "method", "label", "kind", "protocol", "metrics")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_results(data: Any, origin: str | os.PathLike = "<results>") -> dict[str, Any]:
    """Check one results dict against schema version 1; return it unchanged.

    Checks the required keys (``schema_version``, ``method``, ``label``, ``kind``, ``protocol``
    with ``name`` and ``size``, ``metrics`` with ``overall`` and ``bins``), the kind, a ``source``
    on paper rows, and that every metric entry is a dict whose ``mean`` (and ``ci95`` if present)
    is a finite number or null. Other keys are kept as they are.

    Raises:
        ValueError: naming ``origin`` and the offending key.
    """

    def fail(message: str) -> ValueError:
        return ValueError(f"{origin}: invalid results file: {message}")

    if not isinstance(data, Mapping):
        raise fail(f"expected a JSON object, got {type(data).__name__}")
    missing = [key for key in _REQUIRED_KEYS if key not in data]
    if missing:
        raise fail(f"missing required key(s): {', '.join(missing)}")
    if data["schema_version"] != SCHEMA_VERSION:
        raise fail(
            f"schema_version is {data['schema_version']!r}; this inpaintzoo reads version "
            f"{SCHEMA_VERSION}"
        )
    for key in ("method", "label"):
        if not isinstance(data[key], str) or not data[key]:
            raise fail(f"{key!r} must be a non-empty string, got {data[key]!r}")
    if data["kind"] not in KINDS:
        raise fail(f"kind is {data['kind']!r}; expected one of: {', '.join(KINDS)}")
    if data["kind"] == "paper" and not (isinstance(data.get("source"), str) and data["source"]):
        raise fail("a paper row needs a 'source' (paper, table, page)")

    protocol = data["protocol"]
    if not isinstance(protocol, Mapping):
        raise fail("'protocol' must be an object")
    for key in ("name", "size"):
        if key not in protocol:
            raise fail(f"missing required key 'protocol.{key}'")
    bins = protocol.get("bins", [])
    if not isinstance(bins, list) or not all(isinstance(name, str) for name in bins):
        raise fail("'protocol.bins' must be a list of bin names")

    metrics = data["metrics"]
    if not isinstance(metrics, Mapping):
        raise fail("'metrics' must be an object")
    for key in ("overall", "bins"):
        if key not in metrics:
            raise fail(f"missing required key 'metrics.{key}'")
        if not isinstance(metrics[key], Mapping):
            raise fail(f"'metrics.{key}' must be an object")
    groups: list[tuple[str, Any]] = [("metrics.overall", metrics["overall"])]
    for bin_name, group in metrics["bins"].items():
        if not isinstance(group, Mapping):
            raise fail(f"'metrics.bins.{bin_name}' must be an object")
        groups.append((f"metrics.bins.{bin_name}", group))
    for where, group in groups:
        for metric, entry in group.items():
            if not isinstance(entry, Mapping):
                raise fail(f"'{where}.{metric}' must be an object with 'mean'")
            if "mean" not in entry:
                raise fail(f"missing required key '{where}.{metric}.mean'")
            for field in ("mean", "ci95"):
                value = entry.get(field)
                if value is not None and not (_is_number(value) and math.isfinite(value)):
                    raise fail(f"'{where}.{metric}.{field}' must be a finite number or null")
    return dict(data)


def _expand(paths: Iterable[str | os.PathLike]) -> list[Path]:
    files: list[Path] = []
    missing: list[str] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            # a sweep folder: every results file below it (runs write results.json and
            # eval/results_<method>.json); duplicates are dropped by load_results
            found = sorted(path.rglob("results*.json"))
            if not found:
                missing.append(f"{path}/results*.json")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            missing.append(str(path))
    if missing:
        raise FileNotFoundError(f"results file(s) not found: {', '.join(missing)}")
    return files


def load_results(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """Read results files (schema version 1) in the order given.

    Args:
        paths: files, or folders (every ``results*.json`` below them, recursively, sorted by
            path: a sweep folder works); a single path is accepted too. The same evaluation
            found twice (same method, kind, label, protocol, checkpoint hash, method key and
            overall numbers) is kept once; equal labels of different runs get what differs
            between their run folder names appended (e.g. ``[model.stage=1]``).

    Raises:
        FileNotFoundError: naming every path that does not exist (or folder without results).
        ValueError: naming the file, for invalid JSON or a missing/bad key.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    results = []
    seen: set[str] = set()
    for path in _expand(paths):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON: {error}") from None
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}: not a UTF-8 text file: {error}") from None
        result = validate_results(data, origin=path)
        key = _identity(result)
        if key in seen:
            continue
        seen.add(key)
        results.append(result)
    _disambiguate(results)
    return results


def _disambiguate(results: list[dict[str, Any]]) -> None:
    """Equal labels from different runs of a sweep: append what differs between the run folders
    (Hydra's ``key=value,...`` override names), e.g. ``[model.stage=1]``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        groups.setdefault(result["label"], []).append(result)
    for label, group in groups.items():
        if len(group) < 2 or not all(r.get("checkpoint") for r in group):
            continue
        names = [Path(r["checkpoint"]["path"]).parent.parent.name for r in group]
        parts = [name.split(",") for name in names]
        common = set(parts[0]).intersection(*parts[1:])
        for result, items in zip(group, parts):
            differing = ",".join(item for item in items if item not in common) or "run"
            result["label"] = f"{label} [{differing}]"


def _identity(result: Mapping[str, Any]) -> str:
    """What makes two results files the same evaluation (a sweep folder holds each trained
    model's results twice and each baseline's once per run)."""
    checkpoint = result.get("checkpoint") or {}
    return json.dumps(
        [
            result["method"],
            result["kind"],
            result["label"],
            result["protocol"].get("name"),
            result["protocol"].get("pairs_sha256"),
            checkpoint.get("sha256") if isinstance(checkpoint, Mapping) else None,
            result.get("method_key"),
            result["metrics"].get("overall"),
        ],
        sort_keys=True,
        default=str,
    )
