"""Mask files: read one (:func:`load_mask`) or draw from a folder (:class:`MaskFiles`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from inpaintzoo.conventions import MaskPolarity
from inpaintzoo.masks.polarity import binarize_mask
from inpaintzoo.masks.ratio import HoleRatioBins, hole_ratio
from inpaintzoo.utils.files import IMAGE_DECODE_ERRORS, read_file_list

__all__ = ["MASK_EXTENSIONS", "MaskFiles", "list_mask_files", "load_mask", "read_mask_array"]

#: File extensions :class:`MaskFiles` lists (case-insensitive).
MASK_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_mask_array(path: str | os.PathLike) -> np.ndarray:
    """Read a mask file as a raw array, keeping its bit depth.

    Returns ``(H, W)`` or ``(H, W, C)``: uint8 for 8-bit files, uint16 for 16-bit gray files,
    float32 for float TIFFs; palette images are expanded to RGB(A) and 1-bit images become
    uint8 0/255.

    Raises:
        FileNotFoundError: the path does not exist (the message names it).
        ValueError: the file cannot be decoded ("cannot decode mask file ...").
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode == "1":
                image = image.convert("L")
            elif mode in ("P", "PA"):
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            elif mode not in ("L", "LA", "RGB", "RGBA", "I;16", "I;16B", "I;16L", "I", "F"):
                image = image.convert("RGB")
            array = np.array(image)
    except IMAGE_DECODE_ERRORS as err:
        raise ValueError(f"cannot decode mask file {path}: corrupt or unsupported ({err})") from err
    if array.dtype.kind in "iu" and array.dtype.itemsize > 1:
        # 16-bit gray ("I;16", "I;16B") and PIL mode "I" (32-bit int holding 16-bit PNG data).
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ValueError(f"cannot decode mask file {path}: integer values out of 16-bit range")
        array = array.astype(np.uint16)
    return array


