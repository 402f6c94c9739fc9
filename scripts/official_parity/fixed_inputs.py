"""The fixed inputs of the parity fixtures (stored in the fixtures, so tests never rebuild them).

Image: scikit-image's ``astronaut.png`` (NASA, public domain; shipped inside the scikit-image
wheel), resized with PIL (bicubic) to the fixture size. Hole: a seeded free-form mask from
:func:`inpaintzoo.masks.free_form_mask`. Gray and edges as the official data loaders compute
them: ``skimage.color.rgb2gray`` and ``skimage.feature.canny`` (EdgeConnect test mode passes
``mask=valid``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage
import torch
from PIL import Image, ImageFilter
from skimage.color import rgb2gray
from skimage.feature import canny

from inpaintzoo.masks import free_form_mask

DESCRIPTION = {
    "edgeconnect": (
        "image: astronaut.png (skimage) resized to 256 (PIL bicubic), uint8 (1,3,256,256); "
        "mask: free_form_mask(256, 256, seed 3), 1 = hole; gray: rgb2gray (float32); edge: "
        "canny(gray, sigma=2, mask=valid) (official test mode). image64/gray64/edge64 for the "
        "discriminators: the image resized to 64 (PIL box), canny sigma 1 without mask"
    ),
    "ctsdg": (
        "image: astronaut.png resized to 256 (PIL bicubic); mask: free_form_mask(256, 256, seed "
        "2), 1 = hole (the official tensor mask is its complement); gray: rgb2gray; edge: "
        "canny(gray, sigma=2) of the clean image (network parity: the official loader's "
        "wrap-around gray is not reproduced here)"
    ),
    "structureflow": (
        "image: astronaut.png resized to 128 (PIL bicubic); smooth: the image blurred with PIL "
        "GaussianBlur(radius 2) (stands in for the MATLAB RTV image); mask: free_form_mask(128, "
        "128, seed 5), 1 = hole"
    ),
}


def astronaut(size: int, resample=Image.BICUBIC) -> np.ndarray:
    path = Path(skimage.__file__).parent / "data" / "astronaut.png"
    return np.asarray(Image.open(path).convert("RGB").resize((size, size), resample))


def _hole(size: int, seed: int) -> np.ndarray:
    mask = free_form_mask(size, size, np.random.default_rng(seed))
    return (np.asarray(mask) > 0.5).astype(np.uint8)


def _chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]


def _hw(array: np.ndarray, dtype=None) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(array))[None, None]
    return tensor if dtype is None else tensor.to(dtype)


def edgeconnect_inputs() -> dict[str, torch.Tensor]:
    image = astronaut(256)
    hole = _hole(256, 3)
    gray = rgb2gray(image)
    edge = canny(gray, sigma=2, mask=hole == 0)
    small = astronaut(64, Image.BOX)
    gray64 = rgb2gray(small)
    edge64 = canny(gray64, sigma=1)
    return {
        "image": _chw(image),
        "mask": _hw(hole),
        "gray": _hw(gray, torch.float32),
        "edge": _hw(edge.astype(np.uint8)),
        "image64": _chw(small),
        "gray64": _hw(gray64, torch.float32),
        "edge64": _hw(edge64.astype(np.uint8)),
    }


def ctsdg_inputs() -> dict[str, torch.Tensor]:
    image = astronaut(256)
    gray = rgb2gray(image)
    return {
        "image": _chw(image),
        "mask": _hw(_hole(256, 2)),
        "gray": _hw(gray, torch.float32),
        "edge": _hw(canny(gray, sigma=2).astype(np.uint8)),
    }


def structureflow_inputs() -> dict[str, torch.Tensor]:
    image = astronaut(128)
    smooth = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(2)))
    return {"image": _chw(image), "smooth": _chw(smooth), "mask": _hw(_hole(128, 5))}
