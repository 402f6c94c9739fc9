"""Small shared utilities (atomic file writes, hashing, environment info)."""

from inpaintzoo.utils.io import (
    atomic_save_torch,
    atomic_write_bytes,
    atomic_write_text,
    sha256_file,
)

__all__ = ["atomic_save_torch", "atomic_write_bytes", "atomic_write_text", "sha256_file"]
