"""The edit pipeline of the interactive app, as plain functions (no gradio, no UI state).

mask + edited edges + placed object edges -> :class:`~inpaintzoo.predictor.Predictor` ->
composite. Arrays at this boundary are numpy: images uint8 ``(H, W, 3)``, masks and edge maps
float32 ``(H, W)`` (mask: 1 = hole; edges in ``[0, 1]``). The UI (:mod:`inpaintzoo.app.ui`)
only converts its widgets' values and calls these functions.

Resolutions. The mask and the result live at the image's full resolution. Edge maps live at the
*working* resolution, the size at which the predictor runs the networks: the image's own size,
or, above ``max_side``, the downscaled size of the predictor's resize-and-paste-back strategy
(:func:`working_size` mirrors :mod:`inpaintzoo.predictor`). :func:`edges_for_predictor` lifts an
edited working-resolution edge map to full resolution so that the predictor's own nearest
downscale gives the network exactly the edited map back (thin lines are never dropped).

Edge-guided methods (today EdgeConnect) take the full edge map through ``edge=``: the known
region's Canny edges (test mode, no information from the hole) outside the hole, and inside it
G1's prediction, a placed object's Canny edges, and the user's drawn (set to 1) and erased (set
to 0) strokes. The one place that decides whether a model is edge-guided is :func:`edge_guided`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "AppError",
    "EdgeMaps",
    "ModelEntry",
    "check_hole",
    "compose_edges",
    "display_size",
    "edge_guided",
    "sketch_guided",
    "edge_view",
    "edges_for_predictor",
    "fit_object",
    "inpaint",
    "load_image",
    "load_mask_file",
    "load_model",
    "mask_from_layers",
    "mask_overlay",
    "mask_to_layer",
    "place_object_edges",
    "predict_edges",
    "resize_binary",
    "resize_image",
    "sample_photos",
    "save_png",
    "strokes_from_layers",
    "structure_sigma",
    "working_size",
]

#: Images with more pixels than this are refused (about 8000 x 6000).
DEFAULT_MAX_PIXELS = 50_000_000


class AppError(ValueError):
    """A problem the user can fix; its message is shown in the page as is."""


# --------------------------------------------------------------------------- models
def sketch_guided(model: Any) -> bool:
    """Whether ``model`` takes a user sketch in the hole but predicts no edges of its own: a
    method declaring ``edge_sketch`` guidance in its contract, built with its sketch channel
    (DeepFill v2 with ``sketch: true``)."""
    contract = getattr(model, "contract", None)
    return (
        not hasattr(model, "predict_edges")
        and contract is not None
        and "edge_sketch" in contract.guidance
        and bool(getattr(model, "sketch", False))
    )


def edge_guided(model: Any) -> bool:
    """Whether ``model`` takes an edited edge map (the app's edge tools are enabled for it).

    The single place that decides it: a method with an edge generator (``predict_edges``,
    EdgeConnect: its predicted edges are shown for editing), or a sketch-guided one
    (:func:`sketch_guided`, DeepFill v2: the hole starts empty and the strokes drawn there are
    its sketch).
    """
    return hasattr(model, "predict_edges") or sketch_guided(model)


def structure_sigma(model: Any, default: float = 2.0) -> float:
    """The Canny sigma the model's edges use (EdgeConnect's ``canny_sigma``), for object edges."""
    return float(getattr(model, "canny_sigma", default))


@dataclass
class ModelEntry:
    """One servable model: a display ``label``, its predictor, and whether it is edge-guided."""

    label: str
    predictor: Any
    source: str

    @property
    def edge_guided(self) -> bool:
        return edge_guided(self.predictor.model)


def load_model(
    source: str | Path, device: str | None = None, max_side: int | None = 1024
) -> ModelEntry:
    """A :class:`ModelEntry` from a checkpoint/export path or a classical baseline's name
    (``telea``, ``navier_stokes``, ``patchmatch``).

    Raises:
        AppError: missing file, not an inpaintzoo checkpoint, corrupt file, unknown name.
    """
    from inpaintzoo.baselines import CLASSICAL_METHODS, create_baseline
    from inpaintzoo.predictor import Predictor

    text = str(source).strip()
    if not text:
        raise AppError("no checkpoint given: type the path of a .ckpt, .safetensors or export")
    if text in CLASSICAL_METHODS:
        try:
            model = create_baseline(text)
        except (ImportError, RuntimeError, ValueError) as err:
            raise AppError(f"baseline {text!r} is not available here: {err}") from err
        return ModelEntry(label=f"{text} (classical)", predictor=Predictor(model), source=text)
    path = Path(text).expanduser()
    if not path.exists():
        raise AppError(
            f"checkpoint not found: {path} (give a Lightning .ckpt, a .safetensors file or an "
            f"ONNX export folder; baselines: {', '.join(CLASSICAL_METHODS)})"
        )
    try:
        predictor = Predictor.from_file(path, device=device, max_side=max_side)
    except (FileNotFoundError, ValueError, RuntimeError, KeyError, OSError) as err:
        raise AppError(f"cannot load {path}: {err}") from err
    variant = getattr(predictor.model, "variant", None)
    name = predictor.name + (f" {variant}" if variant else "")
    return ModelEntry(label=f"{name} ({path.name})", predictor=predictor, source=str(path))


# --------------------------------------------------------------------------- inputs
def sample_photos() -> dict[str, Path]:
    """The embedded sample photos (scikit-image's data folder) by file name."""
    from inpaintzoo.data import embedded_sample_files

    return {p.name: p for p in embedded_sample_files()}


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an uploaded image as uint8 ``(H, W, 3)`` (EXIF orientation, 16-bit, alpha handled
    as :func:`inpaintzoo.data.read_image`).

    Raises:
        AppError: not an image, unreadable, or more than ``max_pixels`` pixels.
    """
    from PIL import Image

    from inpaintzoo.data import read_image

    path = Path(path)
    name = path.name
    if not path.is_file():
        raise AppError(f"image file not found: {name}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's decompression-bomb warning: checked below
            with Image.open(path) as header:  # reads the header only
                width, height = header.size
    except Exception as err:  # noqa: BLE001 - any decoder failure means "not an image"
        raise AppError(
            f"{name} is not an image PIL can read ({type(err).__name__}): upload a PNG, JPEG, "
            "BMP, TIFF or WebP file"
        ) from err
    if width * height > max_pixels:
        raise AppError(
            f"{name} is {width}x{height} ({width * height / 1e6:.1f} MP), over this app's limit "
            f"of {max_pixels / 1e6:.0f} MP: downscale it first (or start the app with a larger "
            "max_pixels)"
        )
    try:
        return read_image(path)
    except Exception as err:  # noqa: BLE001 - truncated, corrupt, unsupported
        raise AppError(f"cannot decode {name}: {err}") from err


def load_mask_file(
    path: str | Path, shape: tuple[int, int], polarity: str = "auto", threshold: float = 0.5
) -> np.ndarray:
    """A mask file as float32 ``(H, W)``, 1 = hole, with an explicit polarity
    (``white_hole`` | ``black_hole`` | ``auto``, as ``inpaintzoo-predict``).

    Raises:
        AppError: unreadable file, unknown polarity, or a size other than ``shape``.
    """
    from inpaintzoo.masks import load_mask

    path = Path(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mask = load_mask(path, polarity=polarity, threshold=threshold)
    except Exception as err:  # noqa: BLE001 - missing, undecodable, bad polarity
        raise AppError(f"cannot use mask {path.name}: {err}") from err
    if mask.shape != tuple(shape):
        raise AppError(
            f"mask {path.name} is {mask.shape[1]}x{mask.shape[0]} but the image is "
            f"{shape[1]}x{shape[0]}: upload a mask of the image's size"
        )
    for warning in caught:  # implausible hole (auto: over 90 % or empty) or a 0/1 image
        if issubclass(warning.category, UserWarning):
            raise AppError(f"{warning.message}".replace(str(path), path.name))
    return mask


def check_hole(mask: np.ndarray) -> float:
    """The hole fraction of ``mask``; refuses an empty hole and a hole that covers everything.

    Raises:
        AppError: no hole painted, or no known pixel left.
    """
    ratio = float(np.asarray(mask, dtype=np.float32).mean()) if mask.size else 0.0
    if ratio <= 0.0:
        raise AppError("no hole: paint over the region to fill (or upload a mask file) first")
    if ratio >= 1.0:
        raise AppError("the hole covers the whole image: leave some known pixels to inpaint from")
    return ratio


# --------------------------------------------------------------------------- resizing
def resize_binary(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a binary map; a target pixel is 1 when any source pixel it covers is (area > 0),
    so thin strokes survive shrinking. float32 ``(h, w)`` in {0, 1}."""
    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape == tuple(shape):
        return (mask > 0).astype(np.float32)
    t = torch.from_numpy(np.ascontiguousarray(mask))[None, None]
    out = F.interpolate(t, size=tuple(shape), mode="area") > 0
    return out[0, 0].numpy().astype(np.float32)


def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a uint8 image: area when shrinking, nearest when enlarging (crisp pixels)."""
    h, w = shape
    if image.shape[:2] == (h, w):
        return image
    shrink = h * w < image.shape[0] * image.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_NEAREST
    out = cv2.resize(np.ascontiguousarray(image), (w, h), interpolation=interp)
    return out if out.ndim == image.ndim else out[..., None]


def working_size(shape: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """The size at which the predictor runs the networks (its resize-and-paste-back rule)."""
    h, w = int(shape[0]), int(shape[1])
    if max_side and max(h, w) > max_side:
        scale = max_side / max(h, w)
        return max(1, round(h * scale)), max(1, round(w * scale))
    return h, w


def display_size(shape: tuple[int, int], lo: int = 384, hi: int = 768) -> tuple[int, int]:
    """Canvas size for an image: longer side brought into ``[lo, hi]`` (small images enlarged by
    an integer factor so their pixels stay square blocks)."""
    h, w = int(shape[0]), int(shape[1])
    longer = max(h, w)
    if longer > hi:
        scale = hi / longer
    elif longer < lo:
        scale = float(math.ceil(lo / longer))
    else:
        return h, w
    return max(1, round(h * scale)), max(1, round(w * scale))


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    from inpaintzoo.data import image_to_tensor

    return image_to_tensor(image)[None]


def _mask_tensor(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]


# --------------------------------------------------------------------------- edges
@dataclass
class EdgeMaps:
    """The model's edge maps at working resolution (float32 ``(h, w)``).

    ``known``: Canny edges of the known region (test mode: none in or at the hole);
    ``predicted``: the edge generator's completion (soft, in [0, 1]; used inside the hole);
    ``mask``: the hole at working resolution; ``image``: the image at working resolution
    (uint8, for display); ``full_shape``: the image's full ``(H, W)``; ``raw``: the model feeds
    G1's output everywhere, not only in the hole (EdgeConnect ``inference_edges="raw"``, the
    official test.py), so the unedited map outside the hole is ``predicted`` too.
    """

    known: np.ndarray
    predicted: np.ndarray
    mask: np.ndarray
    image: np.ndarray
    full_shape: tuple[int, int]
    raw: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        return self.mask.shape  # type: ignore[return-value]


@torch.no_grad()
def _model_edges(model: Any, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """``model.predict_edges`` at any size: enlarge below ``min_size``, pad to ``size_multiple``
    (as the predictor does), run on the hole-zeroed image, crop back."""
    from inpaintzoo.predictor import pad_to_multiple

    if sketch_guided(model):  # the known region's edges to draw along; nothing predicted
        from inpaintzoo.structure import rgb_to_gray

        known = model.edge_map(rgb_to_gray(image * (1.0 - mask)), mask=mask)
        return {"edge_known": known, "edge_pred": torch.zeros_like(mask)}
    h, w = image.shape[-2:]
    min_size = int(getattr(model, "min_size", 1))
    if min(h, w) < min_size:
        scale = min_size / min(h, w)
        size = (math.ceil(h * scale), math.ceil(w * scale))
        img = F.interpolate(image, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
        msk = (F.interpolate(mask, size=size, mode="nearest") > 0).float()
        big = _model_edges(model, img, msk)
        return {k: F.interpolate(v, size=(h, w), mode="nearest") for k, v in big.items()}
    m = int(getattr(model, "size_multiple", 1))
    img = pad_to_multiple(image, m)
    msk = pad_to_multiple(mask, m, value_mode="constant")
    maps = model.predict_edges(img * (1.0 - msk), msk)  # the network never sees the hole
    return {k: maps[k][..., :h, :w] for k in ("edge_known", "edge_pred")}


def predict_edges(predictor: Any, image: np.ndarray, mask: np.ndarray) -> EdgeMaps:
    """The model's known and predicted edges for ``image`` (uint8 ``(H, W, 3)``) with hole
    ``mask`` (``(H, W)``), at the predictor's working resolution.

    Raises:
        AppError: the model is not edge-guided, or the hole is empty / everything.
    """
    model = predictor.model
    if not edge_guided(model):
        raise AppError(f"{predictor.name} inpaints from the mask alone: it takes no edge map")
    check_hole(mask)
    full = image.shape[:2]
    work = working_size(full, predictor.max_side)
    img = _to_tensor(image)
    msk = _mask_tensor(mask)
    if work != tuple(full):  # the predictor's downscale: area image, hole kept where any pixel
        img = F.interpolate(img, size=work, mode="area").clamp(0, 1)
        msk = (F.interpolate(msk, size=work, mode="area") > 0).float()
    device = predictor.device
    maps = _model_edges(model, img.to(device), msk.to(device))
    work_image = (img[0].permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    if work == tuple(full):
        work_image = image
    return EdgeMaps(
        known=maps["edge_known"][0, 0].float().cpu().numpy(),
        predicted=maps["edge_pred"][0, 0].float().clamp(0, 1).cpu().numpy(),
        mask=msk[0, 0].numpy(),
        image=work_image,
        full_shape=(int(full[0]), int(full[1])),
        raw=getattr(model, "inference_edges", "composite") == "raw",
    )


def compose_edges(
    maps: EdgeMaps,
    drawn: np.ndarray | None = None,
    erased: np.ndarray | None = None,
    object_edges: np.ndarray | None = None,
    object_replaces: bool = True,
) -> np.ndarray:
    """The full edge map the inpainting network gets (working resolution, float32 in [0, 1]).

    Inside the hole: G1's prediction, or a placed object's edges (``object_replaces``: instead
    of the prediction; otherwise added to it), then ``drawn`` strokes set to 1 and ``erased``
    strokes set to 0. Outside the hole: the known region's edges (G1's output for a ``raw``
    model), untouched by any edit. With no edits this is exactly the map EdgeConnect builds for
    itself.
    """
    hole = maps.predicted.astype(np.float32).copy()
    if object_edges is not None:
        obj = _checked(object_edges, maps.shape, "object edges")
        hole = obj.copy() if object_replaces else np.maximum(hole, obj)
    if drawn is not None:
        hole[_checked(drawn, maps.shape, "drawn strokes") > 0.5] = 1.0
    if erased is not None:
        hole[_checked(erased, maps.shape, "erased strokes") > 0.5] = 0.0
    m = maps.mask
    outside = maps.predicted if maps.raw else maps.known
    return (hole * m + outside * (1.0 - m)).astype(np.float32)


def _checked(array: np.ndarray, shape: tuple[int, int], what: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.shape != tuple(shape):
        raise AppError(f"{what} are {array.shape} but the edge map is {tuple(shape)}")
    return array


def _nearest_rows(size_in: int, size_out: int) -> np.ndarray:
    """The source indices torch's ``nearest`` interpolation picks (probed, not re-derived)."""
    idx = torch.arange(size_in, dtype=torch.float64)[None, None, :, None]
    picked = F.interpolate(idx, size=(size_out, 1), mode="nearest")
    return picked[0, 0, :, 0].numpy().astype(np.int64)