def _resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize to ``(H, W)`` with cv2.INTER_NEAREST (keeps the values)."""
    height, width = int(size[0]), int(size[1])
    if array.shape[:2] == (height, width):
        return array
    if array.dtype == bool:
        array = array.astype(np.uint8)
    resized = cv2.resize(array, (width, height), interpolation=cv2.INTER_NEAREST)
    if array.ndim == 3 and resized.ndim == 2:  # cv2 drops a single channel axis
        resized = resized[:, :, None]
    return resized


def load_mask(
    path: str | os.PathLike,
    polarity: str | MaskPolarity = "auto",
    size: tuple[int, int] | int | None = None,
    threshold: float = 0.5,
) -> np.ndarray:
    """Read a mask file as float32 ``(H, W)`` in ``{0, 1}``, 1 = hole.

    Args:
        path: PNG/JPEG/BMP/TIFF/WebP file, any bit depth (8/16-bit), gray, RGB(A) or palette.
        polarity: ``white_hole`` | ``black_hole`` | ``auto`` (see
            :func:`~inpaintzoo.masks.binarize_mask`; ``auto`` warns, naming this file, when the
            result is over 90 % hole or empty).
        size: ``(H, W)`` (or an int for a square) to resize to, with nearest neighbour
            (``cv2.INTER_NEAREST``) before binarising; ``None`` keeps the file's size.
        threshold: binarisation threshold as a fraction of the full range (0.5 -> 127.5 for
            8-bit files). Anti-aliased or JPEG masks are binarised at it.

    Raises:
        FileNotFoundError: missing file (the message names the path).
        ValueError: undecodable file ("cannot decode mask file <path>: ...").
    """
    array = read_mask_array(path)
    if size is not None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        array = _resize_nearest(array, size)
    return binarize_mask(array, polarity=polarity, threshold=threshold, name=str(path))


def list_mask_files(
    root: str | os.PathLike | None = None,
    flist: str | os.PathLike | None = None,
    recursive: bool = False,
) -> list[Path]:
    """Mask files of a folder (sorted by relative path) or of a file list.

    ``flist``: a text file with one path per line (blank lines and lines starting with ``#``
    are skipped); relative paths are relative to ``root`` when given, else to the flist's
    folder. A folder lists the files with a :data:`MASK_EXTENSIONS` extension, not hidden ones,
    recursively only when ``recursive=True``.

    Raises:
        FileNotFoundError: missing folder, flist, or file named in the flist.
        ValueError: neither argument given, or no mask files found.
    """
    if flist is not None:
        return read_file_list(flist, root, what="mask")
    if root is None:
        raise ValueError("give a mask folder (root=...) or a file list (flist=...)")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"mask folder not found: {root}")
    candidates = root.rglob("*") if recursive else root.iterdir()
    files = sorted(
        (
            p
            for p in candidates
            if p.suffix.lower() in MASK_EXTENSIONS
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
            and p.is_file()
        ),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        raise ValueError(
            f"no mask files ({', '.join('*' + e for e in MASK_EXTENSIONS)}) found in {root}"
        )
    return files


class MaskFiles:
    """A mask source drawing masks from image files (e.g. the NVIDIA irregular masks).

    ``source(index, height, width, rng)`` returns float32 ``(height, width)`` in ``{0, 1}``:

    * ``augment=False`` (deterministic evaluation): file ``index % len(self)``, binarised and
      resized to ``(height, width)`` with nearest neighbour; ``rng`` is not used. Image ``i`` of
      an evaluation set is therefore always paired with mask ``i``.
    * ``augment=True`` (training): file ``rng.integers(len(self))``, binarised at its own size,
      then the on-the-fly augmentations PConv describes for its training masks (Liu et al.,
      2018, "random dilation, rotation and cropping"; specs/pconv.md §5), each drawn from
      ``rng``: horizontal and vertical flip (p = 0.5 each, ``flip=True``); rotation by an angle
      uniform in ``[-rotate, rotate]`` degrees about the centre (nearest, the uncovered
      corners become known pixels); dilation with an elliptical kernel of size uniform in
      ``{0, ..., dilate_max}`` px at the file's resolution (sizes 0 and 1 leave it unchanged);
      a crop of a region whose sides are a fraction uniform in ``crop_scale`` of the file's
      sides, at a random position; finally the nearest-neighbour resize to ``(height, width)``.

    Args:
        root: folder of mask files (``*.png, *.jpg, *.jpeg, *.bmp, *.tif(f), *.webp``, sorted).
        files: an explicit list of paths (instead of ``root`` / ``flist``).
        flist: text file with one path per line, relative to its folder (or to ``root``).
        polarity: ``white_hole`` | ``black_hole`` | ``auto`` (NVIDIA masks: white_hole).
        threshold: binarisation threshold, fraction of the full range (see ``binarize_mask``).
        augment: training mode (random pick + augmentations) or not (``index % len``).
        flip, rotate, dilate_max, crop_scale: the augmentation parameters above.
        recursive: list ``root`` recursively.
        start, stop, step: keep ``files[start:stop:step]`` of the sorted list (e.g. one
            hole-ratio bin of the NVIDIA set: ``start=8000, stop=12000``).

    Raises:
        FileNotFoundError / ValueError: missing or empty folder / list (messages name it).
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        files: Iterable[str | os.PathLike] | None = None,
        flist: str | os.PathLike | None = None,
        polarity: str | MaskPolarity = "auto",
        threshold: float = 0.5,
        augment: bool = False,
        flip: bool = True,
        rotate: float = 180.0,
        dilate_max: int = 9,
        crop_scale: Sequence[float] = (0.5, 1.0),
        recursive: bool = False,
        start: int | None = None,
        stop: int | None = None,
        step: int | None = None,
    ) -> None:
        if files is not None:
            if root is not None and flist is None:
                files = [Path(f) if Path(f).is_absolute() else Path(root) / f for f in files]
            listed = [Path(f) for f in files]
            if not listed:
                raise ValueError("MaskFiles got an empty list of files")
            for file in listed:
                if not file.is_file():
                    raise FileNotFoundError(f"mask file not found: {file}")
        else:
            listed = list_mask_files(root=root, flist=flist, recursive=recursive)
        selected = listed[slice(start, stop, step)]
        if not selected:
            raise ValueError(
                f"no mask files left after selecting [{start}:{stop}:{step}] of {len(listed)}"
            )
        low, high = (float(v) for v in crop_scale)
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(
                f"crop_scale must be (low, high) with 0 < low <= high <= 1, got {crop_scale}"
            )
        if int(dilate_max) < 0:
            raise ValueError(f"dilate_max must be >= 0, got {dilate_max}")
        self.files: list[Path] = selected
        self.root = None if root is None else Path(root)
        self.polarity = MaskPolarity.parse(polarity)
        self.threshold = float(threshold)
        self.augment = bool(augment)
        self.flip = bool(flip)
        self.rotate = float(rotate)
        self.dilate_max = int(dilate_max)
        self.crop_scale = (low, high)

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        where = self.root if self.root is not None else f"{len(self)} files"
        return (
            f"MaskFiles({where}, n={len(self)}, polarity={self.polarity.value}, "
            f"augment={self.augment})"
        )

    def load(self, i: int, size: tuple[int, int] | None = None) -> np.ndarray:
        """File ``i`` (no augmentation), binarised, optionally resized (nearest) to ``size``."""
        return load_mask(self.files[i], self.polarity, size=size, threshold=self.threshold)

    def __call__(self, index: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        if not self.augment:
            return self.load(int(index) % len(self), size=(height, width))
        mask = self.load(int(rng.integers(len(self))))
        mask = self._augment(mask, rng)
        return _resize_nearest(mask, (height, width))

    def _augment(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.flip:
            if rng.random() < 0.5:
                mask = mask[:, ::-1]
            if rng.random() < 0.5:
                mask = mask[::-1, :]
            mask = np.ascontiguousarray(mask)
        if self.rotate > 0:
            angle = float(rng.uniform(-self.rotate, self.rotate))
            h, w = mask.shape
            matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
            mask = cv2.warpAffine(
                mask,
                matrix,
                (w, h),
                flags=cv2.INTER_NEAREST,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0.0,
            )
        if self.dilate_max > 0:
            kernel = int(rng.integers(0, self.dilate_max + 1))
            if kernel > 1:
                element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
                mask = cv2.dilate(mask, element)
        low, high = self.crop_scale
        if low < 1.0:
            scale = float(rng.uniform(low, high))
            h, w = mask.shape
            crop_h, crop_w = max(1, round(scale * h)), max(1, round(scale * w))
            top = int(rng.integers(0, h - crop_h + 1))
            left = int(rng.integers(0, w - crop_w + 1))
            mask = mask[top : top + crop_h, left : left + crop_w]
        return np.ascontiguousarray(mask, dtype=np.float32)

    def hole_ratios(self, size: tuple[int, int] | int | None = None) -> np.ndarray:
        """Hole ratio of every file (no augmentation), measured at ``size`` (``None``: the
        file's own size). Reads every file: seconds for thousands of masks."""
        if isinstance(size, int):
            size = (size, size)
        return np.array([hole_ratio(self.load(i, size=size)) for i in range(len(self))])

    def bin_files(
        self, bins: HoleRatioBins, size: tuple[int, int] | int | None = None
    ) -> dict[str, list[Path]]:
        """Group the files by hole-ratio bin measured at ``size``: ``{label: [paths]}`` (every
        label present, possibly empty; files outside the bins are dropped)."""
        groups: dict[str, list[Path]] = {label: [] for label in bins.labels}
        for file, ratio in zip(self.files, self.hole_ratios(size)):
            i = bins.index(float(ratio))
            if i >= 0:
                groups[bins.label(i)].append(file)
        return groups
