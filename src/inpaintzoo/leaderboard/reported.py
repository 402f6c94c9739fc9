"""Published ("reported in paper") rows from the data files in ``leaderboard/reported/``.

A data file (YAML) names the paper, the paper's protocol (name, size, bins) and one block per
table, each with its ``source`` (paper, table, page) and rows of numbers per bin. Every number
therefore carries its source; each loaded metric entry repeats it (``"source"``).

>>> rows = load_reported(["ctsdg_iccv2021:celeba"])  # doctest: +SKIP

Rows are schema-v1 results of kind ``paper``: the leaderboard shows them in their own unranked
section, and notes when their resolution differs from ours.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from inpaintzoo.leaderboard.results import SCHEMA_VERSION, validate_results

__all__ = ["REPORTED_DIR", "list_reported", "load_reported"]

REPORTED_DIR = Path(__file__).with_name("reported")


def list_reported() -> list[str]:
    """Names of the bundled data files (``ctsdg_iccv2021``, ...)."""
    return sorted(p.stem for p in REPORTED_DIR.glob("*.yaml"))


def _source_text(source: dict[str, Any]) -> str:
    parts = [str(source.get("paper", "")), str(source.get("table", ""))]
    page = source.get("page")
    parts.append(f"page {page}" if page is not None else "page unknown")
    if source.get("seed_lines"):
        parts.append(f"seed text lines {source['seed_lines']}")
    return ", ".join(p for p in parts if p)


def _load_file(path: Path, dataset: str | None) -> list[dict[str, Any]]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from None
    for key in ("paper", "protocol", "tables"):
        if key not in (data or {}):
            raise ValueError(f"{path}: missing required key {key!r}")
    protocol = dict(data["protocol"])
    bins = list(protocol.get("bins") or [])
    tables = data["tables"]
    known = sorted({t.get("dataset") for t in tables})
    if dataset is not None and dataset not in known:
        raise ValueError(f"{path}: no table for dataset {dataset!r}; available: {', '.join(known)}")
    out = []
    for table in tables:
        if dataset is not None and table.get("dataset") != dataset:
            continue
        source = table.get("source") or {}
        if not source.get("paper") or not source.get("table"):
            raise ValueError(f"{path}: table {table.get('dataset')!r} lacks source paper/table")
        source_text = _source_text(source)
        for method, row in (table.get("rows") or {}).items():
            metrics: dict[str, Any] = {"overall": {}, "bins": {b: {} for b in bins}}
            for metric, values in row.items():
                if metric == "label":
                    continue
                if not isinstance(values, list) or len(values) != len(bins):
                    raise ValueError(
                        f"{path}: {table.get('dataset')}/{method}/{metric} needs one number per "
                        f"bin ({len(bins)}), got {values!r}"
                    )
                for name, value in zip(bins, values):
                    metrics["bins"][name][metric] = {
                        "mean": value,
                        "ci95": None,
                        "n": None,
                        "source": source_text,
                    }
            result = {
                "schema_version": SCHEMA_VERSION,
                "method": str(method),
                "label": f"{row.get('label', method)} — {table['dataset']}, "
                f"{protocol.get('size')} px (paper)",
                "kind": "paper",
                "protocol": {**protocol, "dataset": table["dataset"]},
                "metrics": metrics,
                "params": None,
                "checkpoint": None,
                "source": source_text,
                "notes": [f"reported in {data['paper']}"],
            }
            out.append(validate_results(result, origin=f"{path}:{table['dataset']}/{method}"))
    return out


def load_reported(specs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """Paper rows from ``specs``: bundled names (``ctsdg_iccv2021``), optionally with one
    dataset (``ctsdg_iccv2021:celeba``), or paths to YAML files of the same layout.

    Raises:
        FileNotFoundError: an unknown name or missing file (the message lists the bundled names).
        ValueError: a malformed file, or a dataset the file has no table for.
    """
    if isinstance(specs, str | os.PathLike):
        specs = [specs]
    rows: list[dict[str, Any]] = []
    for spec in specs:
        text = str(spec)
        path = Path(text)
        dataset = None
        if not path.is_file():
            name, _, dataset = text.partition(":")
            dataset = dataset or None
            path = Path(name) if Path(name).is_file() else REPORTED_DIR / f"{name}.yaml"
        if not path.is_file():
            raise FileNotFoundError(
                f"reported-numbers file {text!r} not found; bundled: {', '.join(list_reported())}"
            )
        rows.extend(_load_file(path, dataset))
    return rows
