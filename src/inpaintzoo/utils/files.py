"""File lists shared by image and mask loaders."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

#: what PIL raises for a corrupt, truncated or unsupported image file
IMAGE_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    UnidentifiedImageError,
    Image.DecompressionBombError,
)


def read_file_list(
    flist: str | Path, root: str | Path | None = None, what: str = "file"
) -> list[Path]:
    """Paths listed one per line in ``flist`` (blank lines and ``#`` comments skipped).

    Relative paths are taken relative to ``root`` (default: the list's folder).

    Raises:
        FileNotFoundError: the list or a listed file is missing (names it and the line).
        ValueError: the list names no files.
    """
    flist = Path(flist)
    if not flist.is_file():
        raise FileNotFoundError(f"{what} file list not found: {flist}")
    base = Path(root) if root is not None else flist.parent
    files = []
    for number, line in enumerate(flist.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        file = Path(line) if Path(line).is_absolute() else base / line
        if not file.is_file():
            raise FileNotFoundError(f"{what} file not found: {file} (line {number} of {flist})")
        files.append(file)
    if not files:
        raise ValueError(f"{what} file list {flist} names no files")
    return files
