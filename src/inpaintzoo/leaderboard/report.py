"""Write the whole leaderboard (Markdown, CSV, HTML, per-metric plots) into a folder."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from inpaintzoo.leaderboard.grid import write_visual_grid
from inpaintzoo.leaderboard.html import to_html
from inpaintzoo.leaderboard.plots import plot_bins
from inpaintzoo.leaderboard.tables import build_table, to_csv, to_markdown
from inpaintzoo.utils.io import atomic_write_text

__all__ = ["write_leaderboard"]


def write_leaderboard(
    results: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    metrics: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Write ``leaderboard.md``, ``leaderboard.csv``, ``leaderboard.html`` (plots and the
    visual grid embedded), ``plot_<metric>.png`` per metric and ``grid.png`` (the same samples
    across methods, when the results saved outputs) into ``out_dir``, each atomically.

    Returns:
        ``{"markdown": ..., "csv": ..., "html": ..., "plot_<metric>": ..., "grid": ...}`` ->
        written paths.
    """
    out_dir = Path(out_dir)
    table = build_table(results, metrics=metrics)
    plots = {
        metric: plot_bins(results, metric, out_dir / f"plot_{metric}.png")
        for metric in table.metrics
    }
    grid = write_visual_grid([r for r in results if r.get("kind") != "paper"], out_dir / "grid.png")
    images = dict(plots)
    if grid is not None:
        images["samples: the same inputs across methods"] = grid
    written = {
        "markdown": atomic_write_text(
            out_dir / "leaderboard.md",
            to_markdown(table)
            + ("\n![the same samples across methods](grid.png)\n" if grid is not None else ""),
        ),
        "csv": atomic_write_text(out_dir / "leaderboard.csv", to_csv(table)),
        "html": atomic_write_text(
            out_dir / "leaderboard.html", to_html(table, images, embed=True, relative_to=out_dir)
        ),
    }
    written.update({f"plot_{metric}": path for metric, path in plots.items()})
    if grid is not None:
        written["grid"] = grid
    return written
