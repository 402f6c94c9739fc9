"""The one inference path: any H x W in, composite out.

Used by the evaluation runner, ``inpaintzoo-predict`` and any app. For a learned method it

1. checks the image/mask pair (conventions: image (B,3,H,W) in [0,1], mask (B,1,H,W) 1 = hole);
2. **large images** (``max_side``): when the longer side exceeds ``max_side`` the image and mask
   are resized down (area / nearest), inpainted, and the output is resized back up (bicubic) and
   pasted into the hole of the full-resolution image: known pixels stay untouched at full
   resolution (the resize-and-paste-back strategy of inference apps);
3. **small images**: below the method's ``min_size`` the input is resized up and the output back
   down (bilinear image / nearest mask);
4. **odd sizes**: pads H and W up to the method's ``size_multiple`` (reflect padding; replicate
   where a side is too short to reflect), marks the padding as known, runs, crops back;
5. returns ``composite = output * mask + image * (1 - mask)``.

Classical baselines (callables that return the composite) go through the same checks.

Folders: :func:`pair_inputs` pairs image and mask files (by relative file name, or from a pairs
CSV) and :func:`predict_folder` runs a predictor over them with decoding and PNG encoding in
background threads, same-size inputs batched, several images computed in parallel on the CPU,
existing outputs skipped (resume) and a one-line error for any unpaired or unreadable file while
the rest go on.
"""

from __future__ import annotations

import csv
import ctypes
import logging
import math
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from inpaintzoo.conventions import check_pair, composite

__all__ = [
    "IMAGE_SUFFIXES",
    "FolderSummary",
    "PredictPair",
    "Predictor",
    "pad_to_multiple",
    "pair_inputs",
    "keep_freed_memory",
    "predict_folder",
    "resolve_checkpoint",
]

log = logging.getLogger(__name__)

#: image files the folder mode picks up (case-insensitive)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

