"""Leaderboard: results files -> Markdown/CSV/HTML tables, plots, terminal table, CLI."""

from __future__ import annotations

import copy
import csv
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from inpaintzoo.cli.leaderboard import main
from inpaintzoo.leaderboard import (
    METRIC_INFO,
    Column,
    build_table,
    load_results,
    plot_bins,
    print_leaderboard,
    to_csv,
    to_html,
    to_markdown,
    write_leaderboard,
)

BINS = ["0-20%", "20-40%", "40-60%"]
PROTOCOL = {
    "name": "smoke",
    "size": 64,
    "num_samples": 24,
    "pairs_sha256": "ab" * 32,
    "bins": BINS,
    "metrics_on": "composite",
}


def _entry(mean, ci95=0.1, n=8, reason=None):
    entry = {"mean": mean, "ci95": None if mean is None else ci95, "n": 0 if mean is None else n}
    if reason:
        entry["na_reason"] = reason
    return entry


def _result(method, label, kind, psnr, l1, ssim=None, protocol=PROTOCOL, source=None, params=None):
    """psnr / l1: one value per bin; overall = their mean. ssim None -> n/a everywhere."""
    bins = {}
    for index, name in enumerate(BINS):
        bins[name] = {
            "psnr": _entry(psnr[index]),
            "l1": _entry(l1[index], ci95=0.05),
            "ssim": _entry(None if ssim is None else ssim[index], ci95=0.01),
            "lpips_alex": _entry(None, reason="LPIPS alex weights not in the torch cache"),
        }
    overall = {
        "psnr": _entry(sum(psnr) / 3),
        "l1": _entry(sum(l1) / 3, ci95=0.05),
        "ssim": _entry(None if ssim is None else sum(ssim) / 3, ci95=0.01),
        "lpips_alex": _entry(None, reason="LPIPS alex weights not in the torch cache"),
    }
    return {
        "schema_version": 1,
        "method": method,
        "label": label,
        "kind": kind,
        "protocol": copy.deepcopy(protocol),
        "metrics": {"overall": overall, "bins": bins},
        "params": params,
        "checkpoint": None,
        "runtime": {"seconds": 1.0, "images_per_second": 24.0, "device": "cpu"},
        "environment": {"python": "3.11.7"},
        "notes": [],
        "source": source,
        "created": "2026-11-23T12:00:00Z",
    }


@pytest.fixture
def results():
    edgeconnect = _result(
        "edgeconnect", "edgeconnect (tiny)", "learned",
        psnr=[30.0, 24.0, 20.0], l1=[1.5, 3.0, 6.0], ssim=[0.90, 0.75, 0.55], params=1_234_567,
    )  # fmt: skip
    edgeconnect["notes"] = ["VGG-based losses switched off (demo recipe)"]
    telea = _result(
        "telea", "telea", "classical",
        psnr=[31.0, 23.0, 19.0], l1=[1.2, 3.5, 7.0], ssim=[0.91, 0.70, 0.50],
    )  # fmt: skip
    untrained = _result(
        "ctsdg", "ctsdg (untrained)", "untrained",
        psnr=[10.0, 9.0, 8.0], l1=[20.0, 25.0, 30.0], ssim=None,
    )  # fmt: skip
    paper = _result(
        "ctsdg", "CTSDG (Places2)", "paper",
        psnr=[40.0, 35.0, 30.0], l1=[0.1, 0.2, 0.3], ssim=[0.99, 0.98, 0.97],
        protocol={"name": "ctsdg_places2", "size": 256, "bins": BINS},
        source="Guo et al. ICCV 2021, Table 1, p. 6",
    )  # fmt: skip
    return [edgeconnect, telea, untrained, paper]


def _write(tmp_path, results):
    paths = []
    for index, result in enumerate(results):
        path = tmp_path / f"results_{index}.json"
        path.write_text(json.dumps(result))
        paths.append(path)
    return paths


