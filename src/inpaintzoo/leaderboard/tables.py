"""Results -> a leaderboard table laid out like the CTSDG paper's (rows = methods,
columns = metric x hole-ratio bin), rendered as Markdown, CSV or a rich terminal table.

Rows of kind ``paper`` (numbers copied from publications) sit in a separate section and are
never ranked beside ours: different code, data and often a different protocol.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from inpaintzoo.leaderboard.results import METRIC_INFO

__all__ = [
    "COMPOSITE_NOTE",
    "OVERALL",
    "Column",
    "Row",
    "Table",
    "build_table",
    "describe_protocol",
    "format_cell",
    "format_params",
    "format_value",
    "print_leaderboard",
    "to_csv",
    "to_markdown",
]

OVERALL = "all"  # the column of a metric over every sample (``metrics.overall``)
COMPOSITE_NOTE = "Metrics on the composite output; ±: 95 % CI"

# decimals shown per metric; best marks compare values at this precision (a shown tie is a tie)
_DECIMALS = {
    "psnr": 2,
    "ssim": 3,
    "ssim_lbam": 3,
    "l1": 2,
    "lpips_alex": 3,
    "lpips_vgg": 3,
    "fid": 2,
}


class Column(NamedTuple):
    """One table column: a metric in one hole-ratio bin (``bin == "all"``: overall)."""

    metric: str
    bin: str

    @property
    def key(self) -> str:
        """``metric@bin``, the CSV column name."""
        return f"{self.metric}@{self.bin}"

    @property
    def higher_is_better(self) -> bool:
        return METRIC_INFO[self.metric][1] == "higher"

    @property
    def header(self) -> str:
        """Display header, e.g. ``PSNR ↑ 0-20%``."""
        arrow = "↑" if self.higher_is_better else "↓"
        return f"{METRIC_INFO[self.metric][0]} {arrow} {self.bin}"


@dataclass
class Row:
    """One method's row. Unpacks as ``label, kind, values, is_best``.

    ``values`` / ``ci95`` map each :class:`Column` to a float or ``None`` (n/a); ``is_best`` to
    whether it is the best of its column; ``na_reasons`` to the reason a value is n/a, if given.
    ``ranked`` is False for paper rows and for rows evaluated on another protocol.
    """

    label: str
    kind: str
    values: dict[Column, float | None]
    is_best: dict[Column, bool]
    ci95: dict[Column, float | None] = field(default_factory=dict)
    na_reasons: dict[Column, str] = field(default_factory=dict)
    method: str = ""
    params: int | None = None
    source: str | None = None
    protocol: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ranked: bool = True

    def __iter__(self) -> Iterator[Any]:
        yield from (self.label, self.kind, self.values, self.is_best)


@dataclass
class Table:
    """A leaderboard: ``rows`` (ours, ranked) and ``paper_rows`` (published, never ranked).

    ``protocol`` is the reference protocol of our rows; ``notes`` are table-level remarks
    (protocol mismatches, n/a reasons, per-run notes) that every renderer prints.
    """

    columns: list[Column]
    rows: list[Row]
    paper_rows: list[Row] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(column.metric for column in self.columns))

    @property
    def bins(self) -> list[str]:
        return list(dict.fromkeys(column.bin for column in self.columns))


def format_value(metric: str, value: float | None) -> str:
    """A metric value at its display precision; ``None`` -> ``"n/a"``."""
    if value is None:
        return "n/a"
    return f"{value:.{_DECIMALS.get(metric, 3)}f}"


def describe_protocol(protocol: Mapping[str, Any]) -> str:
    """E.g. ``smoke (64 px, 24 samples)``."""
    details = []
    if protocol.get("size") is not None:
        details.append(f"{protocol['size']} px")
    if protocol.get("num_samples") is not None:
        details.append(f"{protocol['num_samples']} samples")
    name = str(protocol.get("name", "?"))
    return f"{name} ({', '.join(details)})" if details else name


def _same_protocol(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a.get("name") != b.get("name") or a.get("size") != b.get("size"):
        return False
    sha_a, sha_b = a.get("pairs_sha256"), b.get("pairs_sha256")
    return not (sha_a and sha_b and sha_a != sha_b)


def _entry(result: Mapping[str, Any], column: Column) -> Mapping[str, Any] | None:
    metrics = result["metrics"]
    group = metrics["overall"] if column.bin == OVERALL else metrics["bins"].get(column.bin, {})
    entry = group.get(column.metric)
    return entry if isinstance(entry, Mapping) else None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _make_row(result: Mapping[str, Any], columns: Sequence[Column]) -> Row:
    values: dict[Column, float | None] = {}
    ci95: dict[Column, float | None] = {}
    na_reasons: dict[Column, str] = {}
    for column in columns:
        entry = _entry(result, column)
        values[column] = _number(entry.get("mean")) if entry else None
        ci95[column] = _number(entry.get("ci95")) if entry else None
        if values[column] is None:
            reason = entry.get("na_reason") if entry else None
            na_reasons[column] = str(reason) if reason else "not reported"
    notes = result.get("notes") or []
    return Row(
        label=str(result["label"]),
        kind=str(result["kind"]),
        values=values,
        is_best=dict.fromkeys(columns, False),
        ci95=ci95,
        na_reasons=na_reasons,
        method=str(result["method"]),
        params=result.get("params"),
        source=result.get("source"),
        protocol=dict(result["protocol"]),
        notes=[str(note) for note in (notes if isinstance(notes, list) else [notes])],
        ranked=result["kind"] != "paper",
    )


def _mark_best(rows: Sequence[Row], columns: Sequence[Column]) -> None:
    """Mark the best value of each column among ranked rows (ties at display precision all win).

    A column with fewer than two ranked values has no best: ranking one number says nothing.
    """
    for column in columns:
        decimals = _DECIMALS.get(column.metric, 3)
        shown = {
            id(row): round(row.values[column], decimals)
            for row in rows
            if row.ranked and row.values[column] is not None
        }
        if len(shown) < 2:
            continue
        best = max(shown.values()) if column.higher_is_better else min(shown.values())
        for row in rows:
            row.is_best[column] = shown.get(id(row)) == best


def build_table(
    results: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] | None = None,
    bins: Sequence[str] | None = None,
) -> Table:
    """Lay results out as a table: rows = methods, columns = metric x bin (bins, then ``all``).

    Args:
        results: results dicts (schema version 1, e.g. from :func:`load_results`).
        metrics: metric keys, in column order; default: every metric of :data:`METRIC_INFO`
            that any of our results reports (n/a included; the paper rows' when there are
            none of ours), in :data:`METRIC_INFO` order.
        bins: bin names (``"all"`` = overall); default: our protocol's bins, then ``"all"``.

    The best value of each column (max for higher-better metrics, min for lower-better) is
    marked among our rows that ran the reference protocol (the first non-paper result's);
    n/a values and paper rows are never ranked.

    Raises:
        ValueError: an unknown metric name, or no results.
    """
    if not results:
        raise ValueError("no results to tabulate")
    ours = [result for result in results if result["kind"] != "paper"]
    papers = [result for result in results if result["kind"] == "paper"]
    reference = ours or papers

    if metrics is None:
        reported = set()
        for result in reference:
            reported.update(result["metrics"]["overall"])
            for group in result["metrics"]["bins"].values():
                reported.update(group)
        metrics = [metric for metric in METRIC_INFO if metric in reported]
    unknown = [metric for metric in metrics if metric not in METRIC_INFO]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRIC_INFO)}")
    if bins is None:
        names: list[str] = []
        for result in reference:
            names.extend(result["protocol"].get("bins") or [])
            names.extend(result["metrics"]["bins"])
        bins = [name for name in dict.fromkeys(names) if name != OVERALL] + [OVERALL]
    columns = [Column(metric, bin_name) for metric in metrics for bin_name in bins]

    protocol = dict(reference[0]["protocol"])
    notes: list[str] = []
    rows = [_make_row(result, columns) for result in ours]
    for row in rows:
        if not _same_protocol(row.protocol, protocol):
            row.ranked = False
            notes.append(
                f"{row.label}: evaluated on protocol {describe_protocol(row.protocol)}, not "
                f"{describe_protocol(protocol)}; shown but not ranked"
            )
    _mark_best(rows, columns)
    paper_rows = [_make_row(result, columns) for result in papers]
    for row in paper_rows:
        if ours and row.protocol.get("size") != protocol.get("size"):
            row.notes.insert(
                0,
                f"protocol {describe_protocol(row.protocol)} differs from ours "
                f"({protocol.get('size')} px): not comparable",
            )

    reasons: dict[str, list[str]] = {}
    for row in rows:
        for column, reason in row.na_reasons.items():
            if reason != "not reported":
                labels = reasons.setdefault(f"{column.metric}: {reason}", [])
                if row.label not in labels:
                    labels.append(row.label)
    notes.extend(f"n/a — {reason} ({', '.join(labels)})" for reason, labels in reasons.items())
    for row in rows:
        notes.extend(f"{row.label}: {note}" for note in row.notes)
    return Table(columns=columns, rows=rows, paper_rows=paper_rows, protocol=protocol, notes=notes)


def format_cell(row: Row, column: Column, bold: str = "**") -> str:
    """``value ± ci95`` (or ``n/a``), wrapped in ``bold`` when it is the column's best."""
    value = row.values[column]
    text = format_value(column.metric, value)
    if value is not None and row.ci95.get(column) is not None:
        text += f" ± {format_value(column.metric, row.ci95[column])}"
    if row.is_best.get(column):
        text = f"{bold}{text}{bold}"
    return text


def format_params(params: Any) -> str:
    """Parameter count in millions (``10.77M``); ``—`` for none (classical, paper)."""
    if params is None:
        return "—"
    if isinstance(params, int | float) and not isinstance(params, bool):
        return f"{params / 1e6:.2f}M"
    return str(params)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(table: Table) -> str:
    """Markdown: our rows (best per column in **bold**, n/a as ``n/a``), then a separate,
    unranked section of published numbers, then notes."""
    # a metric that is n/a for every row (e.g. LPIPS offline) is named once, not as a column
    all_rows = [*table.rows, *table.paper_rows]
    columns = [c for c in table.columns if any(r.values.get(c) is not None for r in all_rows)]
    shown = {c.metric for c in columns}
    metrics = dict.fromkeys(c.metric for c in table.columns)
    dropped = [METRIC_INFO[m][0] for m in metrics if m not in shown]
    header = ["Method", "Kind", "Params", *(column.header for column in columns)]
    lines = [
        "# Leaderboard",
        "",
        f"Protocol: {describe_protocol(table.protocol)}. {COMPOSITE_NOTE}. "
        "Best per column in **bold** (↑ higher is better, ↓ lower is better).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * len(columns)) + "|",
    ]
    for row in table.rows:
        label = row.label if row.ranked else f"{row.label} †"
        cells = [label, row.kind, format_params(row.params)]
        cells += [format_cell(row, column) for column in columns]
        lines.append("| " + " | ".join(_md_escape(cell) for cell in cells) + " |")
    if table.paper_rows:
        lines += [
            "",
            "## Published numbers (not ranked)",
            "",
            "Copied from the papers: other code, data and protocol; never ranked beside ours.",
            "",
            "| " + " | ".join(["Method", "Source", *header[3:]]) + " |",
            "|" + "|".join(["---"] * 2 + ["---:"] * len(columns)) + "|",
        ]
        for row in table.paper_rows:
            source = row.source or ""
            if row.notes:
                source += " — " + "; ".join(row.notes)
            cells = [row.label, source] + [format_cell(row, column) for column in columns]
            lines.append("| " + " | ".join(_md_escape(cell) for cell in cells) + " |")
    if dropped:
        lines += ["", f"Not shown (n/a for every row, reasons below): {', '.join(dropped)}."]
    if table.notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {_md_escape(note)}" for note in table.notes]
        if any(not row.ranked for row in table.rows):
            lines.append("- †: another protocol than the reference; not ranked")
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """CSV, one row per method (ours, then paper rows): identification columns, then
    ``metric@bin`` and ``metric@bin_ci95`` per column; n/a is an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    fixed = ["label", "method", "kind", "params", "protocol", "size", "ranked", "source"]
    metric_header = []
    for column in table.columns:
        metric_header += [column.key, f"{column.key}_ci95"]
    writer.writerow(fixed + metric_header)
    for row in [*table.rows, *table.paper_rows]:
        cells: list[Any] = [
            row.label,
            row.method,
            row.kind,
            "" if row.params is None else row.params,
            row.protocol.get("name", ""),
            row.protocol.get("size", ""),
            int(row.ranked),
            row.source or "",
        ]
        for column in table.columns:
            for value in (row.values[column], row.ci95.get(column)):
                cells.append("" if value is None else repr(value))
        writer.writerow(cells)
    return buffer.getvalue()


def print_leaderboard(
    results: Sequence[Mapping[str, Any]] | Table,
    console: Any = None,
    metrics: Sequence[str] | None = None,
) -> None:
    """Print the leaderboard as rich tables (best in bold; paper rows in their own table)."""
    from rich.console import Console
    from rich.table import Table as RichTable

    table = results if isinstance(results, Table) else build_table(results, metrics=metrics)
    ours = RichTable(
        title=f"Leaderboard — protocol {describe_protocol(table.protocol)}",
        caption=COMPOSITE_NOTE,
    )
    for name in ("Method", "Kind", "Params"):
        ours.add_column(name)
    for column in table.columns:
        ours.add_column(column.header, justify="right", no_wrap=True)
    for row in table.rows:
        label = row.label if row.ranked else f"{row.label} †"
        cells = [format_cell(row, column, bold="") for column in table.columns]
        styled = [
            f"[bold]{cell}[/bold]" if row.is_best[column] else cell
            for cell, column in zip(cells, table.columns)
        ]
        ours.add_row(_rich_escape(label), row.kind, format_params(row.params), *styled)
    if console is None:
        console = Console()
        if not console.is_terminal:  # a log file or a pipe: full width rather than squashed
            wide = console.options.update(width=10_000)
            console = Console(width=max(console.width, console.measure(ours, options=wide).maximum))
    console.print(ours)
    if table.paper_rows:
        papers = RichTable(title="Published numbers (not ranked)")
        papers.add_column("Method")
        papers.add_column("Source")
        for column in table.columns:
            papers.add_column(column.header, justify="right", no_wrap=True)
        for row in table.paper_rows:
            source = "; ".join([row.source or "", *row.notes])
            cells = [format_cell(row, column, bold="") for column in table.columns]
            papers.add_row(_rich_escape(row.label), _rich_escape(source), *cells)
        console.print(papers)
    for note in table.notes:
        console.print(f"- {_rich_escape(note)}")


def _rich_escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