def edges_for_predictor(edge: np.ndarray, full_shape: tuple[int, int]) -> np.ndarray:
    """Lift a working-resolution edge map to the image's full size for ``predictor(edge=...)``.

    Nearest enlargement, then the pixels that the predictor's nearest downscale samples are set
    to the working map's values, so the network receives ``edge`` exactly.
    """
    edge = np.asarray(edge, dtype=np.float32)
    h, w = edge.shape
    big_h, big_w = int(full_shape[0]), int(full_shape[1])
    if (h, w) == (big_h, big_w):
        return edge
    t = torch.from_numpy(np.ascontiguousarray(edge))[None, None]
    big = F.interpolate(t, size=(big_h, big_w), mode="nearest")[0, 0].numpy().copy()
    rows = _nearest_rows(big_h, h)
    cols = _nearest_rows(big_w, w)
    big[np.ix_(rows, cols)] = edge
    return big


def fit_object(object_shape: tuple[int, int], mask: np.ndarray) -> tuple[float, float, float]:
    """Default placement of an object in the hole: ``(centre_x, centre_y, size)`` in pixels of
    ``mask`` (the hole's bounding-box centre; longer side = the box's longer side)."""
    ys, xs = np.nonzero(np.asarray(mask) > 0.5)
    if len(ys) == 0:
        h, w = mask.shape
        return w / 2.0, h / 2.0, float(min(h, w)) / 2.0
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return (left + right) / 2.0, (top + bottom) / 2.0, float(max(bottom - top, right - left))


