"""``inpaintzoo-leaderboard RESULTS... --out DIR``: results files -> leaderboard files.

Writes ``leaderboard.md``, ``leaderboard.csv``, ``leaderboard.html``, ``plot_<metric>.png`` and,
when the results saved outputs, ``grid.png`` (the same samples across methods) into ``--out``,
and prints the table. ``--reported`` adds published rows (unranked). Exit status 2 on bad input
(missing file, invalid JSON, wrong schema), with a message naming the file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from inpaintzoo.leaderboard import (
    METRIC_INFO,
    build_table,
    load_reported,
    load_results,
    print_leaderboard,
    write_leaderboard,
)

PROG = "inpaintzoo-leaderboard"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Build a leaderboard (Markdown, CSV, HTML, plots) from results files.",
    )
    parser.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS",
        help="results JSON files (schema v1), or folders (searched recursively for "
        "results*.json: a sweep folder such as outputs/<experiment> works)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    parser.add_argument(
        "--metrics",
        nargs="+",
        choices=list(METRIC_INFO),
        metavar="METRIC",
        help="metrics to show, in order (default: every reported one); "
        f"from: {', '.join(METRIC_INFO)}",
    )
    parser.add_argument(
        "--reported",
        nargs="+",
        default=[],
        metavar="NAME",
        help="add published rows (unranked): a bundled data file, optionally one dataset "
        "(e.g. ctsdg_iccv2021:celeba), or a YAML path",
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad arguments or input files)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help (0) and on usage errors (2)
        return int(exit_.code or 0)
    try:
        results = load_results(args.results) + load_reported(args.reported)
        table = build_table(results, metrics=args.metrics)
    except (FileNotFoundError, ValueError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    written = write_leaderboard(results, args.out, metrics=args.metrics)
    if not args.quiet:
        print_leaderboard(table)
        for path in written.values():
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
