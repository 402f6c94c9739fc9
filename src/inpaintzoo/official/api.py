"""``load_official`` and ``import_official``: official files -> a LightningModule / checkpoint."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from inpaintzoo.official.errors import OfficialWeightsError
from inpaintzoo.official.importers import OfficialWeights, read_official
from inpaintzoo.official.keymap import check_state_dict
from inpaintzoo.utils.hparams import to_plain_types

log = logging.getLogger(__name__)

__all__ = [
    "IMPORT_CHECKPOINT",
    "IMPORT_MANIFEST",
    "build_checkpoint",
    "import_official",
    "load_official",
    "model_from_weights",
]

IMPORT_CHECKPOINT = "model.ckpt"
"""File name of the inpaintzoo checkpoint inside an ``inpaintzoo-import`` output folder."""
IMPORT_MANIFEST = "official_import.json"
"""Provenance written beside it (files, SHA-256, options, notes)."""


_MISSING = object()


def _create(method: str, defaults: dict[str, Any], options: dict[str, Any], notes: list[str]):
    """``zoo.create_model(method, "full", **defaults, **options)``.

    ``defaults`` are the importer's settings for the official inference (EdgeConnect's
    ``inference_edges="raw"``); one this build does not have (refused, or not set as an
    attribute of the module) is dropped with a note instead of failing. ``options`` (the
    caller's) pass through unchecked.
    """
    from inpaintzoo import zoo

    defaults = {k: v for k, v in defaults.items() if k not in options}
    while True:
        try:
            model = zoo.create_model(method, variant="full", **defaults, **options)
        except (TypeError, ValueError) as err:
            unknown = [k for k in defaults if k in str(err)]
            if not unknown:
                raise
            for key in unknown:
                notes.append(f"this build has no {method} option {key}={defaults.pop(key)!r}")
            continue
        ignored = [k for k, v in defaults.items() if getattr(model, k, _MISSING) != v]
        if not ignored:
            return model
        for key in ignored:
            notes.append(f"this build has no {method} option {key}={defaults.pop(key)!r}")


def model_from_weights(weights: OfficialWeights, **options: Any):
    """Build the method's full-size LightningModule and load ``weights`` into it, strictly.

    Every converted state dict is checked against its network (missing, unexpected and
    mis-shaped keys, all named) before any is loaded, so a bad file never leaves a half-loaded
    model. Networks without official weights (e.g. discriminators that were not supplied) keep
    their initial weights; the notes say so.
    """
    notes = list(weights.notes)
    model = _create(weights.method, weights.options, options, notes)
    for network, state_dict in weights.state_dicts.items():
        check_state_dict(
            getattr(model, network),
            state_dict,
            source=f"{weights.sources[network]} in {weights.path}",
            network=f"{weights.method} {network}",
        )
    for network, state_dict in weights.state_dicts.items():
        getattr(model, network).load_state_dict(state_dict, strict=True)
    weights.notes = notes
    model.weights_source = weights.label
    model.official_weights = weights.describe()
    model.eval()
    return model


def load_official(name: str, path: str | Path, **options: Any):
    """Load the authors' released weights into the zoo's LightningModule, in eval mode.

    Args:
        name: registry name (``edgeconnect``, ``ctsdg``, ``structureflow``).
        path: the official release as published (see :mod:`inpaintzoo.official`).
        **options: extra ``zoo.create_model`` options (the importer's defaults reproduce the
            official inference, e.g. EdgeConnect ``inference_edges="raw"``).

    Returns:
        The module in eval mode; ``model.weights_source`` is ``"official weights (<sha256>)"``
        and ``model.official_weights`` the provenance dict.

    Raises:
        FileNotFoundError, OfficialWeightsError, ValueError: see
        :func:`inpaintzoo.official.read_official`.
    """
    return model_from_weights(read_official(name, path), **options)


def build_checkpoint(model, weights: OfficialWeights) -> dict[str, Any]:
    """An ordinary inpaintzoo (Lightning) checkpoint dict for ``model`` with official weights:
    ``state_dict``, plain ``hyper_parameters`` (incl. ``method``) and the ``inpaintzoo`` state
    of :meth:`InpaintingModule.on_save_checkpoint`, plus ``weights_source`` and ``official``
    provenance. Readable with ``torch.load(weights_only=True)``."""
    import pytorch_lightning as pl

    checkpoint: dict[str, Any] = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": pl.__version__,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "hyper_parameters": to_plain_types(dict(model.hparams)),
    }
    model.on_save_checkpoint(checkpoint)
    checkpoint["inpaintzoo"]["weights_source"] = weights.label
    checkpoint["inpaintzoo"]["official"] = to_plain_types(weights.describe())
    return checkpoint


def import_official(
    name: str, path: str | Path, out: str | Path, overwrite: bool = False, **options: Any
) -> Path:
    """Import an official release into ``out/model.ckpt`` (plus ``out/official_import.json``).

    The checkpoint works wherever an inpaintzoo checkpoint does (``inpaintzoo-predict
    ckpt=out``, ``inpaintzoo-eval 'methods=[name:out]'``, ``init_from=out/model.ckpt``).
    Rerunning on the same files is a no-op; other files over an existing import need
    ``overwrite=True``. Returns the checkpoint path.
    """
    from inpaintzoo.utils.io import atomic_save_torch, atomic_write_text

    out = Path(out)
    target = out / IMPORT_CHECKPOINT
    manifest_path = out / IMPORT_MANIFEST
    weights = read_official(name, path)
    if target.exists() and not overwrite:
        previous = {}
        if manifest_path.is_file():
            previous = json.loads(manifest_path.read_text())
        if previous.get("sha256") == weights.sha256 and previous.get("method") == name:
            log.info("%s already holds %s (%s): nothing to do", target, name, weights.label)
            return target
        raise OfficialWeightsError(
            f"{target} already exists (from other weights); pass overwrite=true to replace it "
            "or choose another out=",
            str(target),
        )
    model = model_from_weights(weights, **options)
    atomic_save_torch(build_checkpoint(model, weights), target)
    manifest = {**to_plain_types(weights.describe()), "checkpoint": IMPORT_CHECKPOINT}
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
    log.info("imported %s %s -> %s", name, weights.label, target)
    return target


def read_weights_source(path: str | Path) -> str | None:
    """The ``weights_source`` recorded in an inpaintzoo checkpoint (None when absent); reads
    only the small metadata (memory-mapped, weights-only load)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - e.g. a legacy (non-zip) file: no label, not an error
        return None
    state = ckpt.get("inpaintzoo") if isinstance(ckpt, dict) else None
    return state.get("weights_source") if isinstance(state, dict) else None
