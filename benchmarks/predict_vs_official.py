"""Folder prediction vs the official EdgeConnect ``test.py``: images/s, equality, FLOP share.

    python benchmarks/predict_vs_official.py --official /path/to/edge-connect [--threads 2]

Not part of CI; it fetches nothing. ``--official`` is a checkout of knazeri/edge-connect.

Same weights: the official-format files (``EdgeModel_gen.pth`` ... as ``BaseModel.save`` writes
them) generated from the parity recipe of ``tests/fixtures/official/edgeconnect`` (random but
deterministic weights: the speed of a convolution does not depend on its values), imported into
ours with ``inpaintzoo.official.import_official``.

Same data: ``--pairs`` (default 50) image/mask pairs at 256 px under ``<work>/data``, built
once from ``../shared/data``: the 22 pairs' images of ``examples/`` (edge-connect's 16, AOT-GAN's
6, resized to 256 and centre-cropped), the four 256 px quadrants of AOT-GAN's 6 images resized
to 512, and scikit-image's bundled RGB photos (astronaut, chelsea, coffee, rocket,
motorcycle_left, motorcycle_right, hubble_deep_field, retina, ihc) resized and centre-cropped to
256, in that order; masks are NVIDIA irregular test masks ``nvidia_masks/%05d.png`` for every
``12000 // pairs``-th file (all six hole-ratio bins), resized to 256 (nearest), white = hole.

Same thread count: both processes get ``OMP_NUM_THREADS`` and ``torch.set_num_threads`` =
``--threads``. The official ``test.py`` runs unmodified in its own process (``main(mode=2)``,
model 3: G1's raw edges feed G2) under the run-time shims of
``scripts/official_parity/compat.py`` (SciPy's removed ``imread``/``imresize``, NumPy's removed
aliases, PyYAML 6, VGG without download); ours is ``predict_folder`` (what ``inpaintzoo-predict
image=DIR mask=DIR out=DIR`` runs) in its own process. Timed: the loop over the folder (decode,
edges, both generators, compositing, PNG encoding and writing), not the model loading. Runs
alternate (official, ours, ...) ``--repeats`` times; the median is reported.

Equality: both pipelines run ``--verify`` pairs with the same inference behaviour (raw G1
edges into G2) and the same Canny map (scikit-image's, as the official code; ours uses a
batched kornia Canny by default, which differs by design); the official composites are captured
in float before the 8-bit conversion and must equal ours within 1e-5.

FLOP ceiling: the inpainting generator's FLOP/s on one thread (``torch.utils.flop_counter``
FLOPs / best time of a batch-1 forward at 256 px, measured before and after the runs, the higher
kept); our share = images/s x FLOPs per image (G1 + G2) / (ceiling x threads).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import runpy
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
COMPAT = REPO / "scripts" / "official_parity"
FIXTURE = REPO / "tests" / "fixtures" / "official" / "edgeconnect"
SHARED = Path(os.environ.get("INPAINTZOO_SHARED_DATA", REPO.parent / "shared" / "data"))
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "ihc.png",
)


# ----------------------------------------------------------------------------- data
def _square(image, size: int):
    from PIL import Image

    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


def source_images(count: int) -> list:
    import skimage
    from PIL import Image

    examples = SHARED / "examples"
    ec = sorted((examples / "edge-connect").glob("*/images/*"))
    aot = sorted((examples / "AOT-GAN-for-Inpainting").glob("*/image/*"))
    if not ec or not aot:
        raise SystemExit(f"shared data not found under {examples} (set INPAINTZOO_SHARED_DATA)")
    images = [_square(Image.open(p).convert("RGB"), 256) for p in ec + aot]
    for p in aot:
        big = _square(Image.open(p).convert("RGB"), 512)
        images += [big.crop((x, y, x + 256, y + 256)) for y in (0, 256) for x in (0, 256)]
    photos = Path(skimage.__file__).parent / "data"
    images += [_square(Image.open(photos / n).convert("RGB"), 256) for n in SKIMAGE_PHOTOS]
    if len(images) < count:
        raise SystemExit(f"only {len(images)} source images for --pairs {count}")
    return images[:count]


def build_data(folder: Path, count: int) -> tuple[Path, Path]:
    from PIL import Image

    images, masks = folder / "images", folder / "masks"
    if len(list(images.glob("*.png"))) == count and len(list(masks.glob("*.png"))) == count:
        return images, masks
    shutil.rmtree(folder, ignore_errors=True)
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    step = 12000 // count
    for i, image in enumerate(source_images(count)):
        image.save(images / f"{i:03d}.png")
        mask = Image.open(SHARED / "nvidia_masks" / f"{i * step:05d}.png").convert("L")
        mask = mask.resize((256, 256), Image.NEAREST).point(lambda v: 255 if v > 127 else 0)
        mask.save(masks / f"{i:03d}.png")
    return images, masks


def build_weights(folder: Path, official: Path) -> Path:
    from inpaintzoo.official.synthetic import synthetic_state_dict, write_official_files

    meta = json.loads((FIXTURE / "keys.json").read_text())
    if not all((folder / name).is_file() for name in meta["files"]):
        states = {n: synthetic_state_dict(i["keys"]) for n, i in meta["networks"].items()}
        write_official_files(meta["files"], states, folder)
    shutil.copyfile(official / "config.yml.example", folder / "config.yml")
    return folder


# ----------------------------------------------------------------------------- child processes
def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def official_child(args) -> None:
    """Runs inside its own process: the official test.py under the compat shims."""
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(COMPAT))
    import compat

    compat.install_numpy_aliases()
    compat.install_scipy_misc()
    compat.install_offline_vgg()
    compat.install_yaml_default_loader()
    compat.install_skimage_gray_passthrough()
    src = args.official.resolve()
    sys.path.insert(0, str(src))
    os.chdir(src)
    import src.edge_connect as official_module
    import src.models as official_models

    timing: dict = {}
    original_test = official_module.EdgeConnect.test

    def timed_test(self):
        f0, t0 = _faults(), time.perf_counter()
        original_test(self)
        timing.update(seconds=time.perf_counter() - t0, faults=_faults() - f0)

    official_module.EdgeConnect.test = timed_test
    captured: list[torch.Tensor] = []
    if args.capture:
        forward = official_models.InpaintingModel.forward

        def capture(self, images, edges, masks):
            outputs = forward(self, images, edges, masks)
            captured.append((outputs * masks + images * (1 - masks)).detach().clone())
            return outputs

        official_models.InpaintingModel.forward = capture
    sys.argv = ["test.py", "--checkpoints", str(args.weights), "--input", str(args.images)]
    sys.argv += ["--mask", str(args.masks), "--output", str(args.out), "--model", "3"]
    runpy.run_path(str(src / "test.py"), run_name="__main__")
    if captured:
        torch.save(torch.cat(captured), Path(args.out) / "composites.pt")
    Path(args.result).write_text(json.dumps(timing))


def ours_child(args) -> None:
    """Runs inside its own process: inpaintzoo's folder prediction."""
    torch.set_num_threads(args.threads)
    from inpaintzoo.predictor import Predictor, pair_inputs, predict_folder

    predictor = Predictor.from_file(args.ckpt, device="cpu")
    pairs, problems = pair_inputs(args.images, args.masks, args.out)
    if problems:
        raise SystemExit(f"unpaired files: {problems}")
    f0 = _faults()
    summary = predict_folder(predictor, pairs, overwrite=True)
    if summary.failures:
        raise SystemExit(f"failures: {summary.failures}")
    Path(args.result).write_text(
        json.dumps(
            {
                "seconds": summary.seconds,
                "faults": _faults() - f0,
                "workers": summary.workers,
                "threads_per_worker": summary.threads_per_worker,
            }
        )
    )


