"""Deterministic stand-in weights in an official layout (the parity-test recipe).

No machine of this project can download the authors' weights, so the importers are proven
against the official code with weights generated here: ``scripts/official_parity`` builds the
official networks, fills them with :func:`synthetic_state_dict` (every tensor, BatchNorm
statistics and spectral-norm vectors included), saves them in the official file format and
records the official outputs; ``tests/test_official_import.py`` regenerates the same files from
the committed key lists alone and checks that the imported networks reproduce those outputs.

Recipe ``inpaintzoo-official-parity`` version 1 (documented in docs/OFFICIAL_WEIGHTS.md). Each
tensor is drawn from its own ``torch.Generator`` seeded with the first 8 bytes (little endian,
63 bits) of ``sha256(f"{seed}/{official key}")``, so a value depends on its name only, never on
the order of the keys; values are drawn in float64 and cast to the key's dtype:

=========================================== ===============================================
key (last segment)                          value
=========================================== ===============================================
``num_batches_tracked``                     1000
``running_mean``                            0.1 * N(0, 1)
``running_var``                             0.5 + U(0, 1)
``*gamma`` (CTSDG's Bi-GFF scalars)          U(-1, 1)
``bias``                                    0.1 * N(0, 1)
``weight`` / ``weight_orig``, one value per 1 + 0.1 * N(0, 1)   (BatchNorm / LayerNorm affine)
output channel
other ``weight`` / ``weight_orig``          N(0, 1) / sqrt(numel / shape[0])   (fan-in scale)
``weight_u``, ``weight_v``                  3 power iterations on ``weight_orig`` (matrix over
                                            the key's ``sn_dim``) from ``u0 = N(0, 1)``
                                            normalised: ``v = W^T u / |.|``, ``u = W v / |.|``
a second name of a module (``alias_of``)    the very tensor of the key it aliases
=========================================== ===============================================
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "RECIPE",
    "fixture_state_dicts",
    "key_entries",
    "state_dict_digest",
    "synthetic_state_dict",
    "write_official_files",
]

RECIPE: dict[str, Any] = {
    "name": "inpaintzoo-official-parity",
    "version": 1,
    "seed": 20190101,
    "power_iterations": 3,
}

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64}


def _generator(seed: int, key: str) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}/{key}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm().clamp_min(1e-12)


def key_entries(
    state_dict: Mapping[str, torch.Tensor], sn_dims: Mapping[str, int] | None = None
) -> list[dict[str, Any]]:
    """Describe a state dict for the recipe: ``[{key, shape, dtype, alias_of, sn_dim}]`` in
    order. ``alias_of`` names an earlier key holding the same storage (one module registered
    under two names); ``sn_dims`` maps spectral-norm key prefixes to their matrix dimension."""
    seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
    entries = []
    for key, value in state_dict.items():
        ident = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape))
        alias = seen.get(ident) if value.numel() else None
        if alias is None:
            seen[ident] = key
        prefix, _, last = key.rpartition(".")
        entries.append(
            {
                "key": key,
                "shape": list(value.shape),
                "dtype": str(value.dtype).removeprefix("torch."),
                "alias_of": alias,
                "sn_dim": (sn_dims or {}).get(prefix) if last in ("weight_u", "weight_v") else None,
            }
        )
    return entries


def _value(entry: Mapping[str, Any], seed: int) -> torch.Tensor:
    key, shape = entry["key"], tuple(entry["shape"])
    last = key.rpartition(".")[2]
    dtype = _DTYPES[entry["dtype"]]
    gen = _generator(seed, key)
    numel = math.prod(shape)
    if last == "num_batches_tracked":
        return torch.full(shape, 1000, dtype=dtype)
    if last == "running_mean":
        value = 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
    elif last == "running_var":
        value = 0.5 + torch.rand(shape, generator=gen, dtype=torch.float64)
    elif last.endswith("gamma"):
        value = torch.rand(shape, generator=gen, dtype=torch.float64) * 2.0 - 1.0
    elif last == "bias":
        value = 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
    elif last in ("weight", "weight_orig") and shape and numel == shape[0]:
        value = 1.0 + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
    elif last in ("weight", "weight_orig") and shape:
        value = torch.randn(shape, generator=gen, dtype=torch.float64) / math.sqrt(numel / shape[0])
    else:
        raise ValueError(f"the parity recipe has no rule for key {key!r} of shape {shape}")
    return value.to(dtype)


def _power_iteration(
    weight: torch.Tensor, dim: int, key_u: str, seed: int, iterations: int
) -> tuple[torch.Tensor, torch.Tensor]:
    mat = weight.double().movedim(dim, 0).reshape(weight.shape[dim], -1)
    u = _normalize(
        torch.randn(mat.shape[0], generator=_generator(seed, key_u), dtype=torch.float64)
    )
    v = u.new_zeros(mat.shape[1])
    for _ in range(iterations):
        v = _normalize(mat.t() @ u)
        u = _normalize(mat @ v)
    return u.to(weight.dtype), v.to(weight.dtype)


def synthetic_state_dict(
    entries: Sequence[Mapping[str, Any]], seed: int | None = None
) -> OrderedDict[str, torch.Tensor]:
    """The recipe's state dict for ``entries`` (from :func:`key_entries` / a fixture), in the
    same order, aliases sharing storage as in an official ``state_dict()``."""
    seed = RECIPE["seed"] if seed is None else int(seed)
    by_key = {e["key"]: e for e in entries}
    values: dict[str, torch.Tensor] = {}
    sn_vectors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for entry in entries:
        key = entry["key"]
        if entry.get("alias_of"):
            continue
        prefix, _, last = key.rpartition(".")
        if last in ("weight_u", "weight_v"):
            if prefix not in sn_vectors:
                orig = f"{prefix}.weight_orig"
                if orig not in by_key:
                    raise ValueError(f"{key!r} has no {orig!r} in the key list")
                weight = values.get(orig)
                if weight is None:
                    weight = _value(by_key[orig], seed)
                    values[orig] = weight
                dim = entry.get("sn_dim")
                dim = 0 if dim is None else int(dim)
                sn_vectors[prefix] = _power_iteration(
                    weight, dim, f"{prefix}.weight_u", seed, int(RECIPE["power_iterations"])
                )
            values[key] = sn_vectors[prefix][0 if last == "weight_u" else 1]
        elif key not in values:
            values[key] = _value(entry, seed)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for entry in entries:
        key = entry["key"]
        out[key] = values[entry["alias_of"]] if entry.get("alias_of") else values[key]
        if list(out[key].shape) != list(entry["shape"]):
            raise ValueError(f"recipe shape mismatch for {key!r}")
    return out


def state_dict_digest(state_dict: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over key names, dtypes, shapes and tensor bytes (detects recipe drift, e.g. a
    PyTorch release that changes its random-number streams)."""
    digest = hashlib.sha256()
    for key, value in state_dict.items():
        digest.update(f"{key}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def fixture_state_dicts(
    meta: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> dict[str, OrderedDict[str, torch.Tensor]]:
    """Rebuild the official-format state dicts a parity fixture recorded (its ``keys.json`` as
    ``meta``: ``networks`` -> ``{keys, digest}``, ``recipe.seed``), one per network, in the
    recorded key order: the recipe for every key, ``overrides`` (key -> recorded value) for keys
    the recipe has no rule for (LBAM's Gaussian-activation scalars, RFR's attention ratio).

    Raises:
        ValueError: a rebuilt dict's digest is not the recorded one (the recipe changed:
            re-record the fixture with its ``scripts/official_parity`` script).
    """
    overrides = dict(overrides or {})
    seed = meta["recipe"]["seed"]
    states: dict[str, OrderedDict[str, torch.Tensor]] = {}
    for network, info in meta["networks"].items():
        made = synthetic_state_dict([e for e in info["keys"] if e["key"] not in overrides], seed)
        state = OrderedDict(
            (
                e["key"],
                torch.tensor(overrides[e["key"]]) if e["key"] in overrides else made[e["key"]],
            )
            for e in info["keys"]
        )
        if state_dict_digest(state) != info["digest"]:
            raise ValueError(
                f"the recipe no longer reproduces the recorded {network} weights: re-record the "
                "fixture with its scripts/official_parity script"
            )
        states[network] = state
    return states


def write_official_files(
    layout: Mapping[str, Mapping[str, Any]],
    state_dicts: Mapping[str, Mapping[str, torch.Tensor]],
    folder: str | Path,
    legacy_format: bool = False,
) -> dict[str, Path]:
    """Write official-format files: ``layout[file] = {"networks": {state_key: network},
    "extra": {...}}`` saves ``{**extra, state_key: state_dicts[network], ...}`` (EdgeConnect,
    CTSDG); the state key ``""`` saves the bare state dict (StructureFlow). ``legacy_format``
    writes the pre-1.6 (non-zip) serialisation of 2019-era releases."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, spec in layout.items():
        networks = spec.get("networks") or {spec.get("state_key") or "": spec["network"]}
        bare = networks.get("", networks.get(None))
        if bare is not None:
            payload: Any = OrderedDict(state_dicts[bare])
        else:
            payload = dict(spec.get("extra") or {})
            for state_key, network in networks.items():
                payload[state_key] = OrderedDict(state_dicts[network])
        path = folder / name
        torch.save(payload, path, _use_new_zipfile_serialization=not legacy_format)
        written[name] = path
    return written
