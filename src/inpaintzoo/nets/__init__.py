"""Pure generator/discriminator ``nn.Module``s, one file per method (no Lightning/Hydra)."""

from inpaintzoo.nets.ctsdg import (
    CTSDG_VARIANTS,
    CTSDGDiscriminator,
    CTSDGGenerator,
    build_ctsdg_nets,
)
from inpaintzoo.nets.edgeconnect import (
    EDGECONNECT_VARIANTS,
    EdgeConnectDiscriminator,
    EdgeGenerator,
    InpaintGenerator,
    build_edgeconnect_nets,
)
from inpaintzoo.nets.structure_knowledge import (
    STRUCTURE_KNOWLEDGE_VARIANTS,
    StructureKnowledgeDiscriminator,
    StructureKnowledgeGenerator,
    build_structure_knowledge_nets,
)
from inpaintzoo.nets.structureflow import (
    STRUCTUREFLOW_VARIANTS,
    MultiScaleDiscriminator,
    StructureGenerator,
    TextureGenerator,
    build_structureflow_nets,
)

__all__ = [
    "CTSDG_VARIANTS",
    "CTSDGDiscriminator",
    "CTSDGGenerator",
    "STRUCTUREFLOW_VARIANTS",
    "STRUCTURE_KNOWLEDGE_VARIANTS",
    "MultiScaleDiscriminator",
    "StructureGenerator",
    "TextureGenerator",
    "build_structureflow_nets",
    "StructureKnowledgeDiscriminator",
    "StructureKnowledgeGenerator",
    "build_ctsdg_nets",
    "build_structure_knowledge_nets",
    "EDGECONNECT_VARIANTS",
    "EdgeConnectDiscriminator",
    "EdgeGenerator",
    "InpaintGenerator",
    "build_edgeconnect_nets",
]
