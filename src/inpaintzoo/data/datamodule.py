"""``InpaintDataModule``: train / val / test :class:`~inpaintzoo.data.InpaintDataset` loaders
built from plain split specs (dicts), so Hydra configs can describe them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from inpaintzoo.data.datasets import InpaintDataset, list_image_files
from inpaintzoo.data.samples import DEFAULT_HOLDOUT, embedded_split
from inpaintzoo.masks import build_mask_source

__all__ = ["SPLIT_KEYS", "InpaintDataModule", "UnpaddedDistributedSampler", "build_dataset"]

#: Keys a split spec may have (anything else is an error, to catch config typos).
SPLIT_KEYS = (
    "source",
    "root",
    "flist",
    "split",
    "holdout",
    "size",
    "mask",
    "samples_per_epoch",
    "max_samples",
    "resize",
    "scale",
    "crop",
    "flip",
    "mode",
    "cache",
)


def _plain(value: Any) -> Any:
    """OmegaConf containers -> plain Python (without making omegaconf a hard import)."""
    if type(value).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    return value


class UnpaddedDistributedSampler(DistributedSampler):
    """Evaluation sampler for DDP that never repeats a sample.

    ``torch.utils.data.DistributedSampler`` pads the index list to a multiple of the world size
    by repeating samples, so metrics over a test set of 5 images on 2 processes would count one
    image twice. Here rank ``r`` of ``w`` gets ``r, r + w, r + 2w, ...``: ranks may differ by one
    sample (torchmetrics states sync fine over uneven ranks; nothing is averaged per rank).
    A ``DistributedSampler`` subclass, so Lightning keeps it instead of injecting its own.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.length = len(dataset)  # type: ignore[arg-type]

    def __iter__(self):
        return iter(range(self.rank, self.length, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.num_replicas))


def _distributed_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def _mask_source(spec: Any, training: bool) -> Any:
    spec = _plain(spec)
    if spec is None:
        spec = {"kind": "free_form"}
    if isinstance(spec, str):
        spec = {"kind": spec}
    if isinstance(spec, Mapping):
        spec = dict(spec)
        if "kind" not in spec:
            raise ValueError(f"a mask spec needs a 'kind', got {spec}")
        if spec["kind"] == "files" and "augment" not in spec:
            spec["augment"] = training  # random pick + augmentation for training masks
        return build_mask_source(**spec)
    if not callable(spec):
        raise TypeError(f"mask must be a mask source or a dict with 'kind', got {spec!r}")
    return spec


def build_dataset(
    spec: Mapping[str, Any], split_name: str, seed: int = 0, default_mask: Any = None
) -> InpaintDataset:
    """Build one split's dataset from its spec (see :class:`InpaintDataModule`)."""
    spec = dict(_plain(spec))
    unknown = sorted(set(spec) - set(SPLIT_KEYS))
    if unknown:
        raise ValueError(
            f"{split_name} spec: unknown key(s) {unknown}; allowed: {', '.join(SPLIT_KEYS)}"
        )
    source = spec.get("source", "folder")
    mode = spec.get("mode") or ("train" if split_name == "train" else "eval")
    if source == "embedded":
        default_split = "train" if split_name == "train" else "test"
        which = spec.get("split", default_split)
        if which not in ("train", "test"):
            raise ValueError(f"{split_name} spec: embedded split must be train|test, got {which!r}")
        train_files, test_files = embedded_split(spec.get("holdout", DEFAULT_HOLDOUT))
        files = train_files if which == "train" else test_files
        spec.setdefault("cache", True)
    elif source == "folder":
        if spec.get("root") is None:
            raise ValueError(f"{split_name} spec: source=folder needs 'root'")
        files = list_image_files(root=spec["root"])
    elif source == "flist":
        if spec.get("flist") is None:
            raise ValueError(f"{split_name} spec: source=flist needs 'flist'")
        files = list_image_files(root=spec.get("root"), flist=spec["flist"])
    else:
        raise ValueError(
            f"{split_name} spec: unknown source {source!r}; choose embedded, folder or flist"
        )
    max_samples = spec.get("max_samples")
    if max_samples is not None:
        files = files[: int(max_samples)]
    mask = spec.get("mask", default_mask)
    return InpaintDataset(
        files,
        mask_source=_mask_source(mask, training=mode == "train"),
        size=spec.get("size", 64),
        mode=mode,
        seed=seed,
        resize=spec.get("resize", True),
        crop=spec.get("crop"),
        flip=spec.get("flip", True),
        samples_per_epoch=spec.get("samples_per_epoch"),
        scale=tuple(spec.get("scale", (1.0, 1.0))),
        cache=spec.get("cache", False),
    )


