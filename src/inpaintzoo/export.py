"""Export a trained method's networks: safetensors weights and ONNX graphs.

* :func:`export_safetensors` / :func:`load_safetensors`: the inference networks' weights
  (``<net>.<param>`` keys) plus the method name and constructor hyperparameters in the file's
  metadata. Safetensors holds tensors only: loading it can never run code.
* :func:`export_onnx`: one ONNX graph per inference network (e.g. EdgeConnect's
  ``edge_generator.onnx`` and ``inpaint_generator.onnx``), with dynamic batch / height / width,
  plus ``inpaintzoo_onnx.json`` (method, hyperparameters, nets, parity numbers). Each graph also
  carries the method and hyperparameters in its ONNX metadata. When onnxruntime is installed the
  export checks each graph against PyTorch on a random input (``max_abs_diff``).
* :func:`load_onnx`: the method's module with every inference network replaced by an
  onnxruntime session (:class:`OnnxNet`). The method's own glue (Canny edges, compositing,
  padding in :class:`~inpaintzoo.predictor.Predictor`) stays in PyTorch, so every method whose
  networks export runs from ONNX through the same predictor.

Spectral normalisation (a parametrization whose power iteration uses ``aten::vdot``, which the
ONNX exporter does not support) is folded into plain weights first: in eval mode the normalised
weight is a constant, so the graph computes exactly what the module computes.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils._pytree import tree_flatten, tree_unflatten, treespec_dumps, treespec_loads

from inpaintzoo.utils.hparams import split_hparams

log = logging.getLogger(__name__)

__all__ = [
    "MANIFEST",
    "OnnxNet",
    "export_onnx",
    "export_safetensors",
    "load_onnx",
    "load_safetensors",
    "net_example_inputs",
    "onnxruntime_available",
]

#: the manifest written next to the ONNX graphs
MANIFEST = "inpaintzoo_onnx.json"


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _require(module: str, extra: str = "export") -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{module} is needed for this; install it with `pip install inpaintzoo[{extra}]` "
            f"(or `pip install {module}`)"
        ) from err


def _method_hparams(model: nn.Module) -> tuple[str, str, dict[str, Any]]:
    """``(method, variant, constructor kwargs)`` of an inpaintzoo module."""
    hparams = dict(getattr(model, "hparams", {}) or {})
    method = hparams.get("method") or getattr(model, "method_name", None)
    if not method or method == "base":
        raise ValueError(f"{type(model).__name__} is not a registered inpaintzoo method")
    variant, kwargs = split_hparams(hparams, default_variant=getattr(model, "variant", "full"))
    return str(method), str(variant), kwargs


def _build(method: str, variant: str, kwargs: dict[str, Any]) -> nn.Module:
    from inpaintzoo.zoo import create_model

    return create_model(method, variant=variant, **kwargs)


def _inference_nets(model: nn.Module, nets: Iterable[str] | None = None) -> tuple[str, ...]:
    names = tuple(nets) if nets is not None else tuple(getattr(model, "inference_nets", ()))
    if not names:
        raise ValueError(f"{type(model).__name__} names no inference_nets to export")
    for name in names:
        if not isinstance(getattr(model, name, None), nn.Module):
            raise ValueError(f"{type(model).__name__} has no network {name!r}")
    return names


# ---------------------------------------------------------------------- safetensors
def export_safetensors(
    model: nn.Module, path: str | Path, nets: Iterable[str] | None = None
) -> Path:
    """Write the inference networks' weights (and buffers) to ``path`` (``.safetensors``).

    Keys are ``<net>.<state-dict key>``; the metadata holds ``format=inpaintzoo``, the method,
    variant, constructor hyperparameters (JSON) and the nets. Written atomically.
    """
    from safetensors.torch import save

    from inpaintzoo.utils.io import atomic_write_bytes

    method, variant, kwargs = _method_hparams(model)
    names = _inference_nets(model, nets)
    tensors = {
        f"{name}.{key}": value.detach().cpu().contiguous().clone()
        for name in names
        for key, value in getattr(model, name).state_dict().items()
    }
    metadata = {
        "format": "inpaintzoo",
        "method": method,
        "variant": variant,
        "hparams": json.dumps(kwargs),
        "nets": json.dumps(list(names)),
    }
    return atomic_write_bytes(path, save(tensors, metadata=metadata))


def load_safetensors(
    path: str | Path, expected: str | None = None, map_location: str = "cpu"
) -> nn.Module:
    """Build the method from a :func:`export_safetensors` file and load its networks (strict).

    Raises:
        FileNotFoundError: no such file. ValueError: not an inpaintzoo export, another method
        than ``expected``, or keys that do not match the method's networks.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device=map_location) as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"cannot read {path} as safetensors: {err}") from err
    if metadata.get("format") != "inpaintzoo" or "method" not in metadata:
        raise ValueError(f"{path} is not an inpaintzoo safetensors export (no method metadata)")
    method = metadata["method"]
    if expected is not None and method != expected:
        raise ValueError(f"{path} holds {method!r} weights, but {expected!r} was requested")
    model = _build(method, metadata.get("variant", "full"), json.loads(metadata["hparams"]))
    for name in json.loads(metadata["nets"]):
        prefix = f"{name}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            getattr(model, name).load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{path}: weights of {name!r} do not fit {method!r}: {err}") from err
    return model.eval()


