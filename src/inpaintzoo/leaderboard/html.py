"""A static, self-contained HTML leaderboard page: sortable tables and the per-bin plots."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from html import escape
from pathlib import Path

from inpaintzoo.leaderboard.tables import (
    COMPOSITE_NOTE,
    Row,
    Table,
    describe_protocol,
    format_cell,
    format_params,
)

__all__ = ["SORT_SCRIPT", "to_html"]

# Click a header to sort by it; click again to reverse. Numeric cells sort by data-value;
# n/a cells (empty data-value) always go last.
SORT_SCRIPT = """
function sortTable(th) {
  var table = th.closest("table"), body = table.tBodies[0];
  var index = Array.prototype.indexOf.call(th.parentNode.cells, th);
  var ascending = th.getAttribute("data-order") !== "asc";
  Array.prototype.forEach.call(th.parentNode.cells, function (c) {
    c.removeAttribute("data-order");
  });
  th.setAttribute("data-order", ascending ? "asc" : "desc");
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = a.cells[index], y = b.cells[index];
    var xv = x.getAttribute("data-value"), yv = y.getAttribute("data-value");
    if (xv !== null && yv !== null) {
      if (xv === "" || yv === "") { return (xv === "") - (yv === ""); }
      return ascending ? xv - yv : yv - xv;
    }
    var xs = x.textContent, ys = y.textContent;
    return ascending ? xs.localeCompare(ys) : ys.localeCompare(xs);
  });
  rows.forEach(function (r) { body.appendChild(r); });
}
document.querySelectorAll("table.sortable th").forEach(function (th) {
  th.addEventListener("click", function () { sortTable(th); });
});
""".strip()

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; }
th { background: #f3f3f3; cursor: pointer; user-select: none; }
th[data-order="asc"]::after { content: " ▲"; }
th[data-order="desc"]::after { content: " ▼"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: bold; }
td.na { color: #999; }
.plots img { max-width: 480px; margin: 0.5em; border: 1px solid #eee; }
""".strip()


def _metric_cells(row: Row, table: Table) -> list[str]:
    cells = []
    for column in table.columns:
        value = row.values[column]
        classes = ["num"]
        if row.is_best.get(column):
            classes.append("best")
        title = ""
        if value is None:
            classes.append("na")
            title = f' title="{escape(row.na_reasons.get(column, "n/a"))}"'
        data_value = "" if value is None else repr(value)
        text = escape(format_cell(row, column, bold=""))
        cells.append(
            f'<td class="{" ".join(classes)}" data-value="{data_value}"{title}>{text}</td>'
        )
    return cells


def _table_html(table: Table, rows: list[Row], paper: bool) -> str:
    fixed = ["Method", "Source"] if paper else ["Method", "Kind", "Params"]
    headers = fixed + [column.header for column in table.columns]
    lines = ['<table class="sortable">', "<thead><tr>"]
    lines += [f"<th>{escape(header)}</th>" for header in headers]
    lines += ["</tr></thead>", "<tbody>"]
    for row in rows:
        if paper:
            source = "; ".join([row.source or "", *row.notes])
            first = [f"<td>{escape(row.label)}</td>", f"<td>{escape(source)}</td>"]
        else:
            label = row.label if row.ranked else f"{row.label} †"
            params = row.params if isinstance(row.params, int | float) else ""
            first = [
                f"<td>{escape(label)}</td>",
                f"<td>{escape(row.kind)}</td>",
                f'<td class="num" data-value="{params}">{escape(format_params(row.params))}</td>',
            ]
        lines.append("<tr>" + "".join(first + _metric_cells(row, table)) + "</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)


def _image_src(path: Path, embed: bool, relative_to: Path | None) -> str:
    if embed:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        return f"data:image/png;base64,{data}"
    if relative_to is not None:
        return escape(os.path.relpath(path, relative_to))
    return escape(str(path))


def to_html(
    table: Table,
    plots: Mapping[str, str | os.PathLike] | None = None,
    embed: bool = True,
    relative_to: str | os.PathLike | None = None,
    title: str = "inpaintzoo leaderboard",
) -> str:
    """A static HTML page: our table (sortable, best in bold), the paper rows in their own
    unranked table, the notes, and the plots.

    Args:
        table: from :func:`build_table`.
        plots: title -> PNG path, shown in this order under "By hole ratio" (the per-metric
            plots of :func:`plot_bins`; :func:`write_leaderboard` adds the visual grid).
        embed: inline the PNGs as base64 (a self-contained page); else link to them, relative
            to ``relative_to`` when given (the folder the page is written to).
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>\n{_STYLE}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>Protocol: {escape(describe_protocol(table.protocol))}. {escape(COMPOSITE_NOTE)}. "
        "Best per column in bold (↑ higher is better, ↓ lower is better). "
        "Click a column header to sort.</p>",
        _table_html(table, table.rows, paper=False),
    ]
    if table.paper_rows:
        parts += [
            "<h2>Published numbers (not ranked)</h2>",
            "<p>Copied from the papers: other code, data and protocol; never ranked beside "
            "ours.</p>",
            _table_html(table, table.paper_rows, paper=True),
        ]
    if table.notes:
        parts.append("<h2>Notes</h2>")
        parts.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in table.notes) + "</ul>")
    if plots:
        base = Path(relative_to) if relative_to is not None else None
        parts.append('<h2>By hole ratio</h2>\n<div class="plots">')
        for metric, path in plots.items():
            src = _image_src(Path(path), embed, base)
            parts.append(f'<img src="{src}" alt="{escape(metric)} by hole ratio">')
        parts.append("</div>")
    parts += [f"<script>\n{SORT_SCRIPT}\n</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"