def _child(mode: str, args, out: Path, extra: list[str]) -> dict:
    result = out.parent / f"{out.name}.json"
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    command = [sys.executable, __file__, f"--_{mode}", f"--threads={args.threads}"]
    command += [f"--images={args.data / 'images'}", f"--masks={args.data / 'masks'}"]
    command += [f"--out={out}", f"--result={result}", *extra]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    log = out.parent / f"{out.name}.log"
    with open(log, "w") as handle:
        proc = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    text = log.read_text()
    if proc.returncode != 0 or "loading error" in text:
        raise SystemExit(f"{mode} run failed (see {log}):\n{text[-3000:]}")
    return json.loads(result.read_text())


# ----------------------------------------------------------------------------- measurements
def flop_ceiling() -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from inpaintzoo.nets.edgeconnect import build_edgeconnect_nets

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    nets = build_edgeconnect_nets("full")
    g1, g2 = nets["edge_generator"].eval(), nets["inpaint_generator"].eval()
    x1, x2 = torch.rand(1, 3, 256, 256), torch.rand(1, 4, 256, 256)
    flops = {}
    for name, net, x in (("edge_generator", g1, x1), ("inpaint_generator", g2, x2)):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():  # (inference_mode + parametrized SN trips the counter)
            net(x)
        flops[name] = counter.get_total_flops()
    times = []
    with torch.inference_mode():
        g2(x2)
        for _ in range(5):
            start = time.perf_counter()
            g2(x2)
            times.append(time.perf_counter() - start)
    torch.set_num_threads(previous)
    return {
        "flops_per_image": flops["edge_generator"] + flops["inpaint_generator"],
        "flops": flops,
        "ceiling_flops_per_s": flops["inpaint_generator"] / min(times),
    }


