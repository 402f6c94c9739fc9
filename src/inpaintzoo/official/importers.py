"""Readers of the official release formats: files -> converted state dicts, checked, by name.

One reader per method with a PyTorch release. Each finds the files the authors publish, reads
them with ``torch.load(weights_only=True)`` (tensors and plain containers only: a pickle that
carries code is refused), checks that every file holds the network it claims to, and converts
every network's state dict **by name** with the method's ``convert_official_*`` function from
``inpaintzoo.nets``. Nothing here touches a model: :func:`inpaintzoo.official.load_official`
checks every converted dict against the built networks before loading any of them.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from inpaintzoo.official.errors import OfficialWeightsError, describe_keys
from inpaintzoo.utils.io import sha256_file

__all__ = [
    "OfficialWeights",
    "combined_sha256",
    "guess_network",
    "is_state_dict",
    "list_importers",
    "load_weights_file",
    "read_official",
    "single_weights_file",
]


@dataclass
class OfficialWeights:
    """What an importer read: converted state dicts per network attribute of the method's
    LightningModule, the files and their SHA-256, and the model options that reproduce the
    official inference."""

    method: str
    path: Path
    files: dict[str, str]  # file path (as read) -> sha256
    state_dicts: dict[str, dict[str, torch.Tensor]]  # network attribute -> converted dict
    sources: dict[str, str]  # network attribute -> "file[key]" it came from
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return combined_sha256(self.files)

    @property
    def label(self) -> str:
        """``official weights (<sha256>)``: how results and leaderboards name these weights."""
        return f"official weights ({self.sha256})"

    def describe(self) -> dict[str, Any]:
        """Plain-type provenance (stored in imported checkpoints)."""
        return {
            "method": self.method,
            "path": str(self.path),
            "files": {Path(f).name: sha for f, sha in self.files.items()},
            "sha256": self.sha256,
            "weights_source": self.label,
            "networks": {net: self.sources[net] for net in self.state_dicts},
            "options": dict(self.options),
            "notes": list(self.notes),
        }


def combined_sha256(files: Mapping[str, str]) -> str:
    """One file: its SHA-256. Several: SHA-256 of their ``sha256sum`` lines
    (``"<sha256>  <file name>\\n"``) sorted by file name."""
    if len(files) == 1:
        return next(iter(files.values()))
    lines = sorted(f"{sha}  {Path(name).name}\n" for name, sha in files.items())
    return hashlib.sha256("".join(lines).encode()).hexdigest()


# ----------------------------------------------------------------------------- safe reading
def single_weights_file(path: Path, what: str) -> Path:
    """``path`` when it is a file, else the one ``.pth``/``.pt`` file of the folder ``path``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        OfficialWeightsError: the folder holds no such file or several (listed; ``what`` says
            which file to give instead).
    """
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"official weights not found: {path} ({what})")
    found = sorted(p for p in path.iterdir() if p.suffix in (".pth", ".pt"))
    if len(found) != 1:
        listed = ", ".join(p.name for p in found[:8])
        raise OfficialWeightsError(
            f"{path}: give {what} itself; this folder holds {len(found)} .pth/.pt files"
            + (f": {listed}" if listed else ""),
            str(path),
        )
    return found[0]


def load_weights_file(path: str | Path) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with one-line errors.

    Raises:
        FileNotFoundError: no such file.
        OfficialWeightsError: the file carries pickled code (refused by the weights-only
            unpickler) or is corrupt/truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"official weights file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - every failure becomes one clear message
        text = str(err)
        if "Unsupported global" in text or "Unsupported class" in text:
            found = re.search(r"Unsupported (?:global|class):? ?(?:GLOBAL )?([\w.]+)", text)
            what = f" ({found.group(1)})" if found else ""
            raise OfficialWeightsError(
                f"refusing to load {path}: it contains pickled Python objects or code{what} that "
                "a weights-only load does not allow; official weights hold tensors only. Get "
                "the file again from the authors' download page",
                str(path),
            ) from err
        kind = type(err).__name__
        detail = text.splitlines()[0][:160] if text else kind
        if isinstance(err, EOFError | zipfile.BadZipFile) or "central directory" in text:
            detail = f"{kind}: {detail}" if text else kind
        raise OfficialWeightsError(
            f"cannot read {path}: not a PyTorch weights file, or corrupt/truncated ({detail}); "
            "download it again",
            str(path),
        ) from err


_SIGNATURES: list[tuple[str, str]] = [
    # (regex on a key, what a state dict with such keys is)
    (r"^(module\.)?ec_texture_1\.", "a CTSDG generator"),
    (r"^(module\.)?texture_branch\.conv1\.", "a CTSDG discriminator"),
    (r"^(module\.)?flow_column\.", "a StructureFlow texture generator (f_gen)"),
    (r"^(module\.)?(input_layer|content_param)\.", "a StructureFlow structure generator (s_gen)"),
    (r"^(module\.)?model_1\.model\.", "a StructureFlow discriminator"),
    (r"^(module\.)?encoder\.1\.weight_orig$", "an EdgeConnect edge generator (G1)"),
    (r"^(module\.)?encoder\.1\.weight$", "an EdgeConnect inpainting generator (G2)"),
    (r"^(module\.)?conv1\.0\.weight", "an EdgeConnect discriminator"),
    (r"^state_dict$", "an inpaintzoo / Lightning checkpoint (use it directly: ckpt=...)"),
]


def guess_network(keys: list[str]) -> str | None:
    """What a state dict (or checkpoint) with these keys most likely is, or None."""
    for pattern, what in _SIGNATURES:
        if any(re.search(pattern, k) for k in keys):
            return what
    return None


def is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())
    )


def _state_dict(payload: Any, key: str | None, path: Path, expected: str) -> dict:
    """The state dict ``payload[key]`` (``payload`` itself when ``key`` is None), checked."""
    obj = payload if key is None else (payload.get(key) if isinstance(payload, Mapping) else None)
    if is_state_dict(obj):
        return dict(obj)
    top = list(payload) if isinstance(payload, Mapping) else []
    what = guess_network([str(k) for k in top])
    if what is None and isinstance(payload, Mapping):
        inner = [v for v in payload.values() if isinstance(v, Mapping)]
        what = guess_network([str(k) for v in inner for k in v]) if inner else None
    where = f"a dict with key {key!r} holding" if key else ""
    found = f"top-level keys {describe_keys(map(str, top))}" if top else type(payload).__name__
    hint = f"; it looks like {what}" if what else ""
    raise OfficialWeightsError(
        f"{path} is not {expected}: expected {where} a state dict of tensors, found {found}{hint}",
        str(path),
        [str(k) for k in top],
    )


def _expect(sd: dict, path: Path, expected_what: str, accept: tuple[str, ...]) -> None:
    """Refuse a state dict that is clearly another network (named in the message)."""
    what = guess_network(list(sd))
    if what is not None and what not in accept:
        raise OfficialWeightsError(
            f"{path} holds {what}, not {expected_what}: check that you passed the right file",
            str(path),
            list(sd)[:8],
        )


def _convert(fn: Callable[..., dict], sd: dict, source: str, **kw: Any) -> dict:
    return fn(sd, source=source, **kw)


# ----------------------------------------------------------------------------- EdgeConnect
EDGECONNECT_FILES = {
    # file -> (network attribute, key in the file, what, required)
    "EdgeModel_gen.pth": ("edge_generator", "generator", "an EdgeConnect edge generator (G1)"),
    "InpaintingModel_gen.pth": (
        "inpaint_generator",
        "generator",
        "an EdgeConnect inpainting generator (G2)",
    ),
    "EdgeModel_dis.pth": ("edge_discriminator", "discriminator", "an EdgeConnect discriminator"),
    "InpaintingModel_dis.pth": (
        "inpaint_discriminator",
        "discriminator",
        "an EdgeConnect discriminator",
    ),
}


def _read_edgeconnect(path: Path) -> OfficialWeights:
    from inpaintzoo.nets.edgeconnect import convert_official_state_dict

    folder = path.parent if path.is_file() and path.name in EDGECONNECT_FILES else path
    if not folder.is_dir():
        raise FileNotFoundError(
            f"EdgeConnect official weights are a folder (e.g. checkpoints/places2/) with "
            f"EdgeModel_gen.pth and InpaintingModel_gen.pth; not found: {path}"
        )
    required = ("EdgeModel_gen.pth", "InpaintingModel_gen.pth")
    absent = [name for name in required if not (folder / name).is_file()]
    if absent:
        present = sorted(p.name for p in folder.iterdir() if p.is_file())
        raise OfficialWeightsError(
            f"{folder} lacks {', '.join(absent)} (the official EdgeConnect release has "
            f"EdgeModel_gen.pth, InpaintingModel_gen.pth and the two *_dis.pth); found: "
            f"{', '.join(present[:12]) or 'no files'}",
            str(folder),
            absent,
        )
    weights = OfficialWeights("edgeconnect", path, {}, {}, {}, {"inference_edges": "raw"})
    for name, (network, key, what) in EDGECONNECT_FILES.items():
        file = folder / name
        if not file.is_file():
            weights.notes.append(f"{name} absent: {network} keeps its initial weights")
            continue
        sd = _state_dict(load_weights_file(file), key, file, f"official {name}")
        accept = (what,) if "generator" in network else ("an EdgeConnect discriminator",)
        _expect(sd, file, what, accept)
        weights.state_dicts[network] = _convert(convert_official_state_dict, sd, f"{file}")
        weights.sources[network] = f"{name}[{key!r}]"
        weights.files[str(file)] = sha256_file(file)
    return weights


# ----------------------------------------------------------------------------- CTSDG
def _read_ctsdg(path: Path) -> OfficialWeights:
    from inpaintzoo.nets.ctsdg import (
        convert_official_discriminator_state_dict,
        convert_official_generator_state_dict,
    )

    file = single_weights_file(path, "the CTSDG checkpoint file (a .pt written by trainer.py)")
    payload = load_weights_file(file)
    weights = OfficialWeights("ctsdg", path, {}, {}, {})
    if is_state_dict(payload) and guess_network(list(payload)) == "a CTSDG generator":
        generator, key = dict(payload), None  # a bare generator state dict
        weights.notes.append(f"{file.name} is a bare generator state dict (no 'generator' key)")
    else:
        generator = _state_dict(payload, "generator", file, "an official CTSDG checkpoint")
        key = "generator"
    _expect(generator, file, "a CTSDG generator", ("a CTSDG generator",))
    weights.state_dicts["generator"] = convert_official_generator_state_dict(
        generator, source=f"{file}[{key!r}]" if key else str(file)
    )
    weights.sources["generator"] = f"{file.name}[{key!r}]" if key else file.name
    if isinstance(payload, Mapping) and key and payload.get("discriminator") is not None:
        disc = _state_dict(payload, "discriminator", file, "an official CTSDG checkpoint")
        _expect(disc, file, "a CTSDG discriminator", ("a CTSDG discriminator",))
        weights.state_dicts["discriminator"] = convert_official_discriminator_state_dict(
            disc, source=f"{file}['discriminator']"
        )
        weights.sources["discriminator"] = f"{file.name}['discriminator']"
    else:
        weights.notes.append("no discriminator in the file: it keeps its initial weights")
    weights.files[str(file)] = sha256_file(file)
    return weights


# ----------------------------------------------------------------------------- StructureFlow
_SF_SGEN = "a StructureFlow structure generator (s_gen)"
_SF_FGEN = "a StructureFlow texture generator (f_gen)"
_SF_DIS = "a StructureFlow discriminator"
STRUCTUREFLOW_NETS = {
    # official net_name -> (network attribute, converter network, what)
    "s_gen": ("structure_generator", "structure_generator", _SF_SGEN),
    "f_gen": ("texture_generator", "texture_generator", _SF_FGEN),
    "s_dis": ("structure_discriminator", "discriminator", _SF_DIS),
    "f_dis": ("texture_discriminator", "discriminator", _SF_DIS),
}


def _pick(folder: Path, net: str) -> Path | None:
    """``latest_net_<net>.pth`` if present, else the highest ``<iter>_net_<net>.pth``."""
    latest = folder / f"latest_net_{net}.pth"
    if latest.is_file():
        return latest
    numbered = []
    for p in folder.glob(f"*_net_{net}.pth"):
        prefix = p.name[: -len(f"_net_{net}.pth")]
        if prefix.isdigit():
            numbered.append((int(prefix), p))
    return max(numbered)[1] if numbered else None


def _read_structureflow(path: Path) -> OfficialWeights:
    from inpaintzoo.nets.structureflow import convert_official_state_dict

    folder = path
    if path.is_file():
        folder = path.parent
    elif (path / "checkpoints").is_dir() and not any(path.glob("*_net_*.pth")):
        folder = path / "checkpoints"  # the experiment folder (--path/--name) was given
    if not folder.is_dir():
        raise FileNotFoundError(
            f"StructureFlow official weights are a checkpoints/ folder with latest_net_s_gen.pth "
            f"and latest_net_f_gen.pth; not found: {path}"
        )
    weights = OfficialWeights("structureflow", path, {}, {}, {})
    chosen = {net: _pick(folder, net) for net in STRUCTUREFLOW_NETS}
    absent = [f"*_net_{net}.pth" for net in ("s_gen", "f_gen") if chosen[net] is None]
    if absent:
        present = sorted(p.name for p in folder.iterdir() if p.is_file())
        raise OfficialWeightsError(
            f"{folder} lacks {' and '.join(absent)} (the official StructureFlow checkpoints are "
            f"<iter>_net_s_gen.pth and <iter>_net_f_gen.pth, e.g. latest_net_f_gen.pth); "
            f"found: {', '.join(present[:12]) or 'no files'}",
            str(folder),
            absent,
        )
    for net, (network, kind, what) in STRUCTUREFLOW_NETS.items():
        file = chosen[net]
        if file is None:
            weights.notes.append(f"no *_net_{net}.pth: {network} keeps its initial weights")
            continue
        sd = _state_dict(load_weights_file(file), None, file, f"an official {net} state dict")
        _expect(sd, file, what, (what,))
        weights.state_dicts[network] = convert_official_state_dict(sd, kind, source=str(file))
        weights.sources[network] = file.name
        weights.files[str(file)] = sha256_file(file)
    return weights


_READERS: dict[str, Callable[[Path], OfficialWeights]] = {
    "edgeconnect": _read_edgeconnect,
    "ctsdg": _read_ctsdg,
    "structureflow": _read_structureflow,
}


def _contract_readers() -> dict[str, Callable[[Path], OfficialWeights]]:
    """Readers a method declares in its contract (``MethodContract.official_reader``)."""
    from inpaintzoo import zoo

    readers = {}
    for name in zoo.list_models(kind="learned"):
        cls = zoo.get_method_class(name)
        reader = getattr(getattr(cls, "contract", None), "official_reader", None)
        if reader is not None:
            readers[name] = reader
    return readers


def _readers() -> dict[str, Callable[[Path], OfficialWeights]]:
    return {**_contract_readers(), **_READERS}


def list_importers() -> list[str]:
    """Registry names of the methods whose official releases can be imported: the structure
    family's readers here, and every reader a method declares in its contract."""
    return sorted(_readers())


def read_official(method: str, path: str | Path) -> OfficialWeights:
    """Read and convert the official release at ``path`` for ``method`` (no model touched).

    Raises:
        ValueError: ``method`` has no importer (the message lists those that do).
        FileNotFoundError: ``path`` (or a required file in it) does not exist.
        OfficialWeightsError: a file is unsafe, damaged, another network's, or has missing,
            extra or mis-named keys (named in the message).
    """
    readers = _readers()
    if method not in readers:
        raise ValueError(
            f"no official-weights importer for {method!r}; available: {', '.join(sorted(readers))}"
        )
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"official weights not found: {path}")
    return readers[method](Path(path))
