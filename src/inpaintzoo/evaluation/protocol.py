"""Evaluation protocols: which images x which masks, deterministic and hashed.

A protocol names a set of held-out images, a mask source, a size and a seed. Sample ``i`` pairs
image ``i % n_images`` (resized on its shorter side and centre-cropped to ``size``) with the mask
drawn from ``np.random.default_rng([seed, i])`` (or mask file ``i % n_masks`` for file masks),
so the pairs are the same on every machine and worker count. The pairs are hashed (image bytes
after cropping, mask bytes) and the hash is recorded in every results file.

Protocols (``conf/protocol/*.yaml``; full definitions in docs/BENCHMARK.md):

* ``smoke``: the held-out embedded scikit-image photos (never seen in training) x seeded
  free-form and DeepFill v2 masks at 64 px; for tests and the demo.
* ``ctsdg``: test images (configured by path, ``protocol.images.root=...``) at 256 px x the NVIDIA
  irregular test masks (white = hole), resized with nearest neighbour and binned 0-20/20-40/40-60 %
  by the hole ratio measured at the protocol size, the layout of the CTSDG paper's tables.
  ``ctsdg_celeba64`` is the same protocol on the CelebA 64 px val crops (``celeba64`` is an alias).
* ``nvidia6`` / ``nvidia6_celeba64``: the same masks in six 10 % bins.
* ``freeform``: seeded DeepFill v2 free-form strokes grown to fixed hole-ratio targets
  (:class:`TargetRatioMasks`).

Every item's hole ratio (measured at ``size``), image file and mask id are recorded in a pairs
manifest (:func:`protocol_manifest`), with three hashes: pairs (image and mask bytes, in order),
images (image bytes after resize/crop) and masks (mask bytes).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


class TargetRatioMasks:
    """Free-form masks at fixed hole-ratio targets (the ``freeform`` protocol).

    Item ``index`` aims at ``targets[index % len(targets)]``: DeepFill v2 brush strokes
    (:func:`~inpaintzoo.masks.free_form_mask`, drawn from ``rng``) are added one mask at a time
    until the hole ratio reaches ``target - tolerance``; a mask that overshoots ``target +
    tolerance`` is discarded and growth restarts. After ``max_tries`` restarts the closest mask
    seen is kept (its real ratio is recorded either way; binning always uses the measured
    ratio). Deterministic for a given ``rng`` seed.

    Args:
        targets: hole-ratio targets in ``(0, 1)``.
        tolerance: accepted distance from the target.
        max_tries: restarts before keeping the closest mask.
        **stroke_params: keyword arguments of ``free_form_mask`` (``brush_width``, ...).

    Returns (call): float32 ``(height, width)`` in ``{0, 1}``.
    """

    def __init__(
        self,
        targets: tuple[float, ...] | list[float] = (0.1, 0.3, 0.5),
        tolerance: float = 0.05,
        max_tries: int = 50,
        **stroke_params: Any,
    ) -> None:
        self.targets = tuple(float(t) for t in targets)
        if not self.targets or not all(0.0 < t < 1.0 for t in self.targets):
            raise ValueError(f"targets must be hole ratios in (0, 1), got {targets!r}")
        if not 0.0 < float(tolerance) < 0.5:
            raise ValueError(f"tolerance must be in (0, 0.5), got {tolerance!r}")
        if int(max_tries) < 1:
            raise ValueError(f"max_tries must be >= 1, got {max_tries!r}")
        self.tolerance = float(tolerance)
        self.max_tries = int(max_tries)
        for key in ("num_strokes", "num_vertex", "brush_width"):
            if isinstance(stroke_params.get(key), list):
                stroke_params[key] = tuple(stroke_params[key])
        self.stroke_params = stroke_params

    def __repr__(self) -> str:
        return f"TargetRatioMasks(targets={self.targets}, tolerance={self.tolerance})"

    def __call__(self, index: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        from inpaintzoo.masks import free_form_mask

        target = self.targets[int(index) % len(self.targets)]
        low, high = target - self.tolerance, target + self.tolerance
        best, best_gap = None, math.inf
        for _ in range(self.max_tries):
            mask = np.zeros((height, width), dtype=np.float32)
            ratio = 0.0
            while ratio < low:
                mask = np.maximum(mask, free_form_mask(height, width, rng, **self.stroke_params))
                ratio = float(mask.mean())
            gap = abs(ratio - target)
            if gap < best_gap:
                best, best_gap = mask, gap
            if ratio <= high:
                return mask
        return best


@dataclass
class PairsManifest:
    """What a protocol evaluates: one record per item and the three hashes.

    ``records[i]``: ``{"index", "name", "image", "mask", "hole_ratio", "bin"}`` (``image`` the
    file name, ``mask`` the mask file name or ``<kind>#<index>`` for generated masks,
    ``hole_ratio`` measured at the protocol size, ``bin`` its label or ``None``).
    """

    records: list[dict[str, Any]]
    pairs_sha256: str
    images_sha256: str
    masks_sha256: str

    def to_csv(self) -> str:
        lines = ["index,name,image,mask,hole_ratio,bin"]
        for r in self.records:
            lines.append(
                f"{r['index']},{r['name']},{r['image']},{r['mask']},{r['hole_ratio']:.6f},"
                f"{r['bin'] or ''}"
            )
        return "\n".join(lines) + "\n"


@dataclass
class EvalProtocol:
    """A fixed evaluation set.

    Args:
        name: protocol name recorded in results (``smoke``, ``celeba64``, ...).
        size: evaluation size (square, pixels).
        images: ``{"source": "embedded", "split": "test"}`` or ``{"source": "folder", "root":
            ...}`` / ``{"source": "flist", "flist": ...}`` (as in the data configs).
        mask: a mask-source spec, e.g. ``{"kind": "free_form"}`` or ``{"kind": "files", "root":
            ..., "polarity": "white_hole"}``.
        num_samples: number of image x mask pairs.
        seed: seed of the pairing.
        bins: hole-ratio bin edges.
        max_images: use only the first this many image files (``None``: all).
    """

    name: str = "smoke"
    size: int = 64
    images: dict[str, Any] = field(default_factory=lambda: {"source": "embedded", "split": "test"})
    mask: dict[str, Any] = field(
        default_factory=lambda: {
            "kind": "mixed",
            "sources": [{"kind": "free_form"}, {"kind": "deepfill_v2"}],
        }
    )
    num_samples: int = 24
    seed: int = 1234
    bins: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6)
    max_images: int | None = None

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> EvalProtocol:
        cfg = dict(cfg)
        if "bins" in cfg:
            cfg["bins"] = tuple(float(b) for b in cfg["bins"])
        return cls(**cfg)

    def image_files(self) -> list[Path]:
        from inpaintzoo.data import embedded_split, list_image_files

        source = self.images.get("source", "embedded")
        if source == "embedded":
            train, test = embedded_split()
            files = test if self.images.get("split", "test") == "test" else train
        elif source == "folder":
            root = self.images.get("root")
            if root in (None, "", "???"):
                raise ValueError(
                    f"protocol {self.name!r} evaluates images from a folder: set it with "
                    f"protocol.images.root=/path/to/test/images"
                )
            files = list_image_files(root=root)
        elif source == "flist":
            files = list_image_files(flist=self.images["flist"])
        else:
            raise ValueError(f"unknown image source {source!r}; use embedded, folder or flist")
        files = list(files)
        if self.max_images:
            files = files[: int(self.max_images)]
        return files

    def dataset(self):
        """The deterministic evaluation dataset (an ``InpaintDataset`` in eval mode)."""
        from inpaintzoo.data import InpaintDataset
        from inpaintzoo.masks import build_mask_source

        mask_spec = dict(self.mask)
        kind = mask_spec.pop("kind")
        every = mask_spec.pop("every", None)
        if kind == "files" and every:
            # a spread of the sorted mask files (the NVIDIA names encode the ratio bin)
            root = Path(mask_spec.pop("root"))
            files = sorted(p for p in root.iterdir() if p.suffix.lower() in {".png", ".jpg"})
            mask_spec["files"] = files[:: int(every)]
        if kind == "target_ratio":
            mask_source = TargetRatioMasks(**mask_spec)
        else:
            mask_source = build_mask_source(kind, **mask_spec)
        return InpaintDataset(
            self.image_files(),
            mask_source,
            size=self.size,
            mode="eval",
            seed=self.seed,
            samples_per_epoch=self.num_samples,
            # the few embedded photos are decoded once (pre-shrunk) instead of once per item
            cache=self.images.get("source", "embedded") == "embedded",
        )

    def mask_id(self, dataset, index: int) -> str:
        """The mask of item ``index``: its file name, or ``<kind>#<index>`` when generated."""
        files = getattr(dataset.mask_source, "files", None)
        if files and not getattr(dataset.mask_source, "augment", False):
            return Path(files[index % len(files)]).name
        return f"{self.mask.get('kind', 'mask')}#{index}"

    def hole_bins(self):
        from inpaintzoo.masks import HoleRatioBins

        return HoleRatioBins(self.bins)

    def describe(
        self, pairs_sha256: str | None = None, manifest: PairsManifest | None = None
    ) -> dict[str, Any]:
        """The ``protocol`` block of a results file (hashes from ``manifest`` when given)."""
        info = asdict(self)
        info["bins"] = self.hole_bins().labels
        info["bin_edges"] = list(self.bins)
        info["metrics_on"] = "composite"
        info["hole_ratio_measured_at"] = f"{self.size} px"
        info["pairing"] = (
            "item i: image i % n_images (shorter side resized to size, centre crop); mask: "
            + (
                "file i % m of the sorted mask files[::every] (m of them), binarised, "
                "nearest-neighbour resize to size"
                if self.mask.get("kind") == "files"
                else "drawn with numpy default_rng([seed, i])"
            )
        )
        if manifest is not None:
            pairs_sha256 = manifest.pairs_sha256
            info["images_sha256"] = manifest.images_sha256
            info["masks_sha256"] = manifest.masks_sha256
            counts = {label: 0 for label in info["bins"]}
            for record in manifest.records:
                if record["bin"] in counts:
                    counts[record["bin"]] += 1
            info["bin_counts"] = counts
        if pairs_sha256:
            info["pairs_sha256"] = pairs_sha256
        return info