def verify(args, work: Path) -> float:
    """Max |ours - official| over the first ``--verify`` composites, same edges and behaviour."""
    from skimage.color import rgb2gray
    from skimage.feature import canny

    from inpaintzoo.data import image_to_tensor, read_image
    from inpaintzoo.masks import load_mask
    from inpaintzoo.predictor import Predictor

    subset = work / "verify_data"
    shutil.rmtree(subset, ignore_errors=True)
    names = sorted(p.name for p in (args.data / "images").glob("*.png"))[: args.verify]
    for kind in ("images", "masks"):
        (subset / kind).mkdir(parents=True)
        for name in names:
            shutil.copyfile(args.data / kind / name, subset / kind / name)
    sub_args = argparse.Namespace(**{**vars(args), "data": subset})
    _child("official", sub_args, work / "verify_official", [*args.official_args, "--capture"])
    official = torch.load(work / "verify_official" / "composites.pt", weights_only=True)
    predictor = Predictor.from_file(args.ckpt, device="cpu")
    model = predictor.model
    assert model.inference_edges == "raw"
    worst = 0.0
    for k, name in enumerate(names):
        image_np = read_image(subset / "images" / name)
        mask_np = load_mask(subset / "masks" / name, polarity="white_hole")
        valid = mask_np < 0.5
        edges = canny(rgb2gray(image_np), sigma=2, mask=valid).astype(np.float32)
        model.edge_map = lambda gray, mask=None, e=edges: torch.from_numpy(e)[None, None]
        out = predictor(image_to_tensor(image_np)[None], torch.from_numpy(mask_np)[None, None])
        worst = max(worst, float((out["composite"] - official[k : k + 1]).abs().max()))
    return worst


