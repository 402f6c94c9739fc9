"""Results files -> leaderboard tables (Markdown, CSV, HTML, terminal), per-bin plots and the
visual grid of the same samples across methods; published rows join unranked (``reported``).

>>> from inpaintzoo.leaderboard import load_results, write_leaderboard
>>> results = load_results(["outputs/eval/results_telea.json", "outputs/eval/"])  # doctest: +SKIP
>>> write_leaderboard(results, "outputs/leaderboard")  # doctest: +SKIP
"""

from inpaintzoo.leaderboard.grid import write_visual_grid
from inpaintzoo.leaderboard.html import to_html
from inpaintzoo.leaderboard.plots import plot_bins
from inpaintzoo.leaderboard.report import write_leaderboard
from inpaintzoo.leaderboard.reported import REPORTED_DIR, list_reported, load_reported
from inpaintzoo.leaderboard.results import (
    KINDS,
    METRIC_INFO,
    SCHEMA_VERSION,
    load_results,
    validate_results,
)
from inpaintzoo.leaderboard.tables import (
    COMPOSITE_NOTE,
    OVERALL,
    Column,
    Row,
    Table,
    build_table,
    print_leaderboard,
    to_csv,
    to_markdown,
)

__all__ = [
    "COMPOSITE_NOTE",
    "KINDS",
    "METRIC_INFO",
    "OVERALL",
    "REPORTED_DIR",
    "SCHEMA_VERSION",
    "Column",
    "Row",
    "Table",
    "build_table",
    "list_reported",
    "load_reported",
    "load_results",
    "plot_bins",
    "print_leaderboard",
    "to_csv",
    "to_html",
    "to_markdown",
    "validate_results",
    "write_leaderboard",
    "write_visual_grid",
]