def pairs_hash(dataset, batch_size: int = 32) -> str:
    """SHA-256 over every (name, image bytes, mask bytes) pair, in order (equals
    ``protocol_manifest(...).pairs_sha256``). ``batch_size`` is unused; items are read one by
    one."""
    digest = hashlib.sha256()
    for i in range(len(dataset)):
        item = dataset[i]
        _update_pair(digest, item, i)
    return digest.hexdigest()


def _update_pair(digest, item: dict, index: int) -> tuple[bytes, bytes]:
    image = (item["image"].numpy() * 255).round().astype(np.uint8).tobytes()
    mask = item["mask"].numpy().astype(np.uint8).tobytes()
    digest.update(str(item.get("name", index)).encode())
    digest.update(image)
    digest.update(mask)
    return image, mask


def protocol_manifest(protocol: EvalProtocol, dataset=None) -> PairsManifest:
    """Every item's image, mask and hole ratio (at the protocol size) and the three hashes.

    ``pairs_sha256`` equals :func:`pairs_hash`; ``images_sha256`` hashes the image bytes after
    resize/crop, ``masks_sha256`` the mask bytes, both in item order.
    """
    dataset = dataset if dataset is not None else protocol.dataset()
    bins = protocol.hole_bins()
    pairs, images, masks = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    records = []
    for i in range(len(dataset)):
        item = dataset[i]
        image_bytes, mask_bytes = _update_pair(pairs, item, i)
        images.update(image_bytes)
        masks.update(mask_bytes)
        ratio = float((item["mask"] > 0.5).float().mean())
        index = bins.index(ratio)
        records.append(
            {
                "index": i,
                "name": str(item.get("name", i)),
                "image": dataset.files[i % len(dataset.files)].name,
                "mask": protocol.mask_id(dataset, i),
                "hole_ratio": ratio,
                "bin": bins.label(index) if index >= 0 else None,
            }
        )
    return PairsManifest(records, pairs.hexdigest(), images.hexdigest(), masks.hexdigest())


def collate(items: list[dict]) -> dict:
    """Batch dataset items: tensors stacked, anything else (names, indices) as lists."""
    out: dict[str, Any] = {}
    for key in items[0]:
        values = [it[key] for it in items]
        out[key] = torch.stack(values) if torch.is_tensor(values[0]) else values
    return out
