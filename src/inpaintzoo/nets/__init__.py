"""Pure generator/discriminator ``nn.Module``s, one file per method (no Lightning/Hydra)."""

from inpaintzoo.nets.edgeconnect import (
    EDGECONNECT_VARIANTS,
    EdgeConnectDiscriminator,
    EdgeGenerator,
    InpaintGenerator,
    build_edgeconnect_nets,
)

__all__ = [
    "EDGECONNECT_VARIANTS",
    "EdgeConnectDiscriminator",
    "EdgeGenerator",
    "InpaintGenerator",
    "build_edgeconnect_nets",
]
