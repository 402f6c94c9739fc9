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
    from inpaintzoo.evaluation import EvalProtocol, evaluate, pairs_hash, write_result
    from inpaintzoo.leaderboard import print_leaderboard, write_leaderboard
    from inpaintzoo.predictor import Predictor
    from inpaintzoo.visualize import save_sample_grid

    protocol = EvalProtocol.from_config(to_plain(cfg.protocol))
    dataset = protocol.dataset()
    sha = pairs_hash(dataset)
    device = device_for(cfg.trainer.get("accelerator"))
    eval_dir = run_dir / "eval"
    bs = int(cfg.evaluate.get("batch_size", 8))
    notes = list(getattr(model, "run_notes", lambda: [])())
    name = model.method_name
    label = f"{name} ({model.variant}, {model.batches_seen} batches)"
    keep = int(cfg.evaluate.get("grid_samples", 8))
    common = dict(batch_size=bs, dataset=dataset, pairs_sha256=sha, keep_samples=keep)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    results = []
    trained = evaluate(
        Predictor(model, device=device),
        protocol,
        label=label,
        kind="learned",
        checkpoint=ckpt if ckpt.is_file() else None,
        notes=notes,
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
                **common,
            )
            key = f"{name}_step0"
        else:
            res = evaluate(Predictor(zoo.create_model(entry), device="cpu"), protocol, **common)
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


def run_eval(cfg: DictConfig) -> list[dict]:
    from inpaintzoo.evaluation import EvalProtocol, evaluate, pairs_hash, write_result
    from inpaintzoo.leaderboard import print_leaderboard, write_leaderboard

    protocol = EvalProtocol.from_config(to_plain(cfg.protocol))
    dataset = protocol.dataset()
    sha = pairs_hash(dataset)
    out_dir = Path(cfg.out_dir)
    device = device_for(cfg.get("device"))
    methods = list(cfg.methods or [])
    if not methods:
        raise ValueError("no methods given: pass e.g. 'methods=[telea,edgeconnect:path/to.ckpt]'")
    results = []
    for spec in methods:
        predictor = build_predictor(spec, device, cfg.get("max_side"))
        name, ckpt = parse_method(spec)
        res = evaluate(
            predictor,
            protocol,
            checkpoint=ckpt,
            batch_size=int(cfg.batch_size),
            dataset=dataset,
            pairs_sha256=sha,
        )
        stem = _slug(name if not ckpt else f"{name}_{Path(ckpt).parent.parent.name}")
        write_result(res, out_dir / f"results_{stem}.json")
        results.append(res)
    write_leaderboard(results, out_dir)
    print_leaderboard(results)
    return results


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
def main(cfg: DictConfig) -> None:
    """Entry point of ``inpaintzoo-eval``."""
    run_eval(cfg)


if __name__ == "__main__":
    main()
