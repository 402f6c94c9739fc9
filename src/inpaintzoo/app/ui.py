"""The gradio page of ``inpaintzoo-app``: widgets and event wiring only.

Every handler converts widget values, calls :mod:`inpaintzoo.app.pipeline` and turns the
result into widget updates. Any error is caught: an :class:`~inpaintzoo.app.pipeline.AppError`
is shown as is in the status box, anything else as a one-line message (the traceback goes to
the server log), and the server keeps serving.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from inpaintzoo.app import pipeline as P

log = logging.getLogger("inpaintzoo.app")

#: Edge-editor brush colours: draw an edge / erase an edge (strokes are classified by colour).
DRAW_RGB = (0, 200, 0)
ERASE_RGB = (255, 48, 48)
MASK_COLOR = "#ff00ff"

INTRO = """\
# inpaintzoo: interactive inpainting

1. **Image**: upload one (any size) or pick an embedded sample photo.
2. **Hole**: paint it with the brush, or upload a mask file (choose its polarity).
3. **Edges** (edge-guided models): *Predict edges*, then draw edges in green or erase them in red
   (EdgeConnect completes the hole's edges; DeepFill v2 with its sketch channel starts from an
   empty hole: the strokes are its sketch).
4. **Object replacement** (optional): upload a second image; its Canny edges are placed in the
   hole (move and scale them with the sliders); *Predict edges* puts them in the sketch editor,
   refine them with the brush.