class InpaintDataModule(pl.LightningDataModule):
    """Train / val / test loaders of image + mask batches.

    Batches are dicts: ``image`` float ``(B, 3, H, W)`` in ``[0, 1]``, ``mask`` float
    ``(B, 1, H, W)`` in ``{0, 1}`` (1 = hole), ``name`` list of str, ``index`` ``(B,)`` int.

    Args:
        train, val, test: split specs (``None`` = no such split). A spec is a dict with:

            * ``source``: ``"embedded"`` (scikit-image's photos, split by image),
              ``"folder"`` (``root``, searched recursively) or ``"flist"`` (``flist``, one
              path per line, relative to ``root`` or to the flist's folder). Default folder.
            * ``split``: embedded only, ``"train"`` or ``"test"`` (default: train for the
              train split, test otherwise); ``holdout``: the held-out embedded stems.
            * ``size``: crop size, int or ``[H, W]`` (default 64).
            * ``mask``: a mask source object, or a dict for
              :func:`~inpaintzoo.masks.build_mask_source` (``{kind: free_form}``,
              ``{kind: files, root: ..., polarity: white_hole}``, ...), or a kind string.
              Default: the module's ``mask`` / ``eval_mask``, else free-form strokes. For
              ``kind: files`` in the train split, ``augment`` defaults to True.
            * ``samples_per_epoch``: dataset length (many crops of few images, or many masks
              per evaluation image); ``max_samples``: keep only the first N files (sorted).
            * ``resize`` (True), ``scale`` ([1, 1], random zoom for training), ``crop``,
              ``flip`` (True), ``mode`` (train for the train split, eval otherwise),
              ``cache`` (keep decoded images; default True for embedded).
        batch_size: training batch size.
        eval_batch_size: val/test batch size (default ``batch_size``).
        num_workers: DataLoader workers for every split.
        pin_memory: pin host memory (helps GPU transfer).
        persistent_workers: keep workers alive between epochs (only with ``num_workers > 0``).
        seed: evaluation mask seed: item ``i`` of val/test gets its mask from
            ``default_rng([seed, i])``. Training randomness follows torch's RNG (use
            ``seed_everything``).
        mask: default mask spec for the train split (and for val/test if ``eval_mask`` is None).
        eval_mask: default mask spec for val/test.

    The train loader shuffles and drops the last incomplete batch; val/test do neither. Under
    DDP the train loader gets Lightning's ``DistributedSampler``; val/test get an
    :class:`UnpaddedDistributedSampler`, so every evaluation sample is counted exactly once.

    Example, CelebA 64x64 beside the checkout (``../shared/data``), free-form training masks
    and the NVIDIA irregular masks (white = hole) for validation and test::

        dm = InpaintDataModule(
            train={"source": "folder", "root": "../shared/data/celeba64/train", "size": 64,
                   "mask": {"kind": "free_form"}},
            val={"source": "folder", "root": "../shared/data/celeba64/val", "size": 64,
                 "max_samples": 256,
                 "mask": {"kind": "files", "root": "../shared/data/nvidia_masks",
                          "polarity": "white_hole"}},
            test={"source": "folder", "root": "../shared/data/celeba64/val", "size": 64,
                  "mask": {"kind": "files", "root": "../shared/data/nvidia_masks",
                           "polarity": "white_hole"}},
            batch_size=16,
        )

    (For NVIDIA masks in training use ``{"kind": "files", ..., "augment": True}``: random
    pick, flips, rotation, dilation and crop.) Hydra: the same dicts as YAML, with
    ``_target_: inpaintzoo.data.InpaintDataModule``.
    """

    def __init__(
        self,
        train: Mapping[str, Any] | None = None,
        val: Mapping[str, Any] | None = None,
        test: Mapping[str, Any] | None = None,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        seed: int = 0,
        mask: Any = None,
        eval_mask: Any = None,
    ) -> None:
        super().__init__()
        self.specs = {
            "train": None if train is None else dict(_plain(train)),
            "val": None if val is None else dict(_plain(val)),
            "test": None if test is None else dict(_plain(test)),
        }
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.persistent_workers = bool(persistent_workers) and self.num_workers > 0
        self.seed = int(seed)
        self.mask = _plain(mask)
        self.eval_mask = _plain(eval_mask) if eval_mask is not None else self.mask
        self.datasets: dict[str, InpaintDataset] = {}

    @classmethod
    def embedded(
        cls,
        size: int = 64,
        batch_size: int = 8,
        mask: Any = None,
        eval_mask: Any = None,
        train_samples_per_epoch: int = 256,
        num_test: int = 16,
        holdout: tuple[str, ...] = DEFAULT_HOLDOUT,
        scale: tuple[float, float] = (1.0, 2.0),
        num_workers: int = 0,
        seed: int = 0,
        **kwargs: Any,
    ) -> InpaintDataModule:
        """The demo data: scikit-image's photos, split by image.

        Train: random ``size`` crops of the training photos (shortest side zoomed to
        ``size * U(scale)``, flips), ``train_samples_per_epoch`` per epoch. Val and test: the
        held-out photos (``holdout``), centre crops, ``num_test`` items (several fixed masks per
        image when ``num_test`` exceeds the number of held-out photos). ``mask`` /
        ``eval_mask``: as in the constructor (default free-form). ``kwargs`` go to the
        constructor (``eval_batch_size``, ``pin_memory``, ...).
        """
        train = {
            "source": "embedded",
            "split": "train",
            "holdout": tuple(holdout),
            "size": size,
            "samples_per_epoch": train_samples_per_epoch,
            "scale": tuple(scale),
        }
        evaluation = {
            "source": "embedded",
            "split": "test",
            "holdout": tuple(holdout),
            "size": size,
            "samples_per_epoch": num_test,
        }
        return cls(
            train=train,
            val=dict(evaluation),
            test=dict(evaluation),
            batch_size=batch_size,
            num_workers=num_workers,
            seed=seed,
            mask=mask,
            eval_mask=eval_mask,
            **kwargs,
        )

    def dataset(self, split: str) -> InpaintDataset:
        """The dataset of ``split`` (``train`` | ``val`` | ``test``), built on first use."""
        if split not in self.specs:
            raise ValueError(f"unknown split {split!r}; choose train, val or test")
        if self.specs[split] is None:
            raise ValueError(f"InpaintDataModule has no {split} split configured")
        if split not in self.datasets:
            default = self.mask if split == "train" else self.eval_mask
            self.datasets[split] = build_dataset(
                self.specs[split], split, seed=self.seed, default_mask=default
            )
        return self.datasets[split]

    def setup(self, stage: str | None = None) -> None:
        wanted = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("test",),
        }.get(stage or "", ("train", "val", "test"))
        for split in wanted:
            if self.specs[split] is not None:
                self.dataset(split)

    def _loader(self, split: str, training: bool) -> DataLoader:
        dataset = self.dataset(split)
        world, rank = _distributed_world()
        sampler = None
        if not training and world > 1:
            # Lightning keeps a sampler it did not create (it only swaps default ones)
            sampler = UnpaddedDistributedSampler(dataset, num_replicas=world, rank=rank)
        return DataLoader(
            dataset,
            batch_size=self.batch_size if training else self.eval_batch_size,
            shuffle=training,
            sampler=sampler,
            drop_last=training,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
        )

    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset("train")
        if len(dataset) < self.batch_size:
            raise ValueError(
                f"the train split has {len(dataset)} samples, fewer than batch_size="
                f"{self.batch_size} (drop_last would leave no batch); raise samples_per_epoch"
            )
        return self._loader("train", training=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", training=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", training=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", training=False)
