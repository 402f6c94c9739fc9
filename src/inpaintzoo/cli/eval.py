"""``inpaintzoo-eval``: score checkpoints and classical baselines on a protocol.

Hydra main over ``conf/eval.yaml``::

    inpaintzoo-eval protocol=smoke \
        'methods=[edgeconnect:outputs/demo/edgeconnect/checkpoints/last.ckpt,telea,navier_stokes]'

Each method writes ``results_<label>.json`` (schema v1, docs/CONTRACTS.md) under ``out_dir``
(default ``outputs/eval/<protocol>/``); the leaderboard (Markdown, CSV, HTML, plots) is written
beside them and printed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig

from inpaintzoo.cli.common import config_dir, device_for, to_plain
from inpaintzoo.cli.errors import friendly_errors
from inpaintzoo.utils.naming import slug

if TYPE_CHECKING:
    from inpaintzoo.evaluation import OutputSettings, PreparedProtocol

log = logging.getLogger("inpaintzoo.eval")


def parse_method(spec: str) -> tuple[str, str | None]:
    """``"name"`` or ``"name:path/to.ckpt"`` -> (name, checkpoint)."""
    name, _, ckpt = str(spec).partition(":")
    return name.strip(), (ckpt.strip() or None)


def build_predictor(
    spec: str, device: str, max_side: int | None = None, options: dict[str, Any] | None = None
):
    """A :class:`Predictor` for a registry name, optionally with a checkpoint (loaded with the
    model ``options``, e.g. GLCIC's ``postprocess``)."""
    from inpaintzoo import zoo
    from inpaintzoo.predictor import Predictor

    name, ckpt = parse_method(spec)
    info = zoo.get_model_info(name)
    if ckpt:
        return Predictor.from_checkpoint(
            ckpt, expected=name, device=device, max_side=max_side, options=options
        )
    if options:
        raise ValueError(f"model_options for {name!r} need its checkpoint ('{name}:path.ckpt')")
    if info.kind == "learned":
        raise ValueError(
            f"method {name!r} is learned: give its checkpoint as '{name}:path/to/last.ckpt'"
        )
    return Predictor(zoo.create_model(name), device="cpu", max_side=max_side)


def evaluate_run(cfg: DictConfig, model, run_dir: Path) -> dict[str, Any]:
    """End-of-training evaluation: the trained model next to ``evaluate.compare`` entries."""
    from inpaintzoo import zoo
    from inpaintzoo.evaluation import (
        MethodInfo,
        MetricSettings,
        RunSettings,
        run_evaluation,
        write_result,
    )
    from inpaintzoo.leaderboard import print_leaderboard, write_leaderboard
    from inpaintzoo.predictor import Predictor

    eval_dir = run_dir / "eval"
    prepared = prepare_protocol(cfg, eval_dir)
    device = device_for(cfg.trainer.get("accelerator"))
    section = cfg.evaluate
    metrics = MetricSettings.from_config(section)
    run = RunSettings(batch_size=int(section.get("batch_size", 8)))
    keep = int(section.get("grid_samples", 8))
    notes = tuple(getattr(model, "run_notes", lambda: [])())
    name = model.method_name
    label = f"{name} ({model.variant}, {model.batches_seen} batches)"

    def evaluate_one(predictor, stem: str, method: MethodInfo):
        outputs = _output_settings(section, eval_dir / "outputs" / stem, keep_samples=keep)
        return run_evaluation(
            predictor, prepared, method=method, metrics=metrics, outputs=outputs, run=run
        )

    ckpt = run_dir / "checkpoints" / "last.ckpt"
    trained = evaluate_one(
        Predictor(model, device=device),
        slug(name),
        MethodInfo(label, "learned", ckpt if ckpt.is_file() else None, notes),
    )
    results = [trained]
    write_result(trained, eval_dir / f"results_{slug(name)}.json")
    write_result(trained, run_dir / "results.json")
    compare_samples = {}
    for entry in section.get("compare") or []:
        if entry == "step0":
            step0 = run_dir / "checkpoints" / "step0.ckpt"
            if not step0.is_file():
                log.warning("no step0.ckpt in %s; skipping the untrained comparison", step0.parent)
                continue
            key = f"{name}_step0"
            untrained = f"{name} ({model.variant}, untrained: step 0)"
            res = evaluate_one(
                Predictor.from_checkpoint(step0, expected=name, device=device),
                slug(key),
                MethodInfo(untrained, "untrained", step0, notes),
            )
        else:
            key = entry
            res = evaluate_one(
                Predictor(zoo.create_model(entry), device="cpu"), slug(entry), MethodInfo()
            )
        results.append(res)
        compare_samples[res["label"]] = res.samples.get("composite")
        write_result(res, eval_dir / f"results_{slug(key)}.json")
    files = write_leaderboard(results, run_dir)
    print_leaderboard(results)
    grid, comp_grid = _write_sample_grids(trained.samples, label, compare_samples, run_dir)
    overall = trained["metrics"]["overall"]
    log.info("samples: %s, comparison: %s, leaderboard: %s", grid, comp_grid, files)
    return {
        "psnr": overall["psnr"]["mean"],
        "ssim": overall["ssim"]["mean"],
        "l1": overall["l1"]["mean"],
        "results": str(run_dir / "results.json"),
        "leaderboard": str(run_dir / "leaderboard.md"),
        "grid": str(grid),
    }


def _write_sample_grids(
    samples: dict[str, Any], label: str, compare_samples: dict[str, Any], run_dir: Path
) -> tuple[Path, Path]:
    """``samples.png`` (masked input | predicted edges | output | ground truth) and
    ``comparison.png`` (the same samples across the compared methods) of a training run."""
    from inpaintzoo.visualize import save_sample_grid

    masked = samples["image"] * (1 - samples["mask"]) + samples["mask"]
    columns = {"masked input": masked}
    if "edge" in samples:
        columns["predicted edges"] = 1.0 - samples["edge"]
    columns["output"] = samples["composite"]
    columns["ground truth"] = samples["image"]
    grid = save_sample_grid(columns, run_dir / "samples.png")
    comparison = {"masked input": masked}
    comparison.update({k: v for k, v in compare_samples.items() if v is not None})
    comparison[label] = samples["composite"]
    comparison["ground truth"] = samples["image"]
    return grid, save_sample_grid(comparison, run_dir / "comparison.png")


def _output_settings(section: Any, out_dir: Path, keep_samples: int) -> OutputSettings:
    """Composites saved per bin (``outputs_per_bin``, shared by inpaintzoo-eval and the
    end-of-training evaluation) into ``out_dir``."""
    from inpaintzoo.evaluation import OutputSettings

    per_bin = int(section.get("outputs_per_bin", 4))
    return OutputSettings(dir=out_dir, per_bin=per_bin, keep_samples=keep_samples)


def prepare_protocol(cfg: DictConfig, out_dir: Path) -> PreparedProtocol:
    """Build the protocol, its dataset and manifest; write ``pairs_<protocol>.csv`` (every
    item's image, mask, hole ratio at the protocol size and bin) and the grid inputs."""
    from inpaintzoo.evaluation import (
        EvalProtocol,
        PreparedProtocol,
        grid_indices,
        write_protocol_inputs,
    )
    from inpaintzoo.utils.io import atomic_write_text

    prepared = PreparedProtocol.build(EvalProtocol.from_config(to_plain(cfg.protocol)))
    manifest = prepared.manifest
    atomic_write_text(out_dir / f"pairs_{slug(prepared.protocol.name)}.csv", manifest.to_csv())
    per_bin = int(cfg.get("evaluate", cfg).get("outputs_per_bin", 4))
    write_protocol_inputs(
        prepared.dataset, grid_indices(manifest, per_bin), out_dir / "outputs" / "_inputs"
    )
    return prepared


def run_eval(cfg: DictConfig) -> list[dict]:
    """``inpaintzoo-eval``: every method of ``cfg.methods`` on ``cfg.protocol``; resumable.

    Writes ``results_<method>.json`` and ``per_sample_<method>.csv`` per method, the pairs
    manifest, saved outputs per bin (``outputs/<method>/``), and the leaderboard, under
    ``cfg.out_dir``. Per-sample results are cached under ``cfg.cache_dir``: rerunning the same
    command after a kill continues where it stopped and gives identical results.
    """
    from inpaintzoo.evaluation import (
        MethodInfo,
        MetricSettings,
        RunSettings,
        run_evaluation,
        write_per_sample,
        write_result,
    )
    from inpaintzoo.leaderboard import load_reported, print_leaderboard, write_leaderboard

    methods = list(cfg.methods or [])
    if not methods:
        raise ValueError("no methods given: pass e.g. 'methods=[telea,edgeconnect:path/to.ckpt]'")
    out_dir = Path(cfg.out_dir)
    prepared = prepare_protocol(cfg, out_dir)
    device = device_for(cfg.get("device"))
    metrics = MetricSettings.from_config(cfg)
    run = RunSettings(batch_size=int(cfg.batch_size), cache_dir=cfg.get("cache_dir"))
    results = []
    all_options = to_plain(cfg.get("model_options")) or {}
    stray = sorted(set(all_options) - {parse_method(spec)[0] for spec in methods})
    if stray:
        raise ValueError(
            f"model_options for {', '.join(stray)}, which is not among the evaluated methods "
            "(model_options={<method>: {<option>: <value>}})"
        )
    for spec in methods:
        name, ckpt = parse_method(spec)
        options = dict(all_options.get(name) or {})
        predictor = build_predictor(spec, device, cfg.get("max_side"), options)
        stem = slug(name if not ckpt else f"{name}_{Path(ckpt).parent.parent.name}")
        if options:
            stem = slug(f"{stem}_" + "_".join(f"{k}-{v}" for k, v in options.items()))
        res = run_evaluation(
            predictor,
            prepared,
            method=MethodInfo(checkpoint=ckpt, options=tuple(options.items())),
            metrics=metrics,
            outputs=_output_settings(cfg, out_dir / "outputs" / stem, keep_samples=0),
            run=run,
        )
        write_result(res, out_dir / f"results_{stem}.json")
        write_per_sample(res, out_dir / f"per_sample_{stem}.csv")
        results.append(res)
    board = results + load_reported(cfg.get("reported") or [])
    write_leaderboard(board, out_dir)
    print_leaderboard(board)
    return results


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
@friendly_errors
def main(cfg: DictConfig) -> None:
    """Entry point of ``inpaintzoo-eval``."""
    run_eval(cfg)


if __name__ == "__main__":
    main()
