"""Image + mask datasets: image files (a folder, a file list or the embedded photos) paired
with masks from a mask source (:mod:`inpaintzoo.masks`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from inpaintzoo.data.io import image_to_tensor, read_image
from inpaintzoo.data.transforms import as_hw, eval_transform, train_transform
from inpaintzoo.masks import FreeFormMasks, check_mask_array
from inpaintzoo.utils.files import read_file_list

__all__ = ["IMAGE_EXTENSIONS", "InpaintDataset", "list_image_files"]

#: Image file extensions listed in folders (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def list_image_files(
    root: str | os.PathLike | None = None, flist: str | os.PathLike | None = None
) -> list[Path]:
    """Image files of a folder (recursive, sorted by relative path) or of a file list.

    Args:
        root: folder searched recursively for :data:`IMAGE_EXTENSIONS` files (hidden files and
            folders skipped).
        flist: text file, one path per line (blank lines and ``#`` comments skipped);
            relative paths are relative to ``root`` when given, else to the flist's folder.

    Raises:
        FileNotFoundError: missing folder / flist / listed file (the message names it).
        ValueError: "no images found in <root>", an empty flist, or neither argument given.
    """
    if flist is not None:
        return read_file_list(flist, root, what="image")
    if root is None:
        raise ValueError("give an image folder (root=...) or a file list (flist=...)")
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"image folder not found: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root} (pass a file list as flist=...)")
    files = sorted(
        (
            p
            for p in root.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
            and p.is_file()
        ),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        raise ValueError(
            f"no images found in {root} (looked for {', '.join(IMAGE_EXTENSIONS)}, recursively)"
        )
    return files


def _sample_names(files: Sequence[Path]) -> list[str]:
    """File stems, or (when two files share a stem) paths relative to their common folder."""
    stems = [f.stem for f in files]
    if len(set(stems)) == len(stems):
        return stems
    common = Path(os.path.commonpath([str(f.parent) for f in files]))
    return [f.relative_to(common).with_suffix("").as_posix().replace("/", "__") for f in files]


class InpaintDataset(Dataset):
    """Images paired with masks, as the dict ``{"image", "mask", "name", "index"}``.

    Item ``i`` uses file ``i % len(files)`` and returns:

    * ``image``: float32 ``(3, H, W)`` in ``[0, 1]`` (gray files replicated to RGB);
    * ``mask``: float32 ``(1, H, W)`` in ``{0, 1}``, 1 = hole;
    * ``name``: the file stem, plus ``_crop<k>`` (train) or ``_mask<k>`` (eval: same centre
      crop, another mask) when ``samples_per_epoch`` exceeds the number of files, with
      ``k = i // len(files)``;
    * ``index``: ``i``.

    Modes:

    * ``"train"``: albumentations :func:`~inpaintzoo.data.transforms.train_transform` (shortest
      side -> ``size * U(scale)``, random crop, horizontal flip). Randomness comes from a
      fresh generator per call, seeded from torch's RNG, so ``seed_everything`` and the
      DataLoader's per-worker seeding make runs reproducible and workers differ.
    * ``"eval"``: deterministic (shortest side -> size, centre crop) and the mask of item
      ``i`` is drawn with ``np.random.default_rng([seed, i])``: the image x mask pairing is the
      same on every run, for any batch size and number of workers.

    Structure maps (edges, gray) are *not* computed here: methods compute them on the
    accelerator.

    Args:
        files: image paths (see :func:`list_image_files`).
        mask_source: ``source(index, H, W, rng) -> (H, W)`` float32 mask, e.g.
            :class:`~inpaintzoo.masks.FreeFormMasks` (the default) or
            :class:`~inpaintzoo.masks.MaskFiles`.
        size: output size, ``int`` or ``(H, W)``.
        mode: ``"train"`` or ``"eval"``.
        seed: evaluation mask seed (eval mode only).
        resize: resize the shortest side before cropping (else crop at native resolution; an
            image smaller than the crop is then an error).
        crop: ``"random"`` or ``"center"``; default random in train, centre in eval (eval
            only allows centre).
        flip: random horizontal flip (train only).
        samples_per_epoch: dataset length (default ``len(files)``); larger values give a small
            image list many crops (train) or many masks per image (eval) per epoch.
        scale: ``(low, high)`` random zoom for ``resize=True`` in train mode (1 = the shortest
            side fits the crop).
        cache: keep decoded images in memory (per process; for small lists such as the
            embedded photos).

    Raises:
        ValueError: empty ``files``, bad mode/crop, image smaller than the crop with
            ``resize=False`` (naming the file and both sizes), a mask of the wrong size (naming
            the mask source and both sizes) or non-binary.
    """

    def __init__(
        self,
        files: Iterable[str | os.PathLike],
        mask_source: Any = None,
        size: int | Sequence[int] = 64,
        mode: str = "train",
        seed: int = 0,
        resize: bool = True,
        crop: str | None = None,
        flip: bool = True,
        samples_per_epoch: int | None = None,
        scale: Sequence[float] = (1.0, 1.0),
        cache: bool = False,
    ) -> None:
        self.files = [Path(f) for f in files]
        if not self.files:
            raise ValueError("InpaintDataset needs at least one image file")
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        crop = crop or ("random" if mode == "train" else "center")
        if mode == "eval" and crop != "center":
            raise ValueError("eval mode is deterministic: crop must be 'center'")
        if samples_per_epoch is not None and int(samples_per_epoch) < 1:
            raise ValueError(f"samples_per_epoch must be >= 1, got {samples_per_epoch}")
        self.mask_source = FreeFormMasks() if mask_source is None else mask_source
        if not callable(self.mask_source):
            raise TypeError(f"mask_source must be callable, got {self.mask_source!r}")
        self.size = as_hw(size)
        self.mode = mode
        self.seed = int(seed)
        self.resize = bool(resize)
        self.crop = crop
        self.flip = bool(flip) and mode == "train"
        self.samples_per_epoch = None if samples_per_epoch is None else int(samples_per_epoch)
        self.scale = tuple(float(s) for s in scale)
        self.cache = bool(cache)
        self._cache: dict[int, np.ndarray] = {}
        self._names = _sample_names(self.files)
        if mode == "train":
            self.transform = train_transform(
                self.size, resize=self.resize, flip=self.flip, scale=self.scale, crop=crop
            )
        else:
            self.transform = eval_transform(self.size, resize=self.resize)

    def __len__(self) -> int:
        return self.samples_per_epoch or len(self.files)

    def __repr__(self) -> str:
        return (
            f"InpaintDataset({len(self.files)} files, {len(self)} samples, size={self.size}, "
            f"mode={self.mode}, mask={self.mask_source!r})"
        )

    def name(self, index: int) -> str:
        """The ``name`` of item ``index``."""
        file_index = index % len(self.files)
        name = self._names[file_index]
        if len(self) > len(self.files):
            tag = "crop" if self.mode == "train" else "mask"
            name = f"{name}_{tag}{index // len(self.files)}"
        return name

    def _image(self, file_index: int) -> np.ndarray:
        if file_index in self._cache:
            return self._cache[file_index]
        image = read_image(self.files[file_index])
        if self.cache:
            if self.resize:
                image = self._preshrink(image)
            self._cache[file_index] = image
        return image

    def _preshrink(self, image: np.ndarray) -> np.ndarray:
        """Shrink a cached image (area interpolation) so its shorter side is the largest that
        any transform of this dataset asks for (``size * max(scale)``): every later resize then
        only shrinks a small copy instead of a multi-megapixel photo (2x loader throughput at
        256 px on the embedded photos). The result differs from one resize of the original only
        by resampling rounding."""
        import cv2

        side = int(np.ceil(max(np.atleast_1d(self.size)) * max(self.scale)))
        h, w = image.shape[:2]
        short = min(h, w)
        if short <= side:
            return image
        factor = side / short
        new = (max(side, round(w * factor)), max(side, round(h * factor)))
        return cv2.resize(image, new, interpolation=cv2.INTER_AREA)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        file_index = index % len(self.files)
        image = self._image(file_index)
        height, width = self.size
        if not self.resize and (image.shape[0] < height or image.shape[1] < width):
            raise ValueError(
                f"image {self.files[file_index]} is {image.shape[0]}x{image.shape[1]} (HxW), "
                f"smaller than the crop {height}x{width}; use resize=True or a smaller size"
            )
        if self.mode == "train":
            entropy = int(torch.randint(0, 2**62, (1,)).item())
            transform_seq, mask_seq = np.random.SeedSequence(entropy).spawn(2)
            self.transform.set_random_seed(int(transform_seq.generate_state(1)[0]))
            rng = np.random.default_rng(mask_seq)
        else:
            rng = np.random.default_rng([self.seed, index])
        image = self.transform(image=image)["image"]
        mask = self.mask_source(index, height, width, rng)
        mask = check_mask_array(mask, height, width, self.mask_source)
        return {
            "image": image_to_tensor(image),
            "mask": torch.from_numpy(np.ascontiguousarray(mask))[None],
            "name": self.name(index),
            "index": index,
        }