def _md_rows(markdown):
    return {
        cells[0]: cells
        for line in markdown.splitlines()
        if line.startswith("| ") and not line.startswith("| Method")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }


def test_build_table_columns_and_best(results):
    table = build_table(results, metrics=["psnr", "l1", "ssim"])
    assert table.columns[:4] == [
        ("psnr", "0-20%"), ("psnr", "20-40%"), ("psnr", "40-60%"), ("psnr", "all"),
    ]  # fmt: skip
    assert len(table.columns) == 12
    assert Column("psnr", "0-20%").header == "PSNR ↑ 0-20%"
    assert Column("l1", "all").header == "L1 (%) ↓ all"
    assert [row.label for row in table.rows] == ["edgeconnect (tiny)", "telea", "ctsdg (untrained)"]
    assert [row.label for row in table.paper_rows] == ["CTSDG (Places2)"]
    label, kind, values, is_best = table.rows[1]  # rows unpack as (label, kind, values, is_best)
    assert (label, kind) == ("telea", "classical")
    assert values[Column("psnr", "0-20%")] == 31.0
    best = {col: [row.label for row in table.rows if row.is_best[col]] for col in table.columns}
    assert best[Column("psnr", "0-20%")] == ["telea"]  # higher is better
    assert best[Column("psnr", "20-40%")] == ["edgeconnect (tiny)"]
    assert best[Column("l1", "0-20%")] == ["telea"]  # lower is better
    assert best[Column("l1", "40-60%")] == ["edgeconnect (tiny)"]
    assert best[Column("ssim", "0-20%")] == ["telea"]  # n/a of the untrained row ignored
    # the paper row beats every column but is never ranked
    assert not any(any(row.is_best.values()) for row in table.paper_rows)


def test_default_metrics_and_bins(results):
    table = build_table(results)
    assert table.metrics == ["psnr", "ssim", "l1", "lpips_alex"]  # METRIC_INFO order
    assert table.bins == [*BINS, "all"]
    assert set(METRIC_INFO) == {
        "psnr", "ssim", "ssim_lbam", "l1", "lpips_alex", "lpips_vgg", "fid",
    }  # fmt: skip
    with pytest.raises(ValueError, match="unknown metric"):
        build_table(results, metrics=["psnr", "accuracy"])


def test_markdown(results):
    table = build_table(results, metrics=["psnr", "l1", "ssim", "lpips_alex"])
    markdown = to_markdown(table)
    assert "Metrics on the composite output; ±: 95 % CI" in markdown
    assert "smoke (64 px, 24 samples)" in markdown
    rows = _md_rows(markdown)
    header = next(line for line in markdown.splitlines() if line.startswith("| Method"))
    headers = [cell.strip() for cell in header.strip("|").split("|")]
    column = {name: index for index, name in enumerate(headers)}
    telea, edgeconnect = rows["telea"], rows["edgeconnect (tiny)"]
    assert telea[column["PSNR ↑ 0-20%"]] == "**31.00 ± 0.10**"
    assert edgeconnect[column["PSNR ↑ 0-20%"]] == "30.00 ± 0.10"
    assert edgeconnect[column["PSNR ↑ 20-40%"]].startswith("**24.00")
    assert telea[column["L1 (%) ↓ 0-20%"]].startswith("**1.20")
    assert edgeconnect[column["L1 (%) ↓ all"]].startswith("**")  # 3.50 < 3.90 < 25
    assert rows["ctsdg (untrained)"][column["SSIM ↑ 0-20%"]] == "n/a"
    # every ranked column has exactly one bold cell (lpips_alex: all n/a, no best)
    ours = {label: cells for label, cells in rows.items() if label != "CTSDG (Places2)"}
    for name, index in column.items():
        bold = [label for label, cells in ours.items() if cells[index].startswith("**")]
        assert len(bold) == (0 if "LPIPS" in name or index < 3 else 1), name
    assert "LPIPS alex weights not in the torch cache" in markdown
    assert "VGG-based losses switched off (demo recipe)" in markdown
    # the paper row: its own section below ours, with its source, never bold
    ours_end = markdown.index("| ctsdg (untrained)")
    section = markdown.index("## Published numbers (not ranked)")
    assert ours_end < section < markdown.index("| CTSDG (Places2)")
    paper = rows["CTSDG (Places2)"]
    assert "Guo et al. ICCV 2021" in paper[1] and "256 px" in paper[1]
    assert not any(cell.startswith("**") for cell in paper)