# ---------------------------------------------------------------------- ONNX
@torch.no_grad()
def net_example_inputs(
    model: nn.Module, size: int = 64, nets: Iterable[str] | None = None
) -> dict[str, tuple[torch.Tensor, ...]]:
    """The positional inputs each inference network receives in one ``model.inpaint`` call on
    a random ``size`` x ``size`` image with a centred square hole (found with forward hooks)."""
    names = _inference_nets(model, nets)
    seen: dict[str, tuple[torch.Tensor, ...]] = {}
    handles = []
    for name in names:

        def hook(module, args, kwargs, name=name):
            if kwargs:
                raise ValueError(f"{name} is called with keyword arguments; cannot export it")
            seen.setdefault(name, tuple(a.detach().clone() for a in args))

        handles.append(getattr(model, name).register_forward_pre_hook(hook, with_kwargs=True))
    try:
        multiple = int(getattr(model, "size_multiple", 1))
        size = max(size, int(getattr(model, "min_size", 1)))
        size += (-size) % multiple
        generator = torch.Generator().manual_seed(0)
        image = torch.rand(1, 3, size, size, generator=generator)
        mask = torch.zeros(1, 1, size, size)
        mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1.0
        model.eval()
        model.inpaint(image, mask)
    finally:
        for handle in handles:
            handle.remove()
    missing = [n for n in names if n not in seen]
    if missing:
        raise ValueError(f"networks {missing} are not used by {type(model).__name__}.inpaint")
    return seen


def _fold_parametrizations(net: nn.Module) -> nn.Module:
    """Replace parametrized weights (e.g. spectral norm) by their current value, in place."""
    targets = [m for m in net.modules() if parametrize.is_parametrized(m)]
    for module in targets:
        for name in list(module.parametrizations.keys()):
            parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return net


def _fresh_copy(model: nn.Module) -> nn.Module:
    """A separate instance with the same weights (deepcopy breaks removing parametrizations)."""
    method, variant, kwargs = _method_hparams(model)
    clone = _build(method, variant, kwargs)
    clone.load_state_dict(model.state_dict())
    return clone.eval()


