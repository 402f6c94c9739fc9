"""Name-based state-dict conversion: official keys -> inpaintzoo keys, with strict checks.

Pure PyTorch (no Lightning): the ``convert_official_*`` functions at the end of
``inpaintzoo.nets.<method>`` build on these helpers.

* :func:`rename_keys` maps every official key through an ordered list of regular-expression
  rules (the first full match wins). Keys are mapped **by name only**, never by registration
  order or shape: two official modules registered in another order than ours (CTSDG: 70 shape
  mismatches by order), or two tensors of the same shape (CTSDG's Bi-GFF ``structure_gamma`` /
  ``texture_gamma`` scalars) can never be swapped. A key no rule matches is an error.
* :func:`drop_module_aliases` removes the second copy of a module registered under two names
  (EdgeConnect's and CTSDG's discriminators do ``self.conv1 = self.features = ...``, so their
  state dicts hold ``features.*`` beside ``conv1.*``); the copies must be identical.
* :func:`legacy_spectral_norm_to_parametrization` turns the legacy spectral-norm keys of
  :func:`torch.nn.utils.spectral_norm` (``weight_orig``, ``weight_u``, ``weight_v``) into those of
  the parametrization API used here; files of PyTorch < 1.0 store the normalised ``weight``
  instead of ``weight_v``, and ``v`` is then solved exactly as PyTorch's own load hook does.
* :func:`check_state_dict` compares a converted dict with a module's own keys and shapes and
  raises one message naming every missing, unexpected or mis-shaped key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from inpaintzoo.official.errors import OfficialWeightsError, describe_keys

__all__ = [
    "Rule",
    "check_state_dict",
    "drop_module_aliases",
    "legacy_spectral_norm_to_parametrization",
    "rename_keys",
    "strip_data_parallel",
]

Rule = tuple[str, str | Callable[[re.Match], str]]
"""``(pattern, replacement)``: ``pattern`` must match a whole key; ``replacement`` is a
``re.Match.expand`` template (``r"encoder.\\1"``) or a function of the match."""


def strip_data_parallel(
    state_dict: Mapping[str, torch.Tensor], prefix: str = "module."
) -> dict[str, torch.Tensor]:
    """Remove the ``module.`` prefix that ``nn.DataParallel`` / DDP put on every key (EdgeConnect
    saves its wrapped generator when trained on several GPUs). Only when *every* key has it."""
    keys = list(state_dict)
    if keys and all(k.startswith(prefix) for k in keys):
        return {k[len(prefix) :]: v for k, v in state_dict.items()}
    return dict(state_dict)


def rename_keys(
    state_dict: Mapping[str, torch.Tensor], rules: Sequence[Rule], *, source: str
) -> dict[str, torch.Tensor]:
    """Map every key through the first rule whose pattern matches it in full.

    Raises:
        OfficialWeightsError: keys that no rule matches (named), or two official keys mapping
            onto one inpaintzoo key.
    """
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]
    out: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    unmatched: list[str] = []
    for key, value in state_dict.items():
        for pattern, repl in compiled:
            match = pattern.fullmatch(key)
            if match is None:
                continue
            new = repl(match) if callable(repl) else match.expand(repl)
            break
        else:
            unmatched.append(key)
            continue
        if new in out:
            raise OfficialWeightsError(
                f"{source}: official keys {origin[new]!r} and {key!r} both map to {new!r}",
                source,
                [origin[new], key],
            )
        out[new] = value
        origin[new] = key
    if unmatched:
        raise OfficialWeightsError(
            f"{source}: unexpected keys for this network: {describe_keys(unmatched)}",
            source,
            unmatched,
        )
    return out


def drop_module_aliases(
    state_dict: Mapping[str, torch.Tensor], alias: str, target: str, *, source: str
) -> dict[str, torch.Tensor]:
    """Drop ``...<alias>.*`` keys that duplicate ``...<target>.*`` (one module, two names).

    ``alias`` / ``target`` are single key segments (``"features"`` / ``"conv1"``). Each alias
    key must have its target key with an identical tensor; when the target is absent the alias
    is renamed to it (the module was only saved under its other name).

    Raises:
        OfficialWeightsError: an alias tensor differs from its target (the file was not written
            by the official code, or was edited), naming both keys.
    """
    pattern = re.compile(rf"(^|.*\.){re.escape(alias)}\.(.+)$")
    out: dict[str, torch.Tensor] = {}
    pending: list[tuple[str, str]] = []
    for key, value in state_dict.items():
        match = pattern.fullmatch(key)
        if match is None:
            out[key] = value
            continue
        pending.append((key, f"{match.group(1)}{target}.{match.group(2)}"))
    for key, twin in pending:
        value = state_dict[key]
        if twin not in state_dict:
            out[twin] = value
            continue
        other = state_dict[twin]
        if other.shape != value.shape or not torch.equal(other, value):
            raise OfficialWeightsError(
                f"{source}: {key!r} should be a second name of {twin!r} (the official module "
                f"registers it twice) but holds different values; the file was not written by "
                "the official code or has been edited",
                source,
                [key, twin],
            )
    return out


def _solve_v(weight_mat: torch.Tensor, u: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``v`` with ``u^T W v = sigma`` from the least-squares ``W v = u`` (PyTorch's legacy
    ``SpectralNorm._solve_v_and_rescale``), in float64."""
    w64, u64 = weight_mat.double(), u.double()
    v = torch.linalg.pinv(w64) @ u64
    v = v * (sigma.double() / torch.dot(u64, w64 @ v))
    return v.to(u.dtype)