#: the checkpoint inside an ``inpaintzoo-import`` output folder
IMPORT_CHECKPOINT = "model.ckpt"


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file for ``path``: the path itself, or ``model.ckpt`` inside a folder written
    by ``inpaintzoo-import``."""
    path = Path(path)
    if path.is_dir() and (path / IMPORT_CHECKPOINT).is_file():
        return path / IMPORT_CHECKPOINT
    return path


def pad_to_multiple(x: torch.Tensor, multiple: int, value_mode: str = "reflect") -> torch.Tensor:
    """Pad the bottom/right of ``x`` (B,C,H,W) so H and W are multiples of ``multiple``.

    ``reflect`` falls back to ``replicate`` where a side is too short to reflect.
    """
    h, w = x.shape[-2:]
    ph = (-h) % multiple
    pw = (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = value_mode
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    if mode == "constant":
        return F.pad(x, (0, pw, 0, ph), mode="constant", value=0.0)
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class Predictor:
    """Wrap a method for inference on any image size.

    Args:
        model: an :class:`~inpaintzoo.methods.base.InpaintingModule` or a classical inpainter.
        device: where to run (default: the model's device, or CUDA when available).
        max_side: resize-and-paste-back above this longer side (``None``: never).
    """

    def __init__(
        self, model, device: str | torch.device | None = None, max_side: int | None = None
    ):
        self.model = model
        self.learned = isinstance(model, torch.nn.Module) and hasattr(model, "inpaint_raw")
        if device is None:
            device = "cuda" if torch.cuda.is_available() and self.learned else "cpu"
        self.device = torch.device(device)
        if self.learned:
            self.model.to(self.device).eval()
        self.size_multiple = int(getattr(model, "size_multiple", 1))
        self.min_size = int(getattr(model, "min_size", 1))
        self.max_side = max_side
        #: where the weights come from, e.g. ``official weights (<sha256>)`` (None: unknown)
        self.weights_source: str | None = getattr(model, "weights_source", None)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        expected: str | None = None,
        device: str | torch.device | None = None,
        max_side: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Predictor:
        """A Lightning checkpoint (or an ``inpaintzoo-import`` folder); ``options`` override the
        method's stored inference options (e.g. ``{"postprocess": "telea_poisson"}`` for GLCIC),
        checked like training options."""
        from inpaintzoo.official.api import read_weights_source
        from inpaintzoo.zoo import load_checkpoint

        path = resolve_checkpoint(path)
        model = load_checkpoint(path, expected=expected, **dict(options or {}))
        predictor = cls(model, device=device, max_side=max_side)
        predictor.weights_source = predictor.weights_source or read_weights_source(path)
        return predictor

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        expected: str | None = None,
        device: str | torch.device | None = None,
        max_side: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Predictor:
        """Any trained artefact: a Lightning ``.ckpt`` (or an ``inpaintzoo-import`` folder holding
        ``model.ckpt``), a ``.safetensors`` weights export, or an ONNX export (its folder, its
        manifest or one of its ``.onnx`` files; the networks run in onnxruntime, the method's
        glue in PyTorch). ``options``: see :meth:`from_checkpoint` (checkpoints only)."""
        from inpaintzoo.export import MANIFEST, load_onnx, load_safetensors

        path = resolve_checkpoint(path)
        exported = (
            path.is_dir() or path.suffix in (".onnx", ".safetensors") or path.name == MANIFEST
        )
        if options and exported:
            raise ValueError(
                f"model options ({', '.join(options)}) apply to checkpoints, not to the export "
                f"{path}: give the .ckpt"
            )
        if path.is_dir() or path.suffix == ".onnx" or path.name == MANIFEST:
            model = load_onnx(path, expected=expected)
        elif path.suffix == ".safetensors":
            model = load_safetensors(path, expected=expected)
        else:
            return cls.from_checkpoint(
                path, expected=expected, device=device, max_side=max_side, options=options
            )
        return cls(model, device=device, max_side=max_side)

    @property
    def name(self) -> str:
        return getattr(self.model, "method_name", None) or getattr(self.model, "name", "model")

    @property
    def label(self) -> str | None:
        """``"<method>, official weights (<sha256>)"`` when the weights' source is known (the
        leaderboard's row label), else None."""
        return f"{self.name}, {self.weights_source}" if self.weights_source else None

    # ------------------------------------------------------------------ core
    @torch.no_grad()
    def __call__(self, image: torch.Tensor, mask: torch.Tensor, **extras: Any) -> dict:
        """Inpaint; returns ``{"composite": ..., "output": ..., **method extras}`` on the input's
        device, at the input's size. Extra (B,1,H,W) maps (e.g. ``edge_sketch``) follow the
        mask's resizing and padding."""
        check_pair(image, mask)
        in_device = image.device
        image = image.to(self.device, torch.float32)
        mask = mask.to(self.device, torch.float32)
        extras = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in extras.items()}
        h, w = image.shape[-2:]
        if self.max_side and max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            small = self._run_resized(image, mask, extras, size, down=True)
            out = F.interpolate(small["output"], size=(h, w), mode="bicubic", align_corners=False)
            result = {"output": out.clamp(0, 1)}
        else:
            result = self._run_any_size(image, mask, extras)
        result["composite"] = composite(result["output"], image, mask)
        return {k: v.to(in_device) if torch.is_tensor(v) else v for k, v in result.items()}

    def _run_resized(self, image, mask, extras, size, down: bool) -> dict:
        mode = "area" if down else "bilinear"
        kw = {} if mode == "area" else {"align_corners": False}
        img = F.interpolate(image, size=size, mode=mode, **kw).clamp(0, 1)
        # nearest would drop thin holes when shrinking: a hole pixel stays a hole (max pool-like)
        msk = (F.interpolate(mask, size=size, mode="area" if down else "nearest") > 0).float()
        ext = {
            k: (F.interpolate(v.float(), size=size, mode="nearest") if _is_map(v, mask) else v)
            for k, v in extras.items()
        }
        return self._run_any_size(img, msk, ext)

    def _run_any_size(self, image, mask, extras) -> dict:
        h, w = image.shape[-2:]
        if min(h, w) < self.min_size:
            scale = self.min_size / min(h, w)
            size = (math.ceil(h * scale), math.ceil(w * scale))
            up = self._run_resized(image, mask, extras, size, down=False)
            out = F.interpolate(up["output"], size=(h, w), mode="bilinear", align_corners=False)
            return {"output": out.clamp(0, 1)}
        if not self.learned:
            return {"output": self.model(image, mask)}
        m = self.size_multiple
        img = pad_to_multiple(image, m)
        msk = pad_to_multiple(mask, m, value_mode="constant")  # padding is known context
        ext = {
            k: (pad_to_multiple(v.float(), m, "constant") if _is_map(v, mask) else v)
            for k, v in extras.items()
        }
        out = self.model.inpaint(img, msk, **ext)
        return {
            k: v[..., :h, :w] if torch.is_tensor(v) and v.ndim == 4 else v
            for k, v in out.items()
            if k != "composite"
        }


