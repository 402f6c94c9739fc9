"""Data: image reading, datasets of image + mask pairs, transforms and the Lightning data module.

``InpaintDataModule`` (and ``build_dataset``) import pytorch_lightning, so they are loaded on
first access: ``from inpaintzoo.data import read_image`` stays light.
"""

from typing import Any

from inpaintzoo.data.datasets import IMAGE_EXTENSIONS, InpaintDataset, list_image_files
from inpaintzoo.data.io import (
    ImageReadError,
    image_to_tensor,
    read_image,
    tensor_to_image,
    write_image,
)
from inpaintzoo.data.samples import (
    DEFAULT_HOLDOUT,
    EMBEDDED_GRAY,
    EMBEDDED_RGB,
    embedded_data_dir,
    embedded_sample_files,
    embedded_split,
)
from inpaintzoo.data.transforms import eval_transform, train_transform

__all__ = [
    "DEFAULT_HOLDOUT",
    "EMBEDDED_GRAY",
    "EMBEDDED_RGB",
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "InpaintDataModule",
    "InpaintDataset",
    "UnpaddedDistributedSampler",
    "build_dataset",
    "embedded_data_dir",
    "embedded_sample_files",
    "embedded_split",
    "eval_transform",
    "image_to_tensor",
    "list_image_files",
    "read_image",
    "tensor_to_image",
    "train_transform",
    "write_image",
]

_LAZY = {"InpaintDataModule", "UnpaddedDistributedSampler", "build_dataset"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from inpaintzoo.data import datamodule

        return getattr(datamodule, name)
    raise AttributeError(f"module 'inpaintzoo.data' has no attribute {name!r}")
