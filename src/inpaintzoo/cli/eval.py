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
import re
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from inpaintzoo.cli.common import config_dir, device_for, to_plain

log = logging.getLogger("inpaintzoo.eval")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def parse_method(spec: str) -> tuple[str, str | None]:
    """``"name"`` or ``"name:path/to.ckpt"`` -> (name, checkpoint)."""
    name, _, ckpt = str(spec).partition(":")
    return name.strip(), (ckpt.strip() or None)


def build_predictor(spec: str, device: str, max_side: int | None = None):
    """A :class:`Predictor` for a registry name, optionally with a checkpoint."""
    from inpaintzoo import zoo
    from inpaintzoo.predictor import Predictor

    name, ckpt = parse_method(spec)
    info = zoo.get_model_info(name)
    if ckpt:
        return Predictor.from_checkpoint(ckpt, expected=name, device=device, max_side=max_side)
    if info.kind == "learned":
        raise ValueError(
            f"method {name!r} is learned: give its checkpoint as '{name}:path/to/last.ckpt'"
        )
    return Predictor(zoo.create_model(name), device="cpu", max_side=max_side)


def evaluate_run(cfg: DictConfig, model, run_dir: Path) -> dict[str, Any]:
    """End-of-training evaluation: the trained model next to ``evaluate.compare`` entries."""
    from inpaintzoo import zoo
    from inpaintzoo.evaluation import evaluate, write_result
    from inpaintzoo.leaderboard import print_leaderboard, write_leaderboard
    from inpaintzoo.predictor import Predictor
    from inpaintzoo.visualize import save_sample_grid

    eval_dir = run_dir / "eval"
    protocol, dataset, manifest = prepare_protocol(cfg, eval_dir)
    sha = manifest.pairs_sha256
    device = device_for(cfg.trainer.get("accelerator"))
    options = _eval_options(cfg, cfg.evaluate)
    bs = int(cfg.evaluate.get("batch_size", 8))
    notes = list(getattr(model, "run_notes", lambda: [])())
    name = model.method_name
    label = f"{name} ({model.variant}, {model.batches_seen} batches)"
    keep = int(cfg.evaluate.get("grid_samples", 8))
    common = dict(
        batch_size=bs, dataset=dataset, pairs_sha256=sha, manifest=manifest, keep_samples=keep
    )
    common.update(options)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    results = []
    trained = evaluate(
        Predictor(model, device=device),
        protocol,
        label=label,
        kind="learned",
        checkpoint=ckpt if ckpt.is_file() else None,
        notes=notes,
        outputs_dir=eval_dir / "outputs" / _slug(name),
        **common,
    )
    results.append(trained)
    write_result(trained, eval_dir / f"results_{_slug(name)}.json")
    write_result(trained, run_dir / "results.json")
    compare_samples = {}
    for entry in cfg.evaluate.get("compare") or []:
        if entry == "step0":
            step0 = run_dir / "checkpoints" / "step0.ckpt"
            if not step0.is_file():
                log.warning("no step0.ckpt in %s; skipping the untrained comparison", step0.parent)
                continue
            pred = Predictor.from_checkpoint(step0, expected=name, device=device)
            res = evaluate(
                pred,
                protocol,
                label=f"{name} ({model.variant}, untrained: step 0)",
                kind="untrained",
                checkpoint=step0,
                notes=notes,
                outputs_dir=eval_dir / "outputs" / _slug(f"{name}_step0"),
                **common,
            )
            key = f"{name}_step0"
        else:
            res = evaluate(
                Predictor(zoo.create_model(entry), device="cpu"),
                protocol,
                outputs_dir=eval_dir / "outputs" / _slug(entry),
                **common,
            )
            key = entry
        results.append(res)
        compare_samples[res["label"]] = res.samples.get("composite")
        write_result(res, eval_dir / f"results_{_slug(key)}.json")
    files = write_leaderboard(results, run_dir)
    print_leaderboard(results)
    s = trained.samples
    masked = s["image"] * (1 - s["mask"]) + s["mask"]
    grid_cols = {"masked input": masked}
    if "edge" in s:
        grid_cols["predicted edges"] = 1.0 - s["edge"]
    grid_cols["output"] = s["composite"]
    grid_cols["ground truth"] = s["image"]
    grid = save_sample_grid(grid_cols, run_dir / "samples.png")
    comparison = {"masked input": masked}
    comparison.update({k: v for k, v in compare_samples.items() if v is not None})
    comparison[label] = s["composite"]
    comparison["ground truth"] = s["image"]
    comp_grid = save_sample_grid(comparison, run_dir / "comparison.png")
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