def legacy_spectral_norm_to_parametrization(
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str,
    transposed: Iterable[str] = (),
    name: str = "weight",
) -> dict[str, torch.Tensor]:
    """Legacy spectral-norm keys -> parametrization keys, order kept.

    ``P.weight_orig -> P.parametrizations.weight.original``, ``P.weight_u -> ...0._u``,
    ``P.weight_v -> ...0._v``. Files written by PyTorch < 1.0 have no ``weight_v`` but the
    normalised ``weight``; then ``sigma = mean(weight_orig / weight)`` and ``v`` is solved from
    ``u`` and ``sigma`` (what :func:`torch.nn.utils.spectral_norm`'s load hook does), and the
    stored ``weight`` is dropped. In eval mode both APIs compute ``W / (u^T W v)`` from the
    stored vectors, so outputs are unchanged.

    Args:
        transposed: key prefixes of transposed convolutions (their SN matrix is taken over
            dim 1; needed only to solve ``v``).

    Raises:
        OfficialWeightsError: ``weight_orig`` without ``weight_u``, or without both
            ``weight_v`` and ``weight`` (named).
    """
    transposed = set(transposed)
    orig, u_key, v_key = f"{name}_orig", f"{name}_u", f"{name}_v"
    prefixes = [k[: -len(orig) - 1] for k in state_dict if k.endswith("." + orig) or k == orig]
    extra: dict[str, torch.Tensor] = {}
    drop: set[str] = set()
    missing: list[str] = []
    for prefix in prefixes:
        dot = f"{prefix}." if prefix else ""
        if f"{dot}{u_key}" not in state_dict:
            missing.append(f"{dot}{u_key}")
            continue
        if f"{dot}{v_key}" in state_dict:
            drop.add(f"{dot}{name}")  # a stale normalised copy, if any, is not a parameter
            continue
        if f"{dot}{name}" not in state_dict:
            missing.append(f"{dot}{v_key} (or the pre-1.0 {dot}{name})")
            continue
        w_orig = state_dict[f"{dot}{orig}"]
        w_norm = state_dict[f"{dot}{name}"]
        sigma = (w_orig.double() / w_norm.double()).mean()
        dim = 1 if prefix in transposed else 0
        mat = w_orig.movedim(dim, 0).reshape(w_orig.shape[dim], -1)
        extra[f"{dot}{v_key}"] = _solve_v(mat, state_dict[f"{dot}{u_key}"], sigma)
        drop.add(f"{dot}{name}")
    if missing:
        raise OfficialWeightsError(
            f"{source}: spectral-norm vectors missing: {describe_keys(missing)}", source, missing
        )
    suffixes = {
        orig: f"parametrizations.{name}.original",
        u_key: f"parametrizations.{name}.0._u",
        v_key: f"parametrizations.{name}.0._v",
    }
    sn_prefixes = set(prefixes)
    out: dict[str, torch.Tensor] = {}
    items = list(state_dict.items())
    for key, value in items + [(k, v) for k, v in extra.items()]:
        if key in drop:
            continue
        prefix, _, last = key.rpartition(".")
        if last in suffixes and prefix in sn_prefixes:
            key = f"{prefix}.{suffixes[last]}" if prefix else suffixes[last]
        out[key] = value
    return out


def check_state_dict(
    module: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str, network: str
) -> None:
    """Raise one :class:`OfficialWeightsError` listing every missing, unexpected or mis-shaped
    key of ``state_dict`` for ``module`` (before anything is loaded)."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f"{k}: file {tuple(state_dict[k].shape)} vs network {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or shapes):
        return
    parts = []
    if missing:
        parts.append(f"missing keys {describe_keys(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {describe_keys(unexpected)}")
    if shapes:
        parts.append(f"shape mismatches {'; '.join(shapes[:6])}")
    raise OfficialWeightsError(
        f"{source} does not fit the {network}: "
        + "; ".join(parts)
        + " (inpaintzoo key names, after conversion)",
        source,
        missing + unexpected + [s.split(":")[0] for s in shapes],
    )