def test_markdown_names_all_na_columns_instead_of_printing_them(results):
    markdown = to_markdown(build_table(results, metrics=["psnr", "lpips_alex"]))
    header = next(line for line in markdown.splitlines() if line.startswith("| Method"))
    assert "PSNR ↑ all" in header and "LPIPS" not in header
    assert "Not shown (n/a for every row, reasons below): LPIPS (alex)." in markdown
    assert "LPIPS alex weights not in the torch cache" in markdown  # the reason stays
    # a column with at least one number (here PSNR) is always shown, CSV keeps every column
    assert "lpips_alex@all" in to_csv(build_table(results, metrics=["psnr", "lpips_alex"]))


def test_protocol_mismatch_not_ranked(results):
    other = copy.deepcopy(results[1])
    other["label"] = "telea (other protocol)"
    other["protocol"]["size"] = 128
    other["metrics"]["bins"]["0-20%"]["psnr"]["mean"] = 99.0
    table = build_table([*results[:3], other], metrics=["psnr"])
    row = table.rows[-1]
    assert not row.ranked and not row.is_best[Column("psnr", "0-20%")]
    assert table.rows[1].is_best[Column("psnr", "0-20%")]
    assert any("not ranked" in note for note in table.notes)
    assert "telea (other protocol) †" in to_markdown(table)


def test_csv_parses_back(results):
    table = build_table(results, metrics=["psnr", "l1"])
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert [row["label"] for row in rows] == [
        "edgeconnect (tiny)", "telea", "ctsdg (untrained)", "CTSDG (Places2)",
    ]  # fmt: skip
    header = list(rows[0])
    assert header[:8] == [
        "label",
        "method",
        "kind",
        "params",
        "protocol",
        "size",
        "ranked",
        "source",
    ]
    assert header[8:12] == ["psnr@0-20%", "psnr@0-20%_ci95", "psnr@20-40%", "psnr@20-40%_ci95"]
    assert len(header) == 8 + 2 * 8
    assert float(rows[1]["psnr@0-20%"]) == 31.0
    assert float(rows[1]["l1@0-20%_ci95"]) == 0.05
    assert float(rows[0]["params"]) == 1_234_567 and rows[1]["params"] == ""
    assert rows[3]["kind"] == "paper" and rows[3]["ranked"] == "0"
    assert rows[3]["source"].startswith("Guo et al.")
    table = build_table(results, metrics=["ssim"])
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert rows[2]["ssim@all"] == "" and rows[2]["ssim@all_ci95"] == ""  # n/a: empty cell


def test_html(results, tmp_path):
    table = build_table(results, metrics=["psnr", "l1"])
    plot = tmp_path / "plot_psnr.png"
    Image.new("RGB", (4, 4), "red").save(plot)  # to_html embeds whatever PNG it is given
    page = to_html(table, {"psnr": plot})
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count('<table class="sortable">') == 2  # ours, and the paper rows apart
    assert "function sortTable" in page and "addEventListener" in page
    assert "<th>PSNR ↑ 0-20%</th>" in page
    assert re.search(r'<td class="num best" data-value="31.0">31.00 ± 0.10</td>', page)
    assert "data:image/png;base64," in page
    assert page.index("Published numbers") < page.index("CTSDG (Places2)")
    linked = to_html(table, {"psnr": plot}, embed=False, relative_to=tmp_path)
    assert 'src="plot_psnr.png"' in linked
    assert "<script>" in to_html(table, None)