def _eval_options(cfg: DictConfig, section: Any) -> dict[str, Any]:
    """Metric options shared by inpaintzoo-eval and the end-of-training evaluation."""
    return {
        "lpips": str(section.get("lpips", "imagenet")),
        "fid": bool(section.get("fid", True)),
        "outputs_per_bin": int(section.get("outputs_per_bin", 4)),
    }


def prepare_protocol(cfg: DictConfig, out_dir: Path):
    """Build the protocol, its dataset and manifest; write ``pairs_<protocol>.csv`` (every
    item's image, mask, hole ratio at the protocol size and bin) and the grid inputs."""
    from inpaintzoo.evaluation import (
        EvalProtocol,
        grid_indices,
        protocol_manifest,
        write_protocol_inputs,
    )
    from inpaintzoo.utils.io import atomic_write_text

    protocol = EvalProtocol.from_config(to_plain(cfg.protocol))
    dataset = protocol.dataset()
    manifest = protocol_manifest(protocol, dataset)
    atomic_write_text(out_dir / f"pairs_{_slug(protocol.name)}.csv", manifest.to_csv())
    per_bin = int(cfg.get("evaluate", cfg).get("outputs_per_bin", 4))
    write_protocol_inputs(dataset, grid_indices(manifest, per_bin), out_dir / "outputs" / "_inputs")
    return protocol, dataset, manifest


def run_eval(cfg: DictConfig) -> list[dict]:
    """``inpaintzoo-eval``: every method of ``cfg.methods`` on ``cfg.protocol``; resumable.

    Writes ``results_<method>.json`` and ``per_sample_<method>.csv`` per method, the pairs
    manifest, saved outputs per bin (``outputs/<method>/``), and the leaderboard, under
    ``cfg.out_dir``. Per-sample results are cached under ``cfg.cache_dir``: rerunning the same
    command after a kill continues where it stopped and gives identical results.
    """
    from inpaintzoo.evaluation import evaluate, write_per_sample, write_result
    from inpaintzoo.leaderboard import load_reported, print_leaderboard, write_leaderboard

    methods = list(cfg.methods or [])
    if not methods:
        raise ValueError("no methods given: pass e.g. 'methods=[telea,edgeconnect:path/to.ckpt]'")
    out_dir = Path(cfg.out_dir)
    protocol, dataset, manifest = prepare_protocol(cfg, out_dir)
    device = device_for(cfg.get("device"))
    options = _eval_options(cfg, cfg)
    cache_dir = cfg.get("cache_dir")
    results = []
    for spec in methods:
        predictor = build_predictor(spec, device, cfg.get("max_side"))
        name, ckpt = parse_method(spec)
        stem = _slug(name if not ckpt else f"{name}_{Path(ckpt).parent.parent.name}")
        res = evaluate(
            predictor,
            protocol,
            checkpoint=ckpt,
            batch_size=int(cfg.batch_size),
            dataset=dataset,
            manifest=manifest,
            cache_dir=cache_dir,
            outputs_dir=out_dir / "outputs" / stem,
            keep_samples=0,
            **options,
        )
        write_result(res, out_dir / f"results_{stem}.json")
        write_per_sample(res, out_dir / f"per_sample_{stem}.csv")
        results.append(res)
    board = results + load_reported(cfg.get("reported") or [])
    write_leaderboard(board, out_dir)
    print_leaderboard(board)
    return results


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
def main(cfg: DictConfig) -> None:
    """Entry point of ``inpaintzoo-eval``."""
    run_eval(cfg)


if __name__ == "__main__":
    main()