def png_difference(a: Path, b: Path) -> dict:
    from PIL import Image

    diffs = []
    for path in sorted(a.glob("*.png")):
        x = np.asarray(Image.open(path)).astype(np.int16)
        y = np.asarray(Image.open(b / path.name)).astype(np.int16)
        diffs.append(np.abs(x - y))
    stack = np.stack(diffs)
    return {"mean_abs_8bit": float(stack.mean()), "pixels_differing": float((stack > 0).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, help="checkout of knazeri/edge-connect")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--verify", type=int, default=4, help="pairs checked for equality")
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "bench_predict_official")
    # internal: the child processes
    parser.add_argument("--_official", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_ours", action="store_true", help=argparse.SUPPRESS)
    for name in ("images", "masks", "out", "result", "weights", "ckpt"):
        parser.add_argument(f"--{name}", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--capture", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._official:
        return official_child(args)
    if args._ours:
        return ours_child(args)
    if args.official is None or not (args.official / "test.py").is_file():
        parser.error("--official must be a checkout of knazeri/edge-connect (with test.py)")

    from inpaintzoo.official import import_official

    work = args.work.resolve()  # the official child changes directory: absolute paths only
    args.official = args.official.resolve()
    work.mkdir(parents=True, exist_ok=True)
    args.data = work / "data"
    build_data(args.data, args.pairs)
    args.weights = build_weights(work / "weights", args.official)
    args.ckpt = import_official("edgeconnect", args.weights, work / "ours_import").parent
    args.official_args = [f"--official={args.official.resolve()}", f"--weights={args.weights}"]
    ours_args = [f"--ckpt={args.ckpt}"]
    before = flop_ceiling()  # the ceiling is measured before and after the runs; the higher
    runs: dict[str, list[dict]] = {"official": [], "ours": []}
    for repeat in range(args.repeats):
        for side, extra in (("official", args.official_args), ("ours", ours_args)):
            result = _child(side, args, work / f"out_{side}", extra)
            result["images_per_s"] = args.pairs / result["seconds"]
            runs[side].append(result)
            rate, seconds, faults = result["images_per_s"], result["seconds"], result["faults"]
            print(
                f"[{repeat + 1}/{args.repeats}] {side:8s} {rate:.3f} images/s "
                f"({seconds:.1f} s, {faults} page faults)",
                flush=True,
            )
    official_ips = statistics.median(r["images_per_s"] for r in runs["official"])
    ours_ips = statistics.median(r["images_per_s"] for r in runs["ours"])
    after = flop_ceiling()
    ceiling = max(before, after, key=lambda c: c["ceiling_flops_per_s"])
    share = ours_ips * ceiling["flops_per_image"] / (ceiling["ceiling_flops_per_s"] * args.threads)
    official_share = (
        official_ips * ceiling["flops_per_image"] / (ceiling["ceiling_flops_per_s"] * args.threads)
    )
    worst = verify(args, work) if args.verify else None
    summary = {
        "pairs": args.pairs,
        "threads": args.threads,
        "repeats": args.repeats,
        "official_images_per_s": official_ips,
        "ours_images_per_s": ours_ips,
        "ratio": ours_ips / official_ips,
        "ceiling_gflops_per_s_one_thread": ceiling["ceiling_flops_per_s"] / 1e9,
        "gflops_per_image": ceiling["flops_per_image"] / 1e9,
        "ours_share_of_ceiling": share,
        "official_share_of_ceiling": official_share,
        "verify_pairs": args.verify,
        "verify_max_abs_diff": worst,
        "timed_outputs_difference": png_difference(work / "out_official", work / "out_ours"),
        "runs": runs,
    }
    (work / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"\nEdgeConnect folder prediction, {args.pairs} pairs at 256 px, {args.threads} thread(s)"
    )
    print(f"  official test.py : {official_ips:.3f} images/s")
    print(f"  inpaintzoo       : {ours_ips:.3f} images/s")
    print(f"  ratio            : {ours_ips / official_ips:.2f}x (goal >= 1.25x)")
    print(
        f"  FLOP ceiling     : {summary['ceiling_gflops_per_s_one_thread']:.1f} GFLOP/s per thread "
        f"(G2, batch 1); {summary['gflops_per_image']:.1f} GFLOP per image (G1 + G2)"
    )
    print(f"  share of ceiling : ours {share:.1%}, official {official_share:.1%}")
    if worst is not None:
        ok = "ok" if worst <= 1e-5 else "FAILED"
        print(
            f"  equal outputs    : max |diff| {worst:.2e} over {args.verify} pairs ({ok}, <= 1e-5)"
        )
    print(f"  written          : {work / 'results.json'}")


if __name__ == "__main__":
    main()
