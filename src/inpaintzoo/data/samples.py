"""The embedded default dataset: the sample photos shipped inside scikit-image's wheel.

The files are read from scikit-image's ``data/`` folder (``skimage.data_dir``), never through
``skimage.data`` helper functions, which may try to download. Nothing is copied into this
repository. Licences of the photos: see scikit-image's ``data/README.txt`` (public domain or
CC0/CC-BY for the files listed here).

Default split (by image, so a held-out photo never appears in training): 15 training photos
and 4 test photos, :data:`DEFAULT_HOLDOUT` = astronaut and coffee (RGB), camera and coins
(grayscale, used as RGB).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "DEFAULT_HOLDOUT",
    "EMBEDDED_GRAY",
    "EMBEDDED_RGB",
    "MIN_EMBEDDED_FILES",
    "embedded_data_dir",
    "embedded_sample_files",
    "embedded_split",
]

#: RGB photos (file names in scikit-image's data folder).
EMBEDDED_RGB = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
)
#: Grayscale photos (read as RGB by replicating the channel; horse.png is RGBA, alpha dropped).
EMBEDDED_GRAY = (
    "brick.png",
    "camera.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "horse.png",
    "moon.png",
    "page.png",
    "text.png",
    "clock_motion.png",
)
#: Held-out test images (stems): two RGB, two grayscale.
DEFAULT_HOLDOUT = ("astronaut", "coffee", "camera", "coins")
#: Fewer embedded files than this is an error (a broken or stripped scikit-image install).
MIN_EMBEDDED_FILES = 8


def embedded_data_dir() -> Path:
    """scikit-image's bundled ``data/`` folder."""
    try:
        import skimage
    except ImportError as err:  # pragma: no cover - scikit-image is a dependency
        raise ImportError("the embedded sample dataset needs scikit-image") from err
    folder = Path(getattr(skimage, "data_dir", Path(skimage.__file__).parent / "data"))
    if not folder.is_dir():
        folder = Path(skimage.__file__).parent / "data"
    return folder


def embedded_sample_files() -> list[Path]:
    """The embedded photos present in the installed scikit-image, sorted by file name.

    Missing files are skipped (versions of scikit-image differ slightly).

    Raises:
        FileNotFoundError: fewer than :data:`MIN_EMBEDDED_FILES` of them are present.
    """
    folder = embedded_data_dir()
    names = sorted(EMBEDDED_RGB + EMBEDDED_GRAY)
    files = [folder / name for name in names if (folder / name).is_file()]
    if len(files) < MIN_EMBEDDED_FILES:
        raise FileNotFoundError(
            f"only {len(files)} of the {len(names)} embedded sample photos were found in "
            f"{folder} (need at least {MIN_EMBEDDED_FILES}); reinstall scikit-image or use a "
            "folder dataset"
        )
    return files


def embedded_split(holdout: Iterable[str] = DEFAULT_HOLDOUT) -> tuple[list[Path], list[Path]]:
    """Split the embedded photos by image: ``(train_files, test_files)``.

    Args:
        holdout: file stems (``"astronaut"``) or names (``"astronaut.png"``) of the test
            images; they never appear in the training list.

    Raises:
        ValueError: a held-out name is not an embedded photo, or a split would be empty.
    """
    files = embedded_sample_files()
    stems = {f.stem for f in files}
    wanted = {Path(str(name)).stem for name in holdout}
    known = {Path(n).stem for n in EMBEDDED_RGB + EMBEDDED_GRAY}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(
            f"unknown embedded image(s) {unknown}; choose from: {', '.join(sorted(known))}"
        )
    test = [f for f in files if f.stem in wanted]
    train = [f for f in files if f.stem not in wanted]
    if not test or not train:
        raise ValueError(
            f"holdout {sorted(wanted)} leaves an empty split (present images: {sorted(stems)})"
        )
    return train, test