def _is_map(value: Any, mask: torch.Tensor) -> bool:
    return torch.is_tensor(value) and value.ndim == 4 and value.shape[-2:] == mask.shape[-2:]


# ----------------------------------------------------------------------------- folders
@dataclass(frozen=True)
class PredictPair:
    """One image, its mask and where its result goes."""

    image: Path
    mask: Path
    out: Path


@dataclass
class FolderSummary:
    """What :func:`predict_folder` did: counts, failures (``(file, message)``) and speed."""

    done: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    batches: int = 0
    workers: int = 1
    threads_per_worker: int = 1

    @property
    def images_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        text = (
            f"{self.done} inpainted, {self.skipped} skipped (output exists), "
            f"{len(self.failures)} failed, {self.seconds:.1f} s"
        )
        if self.done:
            text += f" ({self.images_per_second:.2f} images/s)"
        return text


def _is_image(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if _is_image(p))


def pair_inputs(
    image: str | Path,
    mask: str | Path | None,
    out: str | Path,
    pairs: str | Path | None = None,
    out_ext: str = ".png",
) -> tuple[list[PredictPair], list[tuple[str, str]]]:
    """Pair images with masks for folder prediction.

    * ``pairs`` (a CSV with a header and columns ``image,mask`` and optionally ``out``; relative
      paths are relative to the CSV's folder): one pair per row, outputs ``out/<image stem>``
      unless the row names one;
    * ``image`` a folder and ``mask`` a folder: every image file under ``image`` (recursively)
      with the mask of the same relative path and file name up to the suffix
      (``photos/a/001.jpg`` <-> ``masks/a/001.png``); outputs mirror the image tree;
    * ``image`` a folder and ``mask`` one file: that mask for every image.

    Returns ``(pairs, problems)``: ``problems`` lists ``(file, message)`` for images without a
    mask (or with two candidates); masks without an image are logged, not errors.
    """
    out = Path(out)
    ext = out_ext if out_ext.startswith(".") else f".{out_ext}"
    problems: list[tuple[str, str]] = []
    found: list[PredictPair] = []
    if pairs is not None:
        table = Path(pairs)
        if not table.is_file():
            raise FileNotFoundError(f"pairs file not found: {table}")
        with open(table, newline="") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip().lower() for c in (reader.fieldnames or [])]
            if "image" not in columns or "mask" not in columns:
                raise ValueError(
                    f"{table}: a pairs CSV needs a header with columns 'image' and 'mask' "
                    f"(optionally 'out'); found {reader.fieldnames}"
                )
            for number, row in enumerate(reader, start=2):
                row = {str(k).strip().lower(): (v or "").strip() for k, v in row.items()}
                if not row.get("image") or not row.get("mask"):
                    problems.append((f"{table}:{number}", "row without an image or a mask"))
                    continue
                img, msk = (Path(row[k]) for k in ("image", "mask"))
                img = img if img.is_absolute() else table.parent / img
                msk = msk if msk.is_absolute() else table.parent / msk
                target = Path(row["out"]) if row.get("out") else Path(img.stem + ext)
                found.append(
                    PredictPair(img, msk, target if target.is_absolute() else out / target)
                )
    else:
        root = Path(image)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder not found: {root}")
        images = _images_under(root)
        if not images:
            raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {root}")
        if mask is None:
            raise ValueError("folder prediction needs mask= (a mask folder or one mask file)")
        mask_path = Path(mask)
        if mask_path.is_file():
            found = [
                PredictPair(p, mask_path, out / p.relative_to(root).with_suffix(ext))
                for p in images
            ]
        elif mask_path.is_dir():
            by_stem: dict[Path, list[Path]] = {}
            for m in _images_under(mask_path):
                by_stem.setdefault(m.relative_to(mask_path).with_suffix(""), []).append(m)
            used: set[Path] = set()
            for p in images:
                rel = p.relative_to(root).with_suffix("")
                candidates = by_stem.get(rel, [])
                if len(candidates) == 1:
                    found.append(PredictPair(p, candidates[0], out / rel.with_suffix(ext)))
                    used.add(rel)
                elif not candidates:
                    problems.append((str(p), f"no mask named {rel}.* in {mask_path}"))
                else:
                    names = ", ".join(c.name for c in candidates)
                    problems.append((str(p), f"several masks match it: {names}"))
                    used.add(rel)
            orphans = len(set(by_stem) - used)
            if orphans:
                log.warning("%d mask file(s) in %s have no image of the same name", orphans, mask)
        else:
            raise FileNotFoundError(f"mask folder or file not found: {mask_path}")
    seen: dict[Path, Path] = {}
    unique = []
    for pair in found:
        if pair.out in seen:
            problems.append((str(pair.image), f"its output {pair.out} is also {seen[pair.out]}'s"))
            continue
        seen[pair.out] = pair.image
        unique.append(pair)
    return unique, problems


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse in this process (no ``mmap`` for large blocks,
    no trimming of the heap). Each image's activations are then reused by the next one instead
    of going back to the operating system and being page-faulted in again: about 64,000 page
    faults (and a zero-fill of ~250 MB) per 256 px EdgeConnect image otherwise. The process keeps
    its peak memory until it exits. Linux / glibc only; returns whether it applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc <malloc.h>
    applied = libc.mallopt(m_mmap_threshold, 1 << 30) or libc.mallopt(m_mmap_threshold, 32 << 20)
    libc.mallopt(m_trim_threshold, 1 << 30)
    return bool(applied)


