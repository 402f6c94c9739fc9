"""Evaluation protocols: which images x which masks, deterministic and hashed.

A protocol names a set of held-out images, a mask source, a size and a seed. Sample ``i`` pairs
image ``i % n_images`` (resized on its shorter side and centre-cropped to ``size``) with the mask
drawn from ``np.random.default_rng([seed, i])`` (or mask file ``i % n_masks`` for file masks),
so the pairs are the same on every machine and worker count. The pairs are hashed (image bytes
after cropping, mask bytes) and the hash is recorded in every results file.

Protocols here:

* ``smoke``: the held-out embedded scikit-image photos (never seen in training) x seeded
  free-form and DeepFill v2 masks at 64 px; for tests and the demo.
* ``celeba64``: the first N CelebA val crops x the NVIDIA irregular test masks (white = hole),
  resized to 64 px with nearest neighbour and binned by the hole ratio measured at 64 px.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


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
            files = list_image_files(root=self.images["root"])
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
        mask_source = build_mask_source(kind, **mask_spec)
        return InpaintDataset(
            self.image_files(),
            mask_source,
            size=self.size,
            mode="eval",
            seed=self.seed,
            samples_per_epoch=self.num_samples,
        )

    def hole_bins(self):
        from inpaintzoo.masks import HoleRatioBins

        return HoleRatioBins(self.bins)

    def describe(self, pairs_sha256: str | None = None) -> dict[str, Any]:
        info = asdict(self)
        info["bins"] = self.hole_bins().labels
        info["bin_edges"] = list(self.bins)
        info["metrics_on"] = "composite"
        info["hole_ratio_measured_at"] = f"{self.size} px"
        if pairs_sha256:
            info["pairs_sha256"] = pairs_sha256
        return info


def pairs_hash(dataset, batch_size: int = 32) -> str:
    """SHA-256 over every (name, image bytes, mask bytes) pair, in order."""
    digest = hashlib.sha256()
    for i in range(len(dataset)):
        item = dataset[i]
        digest.update(str(item.get("name", i)).encode())
        digest.update((item["image"].numpy() * 255).round().astype(np.uint8).tobytes())
        digest.update(item["mask"].numpy().astype(np.uint8).tobytes())
    return digest.hexdigest()


def collate(items: list[dict]) -> dict:
    out: dict[str, Any] = {}
    for key in items[0]:
        values = [it[key] for it in items]
        out[key] = torch.stack(values) if torch.is_tensor(values[0]) else values
    return out