def place_object_edges(
    obj: np.ndarray,
    shape: tuple[int, int],
    center: tuple[float, float],
    size: float,
    sigma: float = 2.0,
) -> np.ndarray:
    """Canny edges of a second image, scaled so its longer side is ``size`` pixels and centred
    at ``center = (x, y)`` on a ``shape`` canvas (clipped at the borders).

    The object is resized first and its edges computed at that size, with the same batched
    Canny as the methods (:func:`inpaintzoo.structure.canny_edges`), so lines stay one pixel
    wide at any scale. float32 ``(h, w)`` in {0, 1}.
    """
    from inpaintzoo.structure import canny_edges

    h, w = int(shape[0]), int(shape[1])
    oh, ow = obj.shape[:2]
    scale = float(size) / max(oh, ow)
    nh, nw = max(1, round(oh * scale)), max(1, round(ow * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(np.ascontiguousarray(obj), (nw, nh), interpolation=interp)
    if small.ndim == 2:
        small = np.repeat(small[..., None], 3, axis=2)
    edges = canny_edges(_to_tensor(small), sigma=sigma)[0, 0].numpy()
    canvas = np.zeros((h, w), np.float32)
    top = int(round(center[1] - nh / 2.0))
    left = int(round(center[0] - nw / 2.0))
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(h, top + nh), min(w, left + nw)
    if y1 > y0 and x1 > x0:
        canvas[y0:y1, x0:x1] = edges[y0 - top : y1 - top, x0 - left : x1 - left]
    return canvas


# --------------------------------------------------------------------------- editor layers
def _rgba(layer: np.ndarray) -> np.ndarray:
    layer = np.asarray(layer)
    if layer.ndim == 2:
        return np.stack([layer, layer, layer, (layer > 0).astype(layer.dtype) * 255], axis=-1)
    if layer.shape[2] == 3:
        alpha = (layer.max(axis=2) > 0).astype(layer.dtype) * 255
        return np.concatenate([layer, alpha[..., None]], axis=2)
    return layer


def mask_from_layers(layers: Iterable[np.ndarray] | None, shape: tuple[int, int]) -> np.ndarray:
    """The hole painted in an editor: any painted pixel (alpha > 0) of any layer, resized to the
    image's ``shape`` (a full-resolution pixel is hole when any canvas pixel over it is)."""
    painted = None
    for layer in layers or ():
        if layer is None:
            continue
        alpha = _rgba(layer)[..., 3] > 0
        painted = alpha if painted is None else (painted | alpha)
    if painted is None:
        return np.zeros(tuple(shape), np.float32)
    return resize_binary(painted.astype(np.float32), shape)


def strokes_from_layers(
    layers: Iterable[np.ndarray] | None,
    shape: tuple[int, int],
    colors: dict[str, Sequence[int]],
) -> dict[str, np.ndarray]:
    """Painted pixels of each brush colour, resized to ``shape`` (area > 0).

    Each painted pixel (alpha > 0) goes to the nearest of ``colors`` (name -> RGB), so
    anti-aliased stroke borders are classified too.
    """
    names = list(colors)
    palette = np.array([colors[n] for n in names], dtype=np.float32)
    out = {n: np.zeros(tuple(shape), np.float32) for n in names}
    for layer in layers or ():
        if layer is None:
            continue
        rgba = _rgba(layer)
        painted = rgba[..., 3] > 0
        if not painted.any():
            continue
        rgb = rgba[..., :3].astype(np.float32)
        dist = ((rgb[:, :, None, :] - palette[None, None]) ** 2).sum(axis=-1)
        nearest = dist.argmin(axis=-1)
        for i, n in enumerate(names):
            hit = resize_binary((painted & (nearest == i)).astype(np.float32), shape)
            out[n] = np.maximum(out[n], hit)
    return out


def thin_strokes(strokes: np.ndarray) -> np.ndarray:
    """Brush strokes -> one-pixel centre lines (skeleton), like the Canny edges the inpainting
    network was trained on."""
    from skimage.morphology import skeletonize

    strokes = np.asarray(strokes) > 0.5
    if not strokes.any():
        return strokes.astype(np.float32)
    return skeletonize(strokes).astype(np.float32)


def mask_to_layer(mask: np.ndarray, shape: tuple[int, int], color=(255, 0, 255, 160)):
    """A mask as an RGBA editor layer of ``shape`` (so an uploaded mask file can be edited)."""
    small = resize_binary(mask, shape) > 0.5
    layer = np.zeros((*shape, 4), np.uint8)
    layer[small] = color
    return layer


# --------------------------------------------------------------------------- views
def mask_overlay(image: np.ndarray, mask: np.ndarray, color=(255, 0, 255)) -> np.ndarray:
    """The image with its hole painted (the "before" view)."""
    out = image.copy()
    hole = resize_binary(mask, image.shape[:2]) > 0.5
    out[hole] = (0.35 * out[hole] + 0.65 * np.array(color)).astype(np.uint8)
    return out


def edge_view(maps: EdgeMaps, edge: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The edge editor's background: the known image faded with its edges, the hole pale blue
    with the edges the network will get, black lines; enlarged to ``shape`` (nearest)."""
    img = maps.image.astype(np.float32)
    faded = 0.4 * img + 0.6 * 255.0
    hole = maps.mask[..., None]
    base = faded * (1.0 - hole) + np.array([226.0, 238.0, 255.0]) * hole
    e = np.clip(edge, 0, 1)[..., None]
    view = (base * (1.0 - e)).round().astype(np.uint8)
    if shape is not None:
        view = resize_image(view, shape)
    return view


# --------------------------------------------------------------------------- inpaint
def inpaint(
    predictor: Any,
    image: np.ndarray,
    mask: np.ndarray,
    edge: np.ndarray | None = None,
) -> np.ndarray:
    """Inpaint ``image`` (uint8 ``(H, W, 3)``) in ``mask`` (``(H, W)``, 1 = hole) through the
    predictor (any size; above ``max_side`` its resize-and-paste-back strategy). ``edge``: the
    working-resolution edge map of an edge-guided model (``None``: the model's own edges).

    Returns the uint8 composite at full resolution; the known pixels are the input's, bit-exact.

    Raises:
        AppError: empty or full hole; an edge map of the wrong size; edges for a model that
            takes none.
    """
    check_hole(mask)
    full = image.shape[:2]
    mask = (np.asarray(mask, dtype=np.float32) > 0.5).astype(np.float32)
    if mask.shape != tuple(full):
        raise AppError(f"mask is {mask.shape[::-1]} but the image is {full[::-1]} (W x H)")
    extras: dict[str, torch.Tensor] = {}
    if edge is not None:
        if not edge_guided(predictor.model):
            raise AppError(f"{predictor.name} takes no edge map: inpaint from the mask alone")
        work = working_size(full, predictor.max_side)
        if edge.shape != tuple(work):
            raise AppError(
                f"the edge map is {edge.shape[1]}x{edge.shape[0]} but this image is inpainted at "
                f"{work[1]}x{work[0]}: predict the edges again"
            )
        name = "edge_sketch" if sketch_guided(predictor.model) else "edge"
        extras[name] = _mask_tensor(edges_for_predictor(edge, full))
    from inpaintzoo.data import tensor_to_image

    result = predictor(_to_tensor(image), _mask_tensor(mask), **extras)
    out = tensor_to_image(result["composite"])
    return np.where(mask[..., None] > 0.5, out, image)


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 ``(H, W, 3)`` image or a float ``(H, W)`` map in [0, 1] as a PNG."""
    from PIL import Image

    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255.0).round().astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")
    return path
