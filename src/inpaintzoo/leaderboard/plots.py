"""Per-bin plots: a metric across hole-ratio bins, one series per method (matplotlib, Agg).

Uses matplotlib's object API with the Agg canvas directly, so importing this module never
changes the global pyplot backend of the caller.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from inpaintzoo.leaderboard.results import METRIC_INFO
from inpaintzoo.leaderboard.tables import OVERALL, Column, build_table, describe_protocol
from inpaintzoo.utils.io import atomic_write_bytes

__all__ = ["plot_bins"]


def plot_bins(
    results: Sequence[Mapping[str, Any]],
    metric: str,
    path: str | os.PathLike,
    include_paper: bool = True,
    dpi: int = 110,
) -> Path:
    """Plot ``metric`` across the hole-ratio bins, one line per method, and save a PNG atomically.

    Our methods are solid lines with 95 % CI error bars; paper rows (if ``include_paper``) are
    dashed and labelled "(paper)", a visual reference only. n/a points are left out; a metric
    with no value at all gives a plot that says so.

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if metric not in METRIC_INFO:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRIC_INFO)}")
    table = build_table(results, metrics=[metric])
    bins = [name for name in table.bins if name != OVERALL]
    display, direction = METRIC_INFO[metric]

    figure = Figure(figsize=(6.4, 4.0))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    rows = [*table.rows, *(table.paper_rows if include_paper else [])]
    plotted = 0
    for row in rows:
        points = [
            (index, row.values[Column(metric, name)], row.ci95.get(Column(metric, name)))
            for index, name in enumerate(bins)
            if row.values[Column(metric, name)] is not None
        ]
        if not points:
            continue
        xs = [point[0] for point in points]
        ys = [point[1] for point in points]
        errors = [point[2] or 0.0 for point in points]
        paper = row.kind == "paper"
        axes.errorbar(
            xs,
            ys,
            yerr=None if paper else errors,
            label=f"{row.label} (paper, {row.protocol.get('size')} px)" if paper else row.label,
            linestyle="--" if paper else "-",
            marker="x" if paper else "o",
            capsize=3,
            alpha=0.6 if paper else 1.0,
        )
        plotted += 1
    axes.set_xticks(range(len(bins)))
    axes.set_xticklabels(bins)
    axes.set_xlabel("hole ratio")
    axes.set_ylabel(f"{display} ({direction} is better)")
    axes.set_title(f"{display} by hole ratio — {describe_protocol(table.protocol)}", fontsize=10)
    axes.grid(True, alpha=0.3)
    if plotted:
        axes.legend(fontsize=8)
    else:
        axes.text(
            0.5,
            0.5,
            f"{display}: n/a for every method",
            ha="center",
            va="center",
            transform=axes.transAxes,
        )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return atomic_write_bytes(path, buffer.getvalue())
