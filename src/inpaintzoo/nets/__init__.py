"""Pure generator/discriminator ``nn.Module``s, one file per method (no Lightning/Hydra).

Import them from their module (``from inpaintzoo.nets.edgeconnect import InpaintGenerator``);
names in a module's ``__all__`` are also reachable here (``inpaintzoo.nets.InpaintGenerator``),
looked up on first use, so adding a nets file never edits this one.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def __getattr__(name: str) -> Any:
    for module_name in _modules():
        module = importlib.import_module(f"{__name__}.{module_name}")
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    names = set(globals())
    for module_name in _modules():
        names.update(getattr(importlib.import_module(f"{__name__}.{module_name}"), "__all__", ()))
    return sorted(names)