def export_onnx(
    model: nn.Module,
    out_dir: str | Path,
    nets: Iterable[str] | None = None,
    size: int = 64,
    opset: int = 18,
    check: bool = True,
    atol: float = 1e-4,
) -> dict[str, Any]:
    """Export each inference network to ``out_dir/<net>.onnx`` and write the manifest.

    Inputs are named ``input0, input1, ...``, outputs ``output0, ...``; batch, height and width
    are dynamic. With ``check`` (and onnxruntime installed) each graph runs on a random input of
    another size than the traced one and must match PyTorch within ``atol`` (max abs diff).

    Returns the manifest dict (also written to ``out_dir/inpaintzoo_onnx.json``).
    """
    onnx = _require("onnx")
    from inpaintzoo.utils.io import atomic_write_text

    method, variant, kwargs = _method_hparams(model)
    reason = getattr(getattr(model, "contract", None), "onnx", None)
    if reason:
        raise RuntimeError(
            f"{method} does not export to ONNX: {reason}. Its safetensors export works "
            "(inpaintzoo-export ... 'formats=[safetensors]')"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = _inference_nets(model, nets)
    clone = _fresh_copy(model)
    examples = net_example_inputs(clone, size=size, nets=names)
    manifest: dict[str, Any] = {
        "format": "inpaintzoo-onnx",
        "version": 1,
        "method": method,
        "variant": variant,
        "hparams": kwargs,
        "opset": opset,
        "nets": {},
    }
    for name in names:
        net = _fold_parametrizations(getattr(clone, name)).eval()
        args = examples[name]
        with torch.no_grad():
            outputs = net(*args)
        # nested outputs (tuples, dicts of lists) are flattened into the graph's outputs; the
        # structure is saved so that OnnxNet returns what the PyTorch network returns
        leaves, tree = tree_flatten(outputs)
        n_out = len(leaves)
        inputs = [f"input{i}" for i in range(len(args))]
        output_names = [f"output{i}" for i in range(n_out)]
        # inputs share H and W; each output gets its own names (multi-scale outputs differ)
        axes = {k: {0: "batch", 2: "height", 3: "width"} for k in inputs}
        axes.update({k: {0: "batch", 2: f"{k}_height", 3: f"{k}_width"} for k in output_names})
        path = out_dir / f"{name}.onnx"
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            torch.onnx.export(
                net,
                args,
                str(tmp),
                input_names=inputs,
                output_names=output_names,
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
        except Exception as err:
            tmp.unlink(missing_ok=True)
            raise RuntimeError(
                f"cannot export {name} of {method!r} to ONNX (opset {opset}, dynamic batch and "
                f"size): {type(err).__name__}: {str(err).splitlines()[0][:300]}. Its safetensors "
                "export works for every method."
            ) from err
        graph = onnx.load(str(tmp))
        for key, value in {
            "inpaintzoo.method": method,
            "inpaintzoo.variant": variant,
            "inpaintzoo.net": name,
            "inpaintzoo.hparams": json.dumps(kwargs),
        }.items():
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(graph)
        onnx.save(graph, str(tmp))
        tmp.replace(path)
        info: dict[str, Any] = {
            "file": path.name,
            "inputs": {k: list(a.shape[1:2]) for k, a in zip(inputs, args)},
            "outputs": output_names,
            "output_tree": treespec_dumps(tree),
        }
        if check and onnxruntime_available():
            multiple = int(getattr(model, "size_multiple", 1))
            info["max_abs_diff"] = onnx_parity(net, path, args, multiple=multiple)
            if info["max_abs_diff"] > atol:
                raise RuntimeError(
                    f"ONNX export of {name} differs from PyTorch by {info['max_abs_diff']:.2e} "
                    f"(> {atol:.0e})"
                )
        manifest["nets"][name] = info
        log.info("exported %s -> %s %s", name, path, info.get("max_abs_diff", ""))
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2))
    return manifest