def _encode_png(tensor: torch.Tensor, path: Path) -> None:
    import io

    import numpy as np
    from PIL import Image

    from inpaintzoo.utils.io import atomic_write_bytes

    array = tensor.detach().float().clamp(0, 1).mul(255.0).add_(0.5).to(torch.uint8)
    array = array.permute(1, 2, 0).cpu().numpy()
    if array.shape[2] == 1:
        array = array[..., 0]
    buffer = io.BytesIO()
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format=fmt)
    atomic_write_bytes(path, buffer.getvalue())


def predict_folder(
    predictor: Predictor,
    pairs: Sequence[PredictPair],
    *,
    batch_size: int | None = None,
    workers: int | None = None,
    mask_polarity: str = "auto",
    mask_threshold: float = 0.5,
    overwrite: bool = False,
    progress: bool = False,
    edges_dir: str | Path | None = None,
    io_threads: int = 2,
    reuse_memory: bool = True,
    on_failure: Callable[[str, str], None] | None = None,
) -> FolderSummary:
    """Inpaint every pair; returns a :class:`FolderSummary`.

    * existing outputs are skipped unless ``overwrite`` (a killed run resumes; outputs are
      written atomically, so a half-written file never counts as done);
    * images and masks are decoded by ``io_threads`` background threads and results encoded
      by another, overlapping the computation;
    * same-size inputs are batched (``batch_size``: default 1 on the CPU, where a single image
      per worker runs fastest, 8 on a GPU); mixed sizes form separate batches;
    * on the CPU, ``workers`` images are computed in parallel (default: one per torch thread),
      each worker with ``torch.get_num_threads() // workers`` intra-op threads: whole images in
      parallel scale better than one image split over threads;
    * on the CPU, freed activation memory stays in the process for the next image
      (``reuse_memory``, :func:`keep_freed_memory`);
    * an unreadable image or mask, a mask of another size, or a failing batch is reported
      (``on_failure(file, message)``; logged as one line) and the rest go on.
    """
    from inpaintzoo.data import image_to_tensor, read_image
    from inpaintzoo.masks import load_mask

    start = time.perf_counter()
    summary = FolderSummary()
    todo = []
    for pair in pairs:
        if not overwrite and pair.out.is_file():
            summary.skipped += 1
        else:
            todo.append(pair)
    lock = threading.Lock()

    def fail(file: str, message: str) -> None:
        with lock:
            summary.failures.append((file, message))
        log.error("%s: %s", file, message)
        if on_failure is not None:
            on_failure(file, message)

    cpu = predictor.device.type == "cpu"
    if cpu and reuse_memory and todo:
        keep_freed_memory()
    batch_size = int(batch_size or (1 if cpu else 8))
    total_threads = torch.get_num_threads()
    n_workers = int(workers or (total_threads if cpu else 1))
    n_workers = max(1, min(n_workers, max(1, len(todo))))
    per_worker = max(1, total_threads // n_workers) if cpu else total_threads
    summary.workers, summary.threads_per_worker = n_workers, per_worker
    bar = _progress(progress, len(todo))
    edges_dir = Path(edges_dir) if edges_dir else None

    def decode(pair: PredictPair):
        image_np = read_image(pair.image)
        mask_np = load_mask(pair.mask, polarity=mask_polarity, threshold=float(mask_threshold))
        h, w = image_np.shape[:2]
        if mask_np.shape != (h, w):
            raise ValueError(
                f"mask {pair.mask} is {mask_np.shape[1]}x{mask_np.shape[0]} but the image is "
                f"{w}x{h}: they must have the same size"
            )
        return image_to_tensor(image_np), torch.from_numpy(mask_np)[None].float()

    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inpaintzoo-write")

    def write(pair: PredictPair, result: torch.Tensor, edge: torch.Tensor | None) -> None:
        try:
            _encode_png(result, pair.out)
            if edge is not None and edges_dir is not None:
                _encode_png(1.0 - edge, edges_dir / pair.out.name)
            with lock:
                summary.done += 1
        except Exception as err:  # noqa: BLE001 - one failure must not stop the run
            fail(str(pair.out), f"cannot write the result ({err})")
        finally:
            if bar is not None:
                bar.advance()

    batches: queue.Queue = queue.Queue(maxsize=2 * n_workers)

    def compute() -> None:
        torch.set_num_threads(per_worker)
        while True:
            item = batches.get()
            if item is None:
                return
            batch_pairs, images, masks = item
            try:
                with torch.inference_mode():
                    out = predictor(torch.stack(images), torch.stack(masks))
                comp = out["composite"].cpu()
                edges = out.get("edge") if edges_dir is not None else None
                for i, pair in enumerate(batch_pairs):
                    edge = edges[i].cpu() if torch.is_tensor(edges) else None
                    writer.submit(write, pair, comp[i], edge)
            except Exception as err:  # noqa: BLE001
                for pair in batch_pairs:
                    fail(str(pair.image), f"inpainting failed ({type(err).__name__}: {err})")
                    if bar is not None:
                        bar.advance()
            with lock:
                summary.batches += 1

    threads = [
        threading.Thread(target=compute, name=f"inpaintzoo-compute-{i}", daemon=True)
        for i in range(n_workers)
    ]
    previous_threads = torch.get_num_threads()
    try:
        for thread in threads:
            thread.start()
        buckets: dict[tuple[int, int], list] = {}
        lookahead = max(4, 2 * batch_size * n_workers)
        with ThreadPoolExecutor(
            max_workers=io_threads, thread_name_prefix="inpaintzoo-read"
        ) as pool:
            futures: list[tuple[PredictPair, Future]] = []
            index = 0
            while index < len(todo) or futures:
                while index < len(todo) and len(futures) < lookahead:
                    futures.append((todo[index], pool.submit(decode, todo[index])))
                    index += 1
                pair, future = futures.pop(0)
                try:
                    image, mask = future.result()
                except Exception as err:  # noqa: BLE001 - unreadable file: report, go on
                    message = " ".join(str(err).split()) or type(err).__name__
                    fail(str(pair.image), message)
                    if bar is not None:
                        bar.advance()
                    continue
                bucket = buckets.setdefault(tuple(image.shape[-2:]), [])
                bucket.append((pair, image, mask))
                if len(bucket) >= batch_size:
                    batches.put(_as_batch(buckets.pop(tuple(image.shape[-2:]))))
                buffered = sum(len(b) for b in buckets.values())
                if buffered > 4 * batch_size * n_workers:  # many sizes: flush the fullest
                    fullest = max(buckets, key=lambda k: len(buckets[k]))
                    batches.put(_as_batch(buckets.pop(fullest)))
            for key in list(buckets):
                batches.put(_as_batch(buckets.pop(key)))
        for _ in threads:
            batches.put(None)
        for thread in threads:
            thread.join()
        writer.shutdown(wait=True)
    finally:
        torch.set_num_threads(previous_threads)
        if bar is not None:
            bar.close()
    summary.seconds = time.perf_counter() - start
    return summary


def _as_batch(items: list) -> tuple[list[PredictPair], list[torch.Tensor], list[torch.Tensor]]:
    return [i[0] for i in items], [i[1] for i in items], [i[2] for i in items]


class _Bar:
    """A thread-safe rich progress bar (images done / total, rate, time left)."""

    def __init__(self, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("inpainting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        self.task = self.progress.add_task("inpainting", total=total)
        self.progress.start()

    def advance(self) -> None:
        self.progress.advance(self.task)

    def close(self) -> None:
        self.progress.stop()


def _progress(enabled: bool, total: int) -> _Bar | None:
    return _Bar(total) if enabled and total else None
