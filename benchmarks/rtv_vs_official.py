#!/usr/bin/env python
"""Our RTV smoothing vs the official StructureFlow MATLAB outputs (not part of CI).

The official repository (RenYurui/StructureFlow) ships example inputs with the structure images
that MATLAB's ``tsmooth`` made from them: ``example/<set>/<n>.<ext>`` next to
``example/<set>/<n>_tsmooth.<ext>``. For every pair whose two images have the same size, this
runs :func:`inpaintzoo.structure.rtv.rtv_smooth` on the input at its own size with each solver
and each parameter set, writes the result the way ``generate_structure_images.m`` does, and
prints PSNR / max / mean absolute difference (0-255 levels) against the official file.

Like for like with the official script (``scripts/matlab/generate_structure_images.m``):

* input: ``im2double(imread(f))`` = the file's uint8 values / 255, no resizing (PIL decodes
  the JPEG inputs; it agrees with MATLAB's decoder on these files, see the bit-exact results);
* output: ``imwrite(S, f)`` with a double image = clip to [0, 1], ``round(255 S)`` to uint8,
  then PNG (lossless) or, for ``.jpg`` outputs, JPEG at MATLAB's default quality 75 (the official
  files carry the standard quality-75 tables with 4:2:0 chroma, as PIL writes at quality 75).
  ``--no-jpeg`` compares the uint8 values without that re-encoding.

Parameter sets (``--params``):

* ``script``: ``tsmooth(I, 0.015, 3, 0.001, 3)``, the call in generate_structure_images.m;
* ``tsmooth-defaults``: ``tsmooth(I, 0.015, 3)``, i.e. sharpness and maxIter left at
  tsmooth's own defaults (0.02, 4). Several shipped examples were evidently made this way.

Usage::

    python benchmarks/rtv_vs_official.py --official /path/to/StructureFlow      # a checkout
    python benchmarks/rtv_vs_official.py --official /path/to/StructureFlow/.git # a bare git dir
    python benchmarks/rtv_vs_official.py --official .data/rtv_official           # copied pairs
    python benchmarks/rtv_vs_official.py --official ... --solvers official --params script
"""

from __future__ import annotations

import argparse
import io
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from inpaintzoo.structure.rtv import RTV_SOLVERS, rtv_smooth

PARAM_SETS: dict[str, dict[str, float]] = {
    "script": {"lam": 0.015, "sigma": 3.0, "sharpness": 0.001, "iterations": 3},
    "tsmooth-defaults": {"lam": 0.015, "sigma": 3.0, "sharpness": 0.02, "iterations": 4},
}
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
PSNR_CAP = 100.0  # identical images have infinite PSNR; means use this cap


