"""Official released weights: load the authors' checkpoints into the zoo.

A zoo reaches paper-quality outputs through the weights the authors released. Each method with a
PyTorch release has an importer here that reads the files **as the authors publish them** and
maps every tensor **by name** onto the zoo's networks:

* ``edgeconnect``: a folder with ``EdgeModel_gen.pth`` and ``InpaintingModel_gen.pth`` (and,
  optionally, ``EdgeModel_dis.pth``, ``InpaintingModel_dis.pth``);
* ``ctsdg``: the ``.pt`` checkpoint written by ``trainer.py`` (``{"n_iter", "generator",
  "discriminator"}``; ``test.py`` reads ``"generator"``);
* ``structureflow``: the experiment's ``checkpoints/`` folder with ``<iter>_net_s_gen.pth`` and
  ``<iter>_net_f_gen.pth`` (optionally ``*_net_s_dis.pth``, ``*_net_f_dis.pth``).

>>> from inpaintzoo.official import load_official            # doctest: +SKIP
>>> model = load_official("edgeconnect", "checkpoints/places2/")   # eval mode   # doctest: +SKIP

``inpaintzoo-import method=... official=PATH out=DIR`` writes an ordinary inpaintzoo checkpoint
(``DIR/model.ckpt``) that predict, eval and ``init_from=`` fine-tuning use like any other; it
records where the weights came from as ``official weights (<sha256>)``. Every file is read with
``torch.load(weights_only=True)``; a file that is not what it claims raises
:class:`OfficialWeightsError` naming the file and the keys, and nothing is loaded half-way.
See docs/OFFICIAL_WEIGHTS.md.

This package's ``__init__`` stays light (no Lightning import): the key-mapping helpers in
:mod:`inpaintzoo.official.keymap` are used by the ``nets`` conversion functions.
"""

from __future__ import annotations

from typing import Any

from inpaintzoo.official.errors import OfficialWeightsError

__all__ = [
    "IMPORT_CHECKPOINT",
    "OfficialWeightsError",
    "OfficialWeights",
    "import_official",
    "list_importers",
    "load_official",
    "read_official",
]

_LAZY = {
    "IMPORT_CHECKPOINT": "inpaintzoo.official.api",
    "OfficialWeights": "inpaintzoo.official.importers",
    "import_official": "inpaintzoo.official.api",
    "list_importers": "inpaintzoo.official.importers",
    "load_official": "inpaintzoo.official.api",
    "read_official": "inpaintzoo.official.importers",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'inpaintzoo.official' has no attribute {name!r}")