5. **Inpaint**: before/after view and the full-resolution PNG (known pixels unchanged).
"""


def _rgb_hex(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _status(text: str, ok: bool = True) -> str:
    return text if ok else f"**Error:** {text}"


def guarded(n_outputs: int, clear: tuple[int, ...] = ()) -> Callable:
    """Run a handler; on failure show the message in the status box (the first output), empty
    the outputs at the indices ``clear`` (a rejected upload) and leave the others unchanged."""
    import gradio as gr

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def handler(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except P.AppError as err:
                message = _status(str(err), ok=False)
            except Exception as err:  # noqa: BLE001 - the page must keep working
                log.exception("unexpected error in %s", fn.__name__)
                message = _status(
                    f"unexpected {type(err).__name__}: {err} (details in the server log)", False
                )
            if n_outputs == 1:
                return message
            return (message, *[None if i in clear else gr.skip() for i in range(1, n_outputs)])

        return handler

    return wrap


class Models:
    """The models the page can serve, by label (thread-safe: the page can load more)."""

    def __init__(self, entries: Sequence[P.ModelEntry], device: str | None, max_side: int | None):
        self._entries = {e.label: e for e in entries}
        self._lock = threading.Lock()
        self.device = device
        self.max_side = max_side

    @property
    def labels(self) -> list[str]:
        return list(self._entries)

    def get(self, label: str | None) -> P.ModelEntry:
        if not label or label not in self._entries:
            raise P.AppError("no model selected: choose one in the model list (or load one)")
        return self._entries[label]

    def load(self, source: str) -> P.ModelEntry:
        entry = P.load_model(source, device=self.device, max_side=self.max_side)
        with self._lock:
            self._entries[entry.label] = entry
        return entry


def _editor_value(background: np.ndarray | None, layers: Sequence[np.ndarray] = ()) -> dict:
    return {"background": background, "layers": list(layers), "composite": None}


def _layers(value: dict | None) -> list[np.ndarray]:
    if not value:
        return []
    return [layer for layer in (value.get("layers") or []) if layer is not None]


def _require_image(state: dict) -> np.ndarray:
    image = state.get("image")
    if image is None:
        raise P.AppError("no image yet: upload one or pick a sample photo first")
    return image


def _hole(state: dict, mask_editor: dict | None) -> np.ndarray:
    image = _require_image(state)
    mask = P.mask_from_layers(_layers(mask_editor), image.shape[:2])
    P.check_hole(mask)
    return mask


def _edge_strokes(maps: P.EdgeMaps, edge_editor: dict | None) -> dict[str, np.ndarray]:
    strokes = P.strokes_from_layers(
        _layers(edge_editor), maps.shape, {"draw": DRAW_RGB, "erase": ERASE_RGB}
    )
    strokes["draw"] = P.thin_strokes(strokes["draw"])
    return strokes


def _object_edges(state: dict, maps: P.EdgeMaps, sigma: float) -> np.ndarray | None:
    obj = state.get("object")
    placement = state.get("placement")
    if obj is None or placement is None:
        return None
    x, y, size = placement
    h, w = maps.shape
    center = (x / 100.0 * w, y / 100.0 * h)
    return P.place_object_edges(obj, maps.shape, center, size / 100.0 * max(h, w), sigma)


def build_app(
    models: Models,
    output_dir: str | Path | None = None,
    max_pixels: int = P.DEFAULT_MAX_PIXELS,
):
    """The ``gr.Blocks`` page over ``models``; result files are written under ``output_dir``."""
    import gradio as gr

    out_root = Path(output_dir or tempfile.mkdtemp(prefix="inpaintzoo-app-"))
    out_root.mkdir(parents=True, exist_ok=True)
    samples = P.sample_photos()
    labels = models.labels

    def editor_display(state: dict) -> tuple[int, int]:
        return P.display_size(_require_image(state).shape[:2])

    # ---------------------------------------------------------------- handlers
    def set_image(image: np.ndarray, name: str, state: dict):
        state = {"image": image, "name": name}
        bg = P.resize_image(image, P.display_size(image.shape[:2]))
        h, w = image.shape[:2]
        note = f"Loaded **{name}** ({w}x{h}). Now paint the hole (or upload a mask file)."
        return note, state, _editor_value(bg), None, None, None, None

    @guarded(8, clear=(7,))
    def on_image_file(path: str | None, state: dict):
        if not path:
            return _status("image cleared"), {}, None, None, None, None, None, gr.skip()
        return (*set_image(P.load_image(path, max_pixels), Path(path).name, state), gr.skip())

    @guarded(8)
    def on_sample(name: str | None, state: dict):
        if not name:
            return (_status("choose a sample photo"), *[gr.skip()] * 7)
        return (*set_image(P.load_image(samples[name], max_pixels), name, state), None)

    @guarded(3, clear=(2,))
    def on_mask_file(path: str | None, polarity: str, state: dict):
        if not path:
            return _status("mask file cleared (painted strokes stay)"), gr.skip(), gr.skip()
        image = _require_image(state)
        mask = P.load_mask_file(path, image.shape[:2], polarity=polarity)
        ratio = P.check_hole(mask)
        display = editor_display(state)
        bg = P.resize_image(image, display)
        layer = P.mask_to_layer(mask, display)
        note = (
            f"Mask **{Path(path).name}** loaded ({ratio:.1%} hole, {polarity}); you can paint "
            "or erase on it."
        )
        return note, _editor_value(bg, [layer]), gr.skip()

    @guarded(3)
    def on_model(label: str | None):
        entry = models.get(label)
        guided = entry.edge_guided
        how = (
            "edge-guided: the edge tools are on"
            if guided
            else "inpaints from the mask alone: the edge tools are off"
        )
        return (
            f"Model **{entry.label}** ({how}).",
            gr.update(interactive=guided),
            gr.update(interactive=guided),
        )

    @guarded(2)
    def on_load_model(source: str | None):
        entry = models.load(source or "")
        return (
            f"Loaded **{entry.label}**.",
            gr.update(choices=models.labels, value=entry.label),
        )

    @guarded(4)
    def on_predict_edges(label: str, mask_editor: dict, state: dict, progress=gr.Progress()):  # noqa: B008
        entry = models.get(label)
        if not entry.edge_guided:
            raise P.AppError(
                f"{entry.label} inpaints from the mask alone: press Inpaint (no edges to edit)"
            )
        image = _require_image(state)
        mask = _hole(state, mask_editor)
        progress(0.2, desc="predicting edges")
        maps = P.predict_edges(entry.predictor, image, mask)
        state = {**state, "maps": maps, "maps_model": label}
        edge = _placed_edges(entry, state, maps)
        view = P.edge_view(maps, edge, P.display_size(maps.shape))
        h, w = maps.shape
        with_object = " with the object's edges" if state.get("object") is not None else ""
        note = (
            f"Edges predicted at {w}x{h} ({mask.mean():.1%} hole){with_object}. Draw edges in "
            "green, erase them in red, then press Inpaint."
        )
        return note, state, _editor_value(view), _edge_preview(maps, edge)

    def _sigma(entry: P.ModelEntry) -> float:
        return P.structure_sigma(entry.predictor.model)

    def _edge_preview(maps: P.EdgeMaps, edge: np.ndarray) -> np.ndarray:
        return P.resize_image(P.edge_view(maps, edge), P.display_size(maps.shape, hi=512))

    def _placed_edges(entry: P.ModelEntry, state: dict, maps: P.EdgeMaps) -> np.ndarray:
        return P.compose_edges(
            maps,
            object_edges=_object_edges(state, maps, _sigma(entry)),
            object_replaces=bool(state.get("object_replaces", True)),
        )

    # Object placement redraws the preview only: the sketch editor is refreshed by "Predict
    # edges" (updating an ImageEditor that holds strokes can stall gradio's canvas).
    def _preview(label: str, state: dict):
        maps = state.get("maps")
        if maps is None:
            return gr.skip()
        return _edge_preview(maps, _placed_edges(models.get(label), state, maps))

    @guarded(7, clear=(6,))
    def on_object(path: str | None, label: str, state: dict):
        state = dict(state)
        if not path:
            state.pop("object", None)
            state.pop("placement", None)
            skip = gr.skip()
            return "Object removed.", state, _preview(label, state), skip, skip, skip, skip
        obj = P.load_image(path, max_pixels)
        maps = state.get("maps")
        if maps is None:
            raise P.AppError("predict the edges first: the object is placed into the hole")
        cx, cy, size = P.fit_object(obj.shape[:2], maps.mask)
        h, w = maps.shape
        placement = tuple(  # the sliders' step
            round(2.0 * v) / 2.0 for v in (100.0 * cx / w, 100.0 * cy / h, 100.0 * size / max(h, w))
        )
        state.update(object=obj, placement=placement)
        note = (
            f"Object **{Path(path).name}** placed in the hole (see the edges the model gets): "
            "move and scale it with the sliders, then press Predict edges to sketch on it."
        )
        return note, state, _preview(label, state), *placement, gr.skip()

    @guarded(3)
    def on_place(x: float, y: float, size: float, replace: bool, label: str, state: dict):
        state = dict(state)
        state["object_replaces"] = bool(replace)
        if state.get("object") is None:
            return gr.skip(), state, gr.skip()
        state["placement"] = (float(x), float(y), float(size))
        note = (
            f"Object at x {x:.0f} %, y {y:.0f} %, size {size:.0f} %: press Predict edges to "
            "sketch on it, or Inpaint."
        )
        return note, state, _preview(label, state)

    @guarded(5)
    def on_inpaint(
        label: str,
        mask_editor: dict,
        edge_editor: dict,
        state: dict,
        progress=gr.Progress(),  # noqa: B008
    ):
        entry = models.get(label)
        image = _require_image(state)
        mask = _hole(state, mask_editor)
        edge = None
        notes = []
        preview = gr.skip()
        if entry.edge_guided:
            maps = state.get("maps")
            work_mask = P.resize_binary(
                mask, P.working_size(image.shape[:2], entry.predictor.max_side)
            )
            if (
                maps is None
                or state.get("maps_model") != label
                or (maps.mask.shape != work_mask.shape or not np.array_equal(maps.mask, work_mask))
            ):
                progress(0.1, desc="predicting edges")
                if maps is not None:
                    notes.append("the hole or model changed, so its edges were predicted again")
                maps = P.predict_edges(entry.predictor, image, mask)
                state = {**state, "maps": maps, "maps_model": label}
            strokes = _edge_strokes(maps, edge_editor)
            edge = P.compose_edges(
                maps,
                drawn=strokes["draw"],
                erased=strokes["erase"],
                object_edges=_object_edges(state, maps, _sigma(entry)),
                object_replaces=bool(state.get("object_replaces", True)),
            )
            inside = maps.mask > 0.5
            drawn = int((strokes["draw"] > 0.5)[inside].sum())
            erased = int((strokes["erase"] > 0.5)[inside].sum())
            notes.append(f"edge edits in the hole: {drawn} px drawn, {erased} px erased")
            preview = _edge_preview(maps, edge)
            if not (drawn or erased or state.get("object") is not None):
                edge = None  # unedited: the model builds its own map (same edges, exact padding)
        progress(0.5, desc=f"inpainting with {entry.label}")
        result = P.inpaint(entry.predictor, image, mask, edge)
        folder = out_root / uuid.uuid4().hex[:12]
        stem = Path(state.get("name") or "image").stem
        files = [
            str(P.save_png(result, folder / f"{stem}_inpainted.png")),
            str(P.save_png(mask, folder / f"{stem}_mask.png")),
        ]
        if entry.edge_guided:
            used = P.compose_edges(maps) if edge is None else edge
            files.append(str(P.save_png(used, folder / f"{stem}_edges.png")))
        h, w = image.shape[:2]
        note = f"Inpainted {w}x{h} with **{entry.label}** ({mask.mean():.1%} hole)"
        note += "; " + "; ".join(notes) + "." if notes else "."
        before = P.mask_overlay(image, mask)
        return note, (before, result), files, preview, state

    # ---------------------------------------------------------------- layout
    with gr.Blocks(title="inpaintzoo app") as demo:
        state = gr.State({})
        gr.Markdown(INTRO)
        status = gr.Markdown("Pick a model and an image to start.", elem_id="status")
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                model = gr.Dropdown(
                    choices=labels,
                    value=labels[0] if labels else None,
                    label="Model",
                    elem_id="model",
                )
                with gr.Accordion("Load another checkpoint", open=False):
                    ckpt_box = gr.Textbox(
                        label="Checkpoint path (.ckpt, .safetensors, ONNX export) or baseline",
                        elem_id="ckpt_path",
                    )
                    load_btn = gr.Button("Load", elem_id="load_model")
                sample = gr.Dropdown(
                    choices=list(samples), value=None, label="Sample photo", elem_id="sample"
                )
                image_file = gr.File(label="Image file", type="filepath", elem_id="image_file")
                mask_file = gr.File(
                    label="Mask file (optional)", type="filepath", elem_id="mask_file"
                )
                polarity = gr.Radio(
                    ["auto", "white_hole", "black_hole"],
                    value="auto",
                    label="Mask polarity",
                    elem_id="polarity",
                )
            with gr.Column(scale=2):
                mask_editor = gr.ImageEditor(
                    label="Image: paint the hole",
                    type="numpy",
                    image_mode="RGBA",
                    sources=(),
                    transforms=(),
                    layers=False,
                    brush=gr.Brush(colors=[(MASK_COLOR, 0.6)], default_size=12, color_mode="fixed"),
                    format="png",
                    elem_id="mask_editor",
                    height=560,
                )
        with gr.Row():
            with gr.Column(scale=2):
                edges_btn = gr.Button("Predict edges", elem_id="predict_edges")
                edge_editor = gr.ImageEditor(
                    label="Edges: draw (green) or erase (red) inside the hole",
                    type="numpy",
                    image_mode="RGBA",
                    sources=(),
                    transforms=(),
                    layers=False,
                    brush=gr.Brush(
                        colors=[_rgb_hex(DRAW_RGB), _rgb_hex(ERASE_RGB)],
                        default_size=3,
                        color_mode="fixed",
                    ),
                    format="png",
                    elem_id="edge_editor",
                    height=560,
                )
            with gr.Column(scale=1, min_width=280):
                with gr.Accordion("Object replacement", open=True):
                    object_file = gr.File(
                        label="Second image (its edges go into the hole)",
                        type="filepath",
                        elem_id="object_file",
                    )
                    obj_x = gr.Slider(0, 100, value=50, step=0.5, label="x (% of width)")
                    obj_y = gr.Slider(0, 100, value=50, step=0.5, label="y (% of height)")
                    obj_size = gr.Slider(1, 200, value=30, step=0.5, label="size (% of image)")
                    obj_replace = gr.Checkbox(
                        value=True, label="object edges replace the predicted edges in the hole"
                    )
                edge_preview = gr.Image(
                    label="Edges the model gets", interactive=False, elem_id="edge_preview"
                )
        inpaint_btn = gr.Button("Inpaint", variant="primary", elem_id="inpaint")
        with gr.Row():
            before_after = gr.ImageSlider(
                label="Before / after", format="png", elem_id="before_after", max_height=640
            )
            downloads = gr.File(
                label="Download (full resolution PNG, mask, edges)",
                file_count="multiple",
                interactive=False,
                elem_id="downloads",
            )

        # ------------------------------------------------------------ events
        reset = [status, state, mask_editor, edge_editor, edge_preview, before_after, downloads]
        image_file.upload(on_image_file, [image_file, state], [*reset, image_file])
        image_file.clear(on_image_file, [image_file, state], [*reset, image_file])
        sample.input(on_sample, [sample, state], [*reset, image_file])
        mask_outputs = [status, mask_editor, mask_file]
        mask_file.upload(on_mask_file, [mask_file, polarity, state], mask_outputs)
        polarity.input(on_mask_file, [mask_file, polarity, state], mask_outputs)
        model.input(on_model, [model], [status, edges_btn, edge_editor])
        load_btn.click(on_load_model, [ckpt_box], [status, model]).then(
            on_model, [model], [status, edges_btn, edge_editor]
        )
        edges_btn.click(
            on_predict_edges,
            [model, mask_editor, state],
            [status, state, edge_editor, edge_preview],
        )
        object_outputs = [status, state, edge_preview, obj_x, obj_y, obj_size, object_file]
        object_file.upload(on_object, [object_file, model, state], object_outputs)
        object_file.clear(on_object, [object_file, model, state], object_outputs)
        place_inputs = [obj_x, obj_y, obj_size, obj_replace, model, state]
        for control in (obj_x, obj_y, obj_size):
            control.release(on_place, place_inputs, [status, state, edge_preview])
        obj_replace.input(on_place, place_inputs, [status, state, edge_preview])
        inpaint_btn.click(
            on_inpaint,
            [model, mask_editor, edge_editor, state],
            [status, before_after, downloads, edge_preview, state],
        )
        demo.load(on_model, [model], [status, edges_btn, edge_editor])
    demo.out_root = out_root  # where results go (the launcher allows gradio to serve it)
    return demo