def _read_pairs(root: Path) -> list[tuple[str, bytes, str, bytes, str]]:
    """``(name, input bytes, input suffix, official bytes, official suffix)`` for every pair."""
    files: dict[str, bytes] = {}
    if (root / "HEAD").is_file() and (root / "objects").is_dir():  # a bare git directory
        listing = subprocess.run(
            ["git", f"--git-dir={root}", "ls-tree", "-r", "--name-only", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        for name in listing:
            if name.lower().endswith(IMAGE_EXTS):
                blob = subprocess.run(
                    ["git", f"--git-dir={root}", "show", f"HEAD:{name}"],
                    check=True,
                    capture_output=True,
                ).stdout
                files[name] = blob
    elif root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_EXTS and ".git" not in path.parts:
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    else:
        raise SystemExit(f"--official {root}: not a folder; pass the official repo or the pairs")
    pairs = []
    for name, data in sorted(files.items()):
        stem, suffix = name.rsplit(".", 1)
        if not stem.endswith("_tsmooth"):
            continue
        base = stem[: -len("_tsmooth")]
        inputs = [n for n in files if n.rsplit(".", 1)[0] == base]
        if inputs:
            pairs.append((base, files[inputs[0]], inputs[0].rsplit(".", 1)[1], data, suffix))
    if not pairs:
        raise SystemExit(f"--official {root}: no '<name>_tsmooth.<ext>' files next to inputs")
    return pairs


def _decode(data: bytes) -> np.ndarray:
    """uint8 ``(H, W, 3)``; gray files are repeated to 3 channels for the comparison."""
    return np.array(Image.open(io.BytesIO(data)).convert("RGB"))


def _write_like_matlab(smooth: np.ndarray, suffix: str, jpeg: bool) -> np.ndarray:
    """``imwrite(S, f)`` of a double image: clip, round to uint8, PNG or JPEG quality 75."""
    q = np.floor(np.clip(smooth, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if jpeg and suffix.lower() in ("jpg", "jpeg"):
        buffer = io.BytesIO()
        Image.fromarray(q).save(buffer, "JPEG", quality=75)
        return _decode(buffer.getvalue())
    return q


def _compare(ours: np.ndarray, official: np.ndarray) -> dict[str, float]:
    diff = ours.astype(np.float64) - official.astype(np.float64)
    mse = float(np.mean(diff**2))
    return {
        "psnr": math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse),
        "max_abs": float(np.abs(diff).max()),
        "mean_abs": float(np.abs(diff).mean()),
    }


def _fmt(psnr: float) -> str:
    return "inf" if math.isinf(psnr) else f"{psnr:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", required=True, type=Path, help="official repo or pairs")
    parser.add_argument("--solvers", nargs="+", default=list(RTV_SOLVERS), choices=RTV_SOLVERS)
    parser.add_argument("--params", nargs="+", default=list(PARAM_SETS), choices=PARAM_SETS)
    parser.add_argument("--no-jpeg", action="store_true", help="skip the JPEG re-encoding")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", type=Path, help="also write every number here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    pairs = _read_pairs(args.official)
    rows: list[dict] = []
    print(f"{len(pairs)} official pairs from {args.official}; PSNR dB (max / mean |diff|, 0-255)")
    for name, input_bytes, _, official_bytes, out_suffix in pairs:
        image, official = _decode(input_bytes), _decode(official_bytes)
        if image.shape != official.shape:
            print(
                f"{name}: skipped, sizes differ (input {image.shape[1]}x{image.shape[0]}, "
                f"official {official.shape[1]}x{official.shape[0]}); not comparable at its size"
            )
            rows.append({"image": name, "skipped": "size differs"})
            continue
        x = torch.from_numpy(image).permute(2, 0, 1)[None].double() / 255.0
        cells = []
        for params in args.params:
            for solver in args.solvers:
                start = time.perf_counter()
                smooth = rtv_smooth(x, **PARAM_SETS[params], solver=solver)  # type: ignore[arg-type]
                seconds = time.perf_counter() - start
                ours = _write_like_matlab(
                    smooth[0].permute(1, 2, 0).numpy(), out_suffix, not args.no_jpeg
                )
                result = {"image": name, "params": params, "solver": solver, "seconds": seconds}
                result.update(_compare(ours, official))
                rows.append(result)
                cells.append(
                    f"{params}/{solver} {_fmt(result['psnr'])} "
                    f"({result['max_abs']:.0f} / {result['mean_abs']:.2f}, {seconds:.1f}s)"
                )
        print(f"{name} [{image.shape[1]}x{image.shape[0]}, {out_suffix}]: " + " | ".join(cells))
        sys.stdout.flush()

    done = [r for r in rows if "psnr" in r]
    if not done:
        return 1
    print(
        f"\nmean PSNR over {len({r['image'] for r in done})} images (inf counted as {PSNR_CAP:g})"
    )
    for params in args.params:
        for solver in args.solvers:
            values = [
                min(r["psnr"], PSNR_CAP)
                for r in done
                if r["params"] == params and r["solver"] == solver
            ]
            print(f"  {params:17s} {solver:9s} {np.mean(values):6.2f} dB")
    # each image with the parameter set that fits it best (by the first solver's PSNR)
    if len(args.params) > 1:
        first = args.solvers[0]
        best = {}
        for r in done:
            if r["solver"] == first and r["psnr"] > best.get(r["image"], (None, -1.0))[1]:
                best[r["image"]] = (r["params"], r["psnr"])
        print(f"\nbest-fitting parameter set per image (by '{first}'):")
        for image_name, (params, _) in sorted(best.items()):
            print(f"  {image_name}: {params}")
        for solver in args.solvers:
            values = [
                min(r["psnr"], PSNR_CAP)
                for r in done
                if r["solver"] == solver and r["params"] == best[r["image"]][0]
            ]
            print(f"  mean with each image's set, {solver:9s} {np.mean(values):6.2f} dB")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