def test_plots_are_png(results, tmp_path):
    for metric in ("l1", "lpips_alex"):  # lpips_alex: all n/a, still a valid plot
        path = plot_bins(results, metric, tmp_path / "plots" / f"{metric}.png")
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 100
    assert not list((tmp_path / "plots").glob(".*.tmp"))


def test_write_leaderboard(results, tmp_path):
    written = write_leaderboard(results, tmp_path / "board", metrics=["psnr", "l1"])
    assert set(written) == {"markdown", "csv", "html", "plot_psnr", "plot_l1"}
    names = sorted(path.name for path in (tmp_path / "board").iterdir())
    assert names == sorted(
        ["leaderboard.md", "leaderboard.csv", "leaderboard.html", "plot_psnr.png", "plot_l1.png"]
    )
    assert "**31.00 ± 0.10**" in written["markdown"].read_text(encoding="utf-8")


def test_print_leaderboard(results):
    from rich.console import Console

    console = Console(record=True, width=250, force_terminal=True)
    print_leaderboard(results, console=console, metrics=["psnr"])
    text = console.export_text(clear=False)
    assert "telea" in text and "Published numbers (not ranked)" in text
    assert "31.00 ± 0.10" in text
    assert "\x1b[1m31.00 ± 0.10" in console.export_text(styles=True)


def test_load_results_files_and_dirs(results, tmp_path):
    paths = _write(tmp_path, results)
    (tmp_path / "notes.json").write_text("{}")  # not results*.json: ignored in a folder
    assert load_results(paths) == results
    assert load_results(tmp_path) == results
    assert load_results([str(paths[0])]) == results[:1]
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_results([paths[0], tmp_path / "missing.json"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(schema_version=2), "schema_version"),
        (lambda r: r.pop("metrics"), "metrics"),
        (lambda r: r.pop("label"), "label"),
        (lambda r: r["protocol"].pop("size"), "protocol.size"),
        (lambda r: r.update(kind="magic"), "kind"),
        (lambda r: r["metrics"]["overall"]["psnr"].update(mean="high"), "overall.psnr.mean"),
        (lambda r: r["metrics"].pop("bins"), "metrics.bins"),
        (lambda r: r.update(kind="paper", source=None), "source"),
    ],
)
def test_bad_schema_names_the_file(results, tmp_path, change, message):
    bad = copy.deepcopy(results[0])
    change(bad)
    path = tmp_path / "results_bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=re.escape(str(path))) as error:
        load_results([path])
    assert message in str(error.value)


def test_bad_json_names_the_file(tmp_path):
    path = tmp_path / "results_broken.json"
    path.write_text('{"schema_version": 1,')
    with pytest.raises(ValueError, match="results_broken.json.*not valid JSON"):
        load_results([path])


def test_cli_end_to_end(results, tmp_path, capsys):
    paths = _write(tmp_path, results)
    out = tmp_path / "out"
    code = main([*map(str, paths), "--out", str(out), "--metrics", "ssim", "psnr"])
    assert code == 0
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.html", "plot_ssim.png"):
        assert (out / name).is_file()
    assert "telea" in capsys.readouterr().out


def test_cli_bad_input(results, tmp_path, capsys):
    paths = _write(tmp_path, results[:1])
    out = tmp_path / "out"
    assert main([str(paths[0]), str(tmp_path / "nope.json"), "--out", str(out)]) == 2
    assert "nope.json" in capsys.readouterr().err
    broken = tmp_path / "results_broken.json"
    broken.write_text("not json")
    assert main([str(broken), "--out", str(out)]) == 2
    assert "results_broken.json" in capsys.readouterr().err
    assert not out.exists()
    assert main([str(paths[0]), "--out", str(out), "--metrics", "accuracy"]) == 2
    assert main([str(paths[0])]) == 2  # --out is required