@torch.no_grad()
def onnx_parity(
    net: nn.Module, path: str | Path, args: Sequence[torch.Tensor], multiple: int = 1
) -> float:
    """Max abs difference between ``net`` and the ONNX graph at ``path`` on random inputs of
    the example's channels, batch 2 and a size other than the traced one (still a multiple of
    the network's ``multiple``)."""
    generator = torch.Generator().manual_seed(1)
    h, w = args[0].shape[-2:]
    step = multiple * math.ceil(8 / multiple)
    shape_hw = (h + step, w + 2 * step) if h >= 16 else (h, w)
    inputs = tuple(
        torch.rand(2, a.shape[1], *shape_hw, generator=generator) if a.ndim == 4 else a
        for a in args
    )
    reference = tree_flatten(net(*inputs))[0]
    outputs = tree_flatten(OnnxNet(path)(*inputs))[0]
    return max(float((a - b).abs().max()) for a, b in zip(reference, outputs, strict=True))


class OnnxNet(nn.Module):
    """An ONNX graph behind the interface of the PyTorch network it replaces.

    ``forward(*tensors)`` feeds ``input0, input1, ...`` and returns a tensor (one output) or a
    tuple, on the first input's device; with ``output_tree`` (the exporter's saved pytree
    structure) it returns the network's own nested structure (e.g. a dict of lists).
    onnxruntime runs on CPU unless ``providers`` says otherwise (e.g.
    ``["CUDAExecutionProvider", "CPUExecutionProvider"]``).
    """

    def __init__(
        self,
        path: str | Path,
        providers: Sequence[str] | None = None,
        output_tree: str | None = None,
    ) -> None:
        super().__init__()
        self.output_tree = treespec_loads(output_tree) if output_tree else None
        ort = _require("onnxruntime")
        self.path = str(path)
        available = ort.get_available_providers()
        wanted = list(providers or ["CPUExecutionProvider"])
        self.session = ort.InferenceSession(
            self.path, providers=[p for p in wanted if p in available] or available
        )
        self.input_names = [i.name for i in self.session.get_inputs()]

    def forward(self, *tensors: torch.Tensor):
        if len(tensors) != len(self.input_names):
            raise ValueError(
                f"{self.path} takes {len(self.input_names)} inputs, got {len(tensors)}"
            )
        device = tensors[0].device
        feeds = {
            name: t.detach().to("cpu", torch.float32).contiguous().numpy()
            for name, t in zip(self.input_names, tensors)
        }
        outs = [torch.from_numpy(o).to(device) for o in self.session.run(None, feeds)]
        if self.output_tree is not None:
            return tree_unflatten(outs, self.output_tree)
        return outs[0] if len(outs) == 1 else tuple(outs)


def _manifest_path(path: Path) -> Path:
    if path.is_dir():
        return path / MANIFEST
    if path.suffix == ".onnx" or path.name != MANIFEST:
        return path.with_name(MANIFEST)
    return path


def load_onnx(
    path: str | Path, expected: str | None = None, providers: Sequence[str] | None = None
) -> nn.Module:
    """The method's module with its inference networks running in onnxruntime.

    ``path``: the export folder, its ``inpaintzoo_onnx.json`` or any ``.onnx`` file in it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"ONNX export not found: {path}")
    manifest_path = _manifest_path(path)
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"{manifest_path} not found: export with `inpaintzoo-export` (it writes the .onnx "
            "graphs and this manifest into one folder)"
        )
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != "inpaintzoo-onnx":
        raise ValueError(f"{manifest_path} is not an inpaintzoo ONNX manifest")
    method = manifest["method"]
    if expected is not None and method != expected:
        raise ValueError(f"{path} is a {method!r} export, but {expected!r} was requested")
    model = _build(method, manifest.get("variant", "full"), dict(manifest["hparams"]))
    for name, info in manifest["nets"].items():
        setattr(
            model,
            name,
            OnnxNet(
                manifest_path.parent / info["file"],
                providers=providers,
                output_tree=info.get("output_tree"),
            ),
        )
    model.eval()
    model.onnx_export = str(manifest_path.parent)
    return model