# ---------------------------------------------------- sweeps folders, paper rows, visual grid


def test_sweep_folder_is_searched_recursively_and_deduplicated(results, tmp_path):
    edgeconnect, telea = copy.deepcopy(results[0]), copy.deepcopy(results[1])
    runs = []
    for stage, shift in (("1", 0.0), ("2", 1.0)):
        run = tmp_path / "demo" / "edgeconnect" / f"model.stage={stage},model.variant=tiny"
        mine = copy.deepcopy(edgeconnect)
        mine["metrics"]["overall"]["psnr"]["mean"] += shift
        mine["checkpoint"] = {"path": str(run / "checkpoints" / "last.ckpt"), "sha256": stage}
        (run / "eval").mkdir(parents=True)
        for path in (run / "results.json", run / "eval" / "results_edgeconnect.json"):
            path.write_text(json.dumps(mine))  # the same evaluation, written twice
        (run / "eval" / "results_telea.json").write_text(json.dumps(telea))  # once per run
        runs.append(run)
    loaded = load_results(tmp_path / "demo")
    labels = sorted(r["label"] for r in loaded)
    assert labels == [
        "edgeconnect (tiny) [model.stage=1]",
        "edgeconnect (tiny) [model.stage=2]",
        "telea",
    ]


def test_reported_rows_carry_sources_and_are_never_ranked(results):
    from inpaintzoo.leaderboard import list_reported, load_reported

    assert "ctsdg_iccv2021" in list_reported()
    rows = load_reported("ctsdg_iccv2021:celeba")
    assert len(rows) == 8 and all(r["kind"] == "paper" for r in rows)
    edge = next(r for r in rows if r["method"] == "edgeconnect")
    entry = edge["metrics"]["bins"]["0-20%"]["psnr"]
    assert entry["mean"] == 32.12 and "Table 2 (CelebA)" in entry["source"]
    assert edge["protocol"]["size"] == 256
    table = build_table(results[:2] + rows, metrics=["psnr"])
    assert all(not row.ranked and not any(row.is_best.values()) for row in table.paper_rows)
    assert any("not comparable" in note for row in table.paper_rows for note in row.notes)
    best = [row.label for row in table.rows if row.is_best[("psnr", "0-20%")]]
    assert best == ["telea"]  # 31.0 beats 30.0; the paper's 33.91 is not in the ranking
    markdown = to_markdown(table)
    assert "## Published numbers (not ranked)" in markdown and "**31.00 ± 0.10**" in markdown
    with pytest.raises(ValueError, match="no table for dataset"):
        load_reported("ctsdg_iccv2021:imagenet")
    with pytest.raises(FileNotFoundError, match="bundled"):
        load_reported("no_such_paper")


def test_visual_grid_shows_the_same_samples_across_methods(tmp_path):
    from PIL import Image

    from inpaintzoo.leaderboard import write_visual_grid

    def png(path, value):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(path)

    base = tmp_path / "outputs"
    for index in (0, 5, 9):
        png(base / "_inputs" / "masked" / f"{index:06d}.png", 255)
        png(base / "_inputs" / "gt" / f"{index:06d}.png", 0)
    entries = []
    for name, indices, value in (("a", (0, 5, 9), 50), ("b", (0, 9), 100)):
        for index in indices:
            png(base / name / f"{index:06d}.png", value)
        entries.append(
            {
                "label": name,
                "kind": "classical",
                "outputs": {"dir": str(base / name), "inputs_dir": str(base / "_inputs")},
            }
        )
    path = write_visual_grid(entries, tmp_path / "grid.png", max_rows=8)
    with Image.open(path) as image:
        width, height = image.size
    assert width == 4 * 16  # masked input, a, b, ground truth
    assert height > 2 * 16 and height < 3 * 16 + 60  # the 2 common samples (0 and 9), a header
    assert write_visual_grid([{"label": "paper", "kind": "paper"}], tmp_path / "g2.png") is None
