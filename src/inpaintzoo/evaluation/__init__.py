"""Evaluation protocols (deterministic image x mask pairs) and the resumable runner that scores a
method on them, writing schema-v1 results files (see docs/CONTRACTS.md, docs/BENCHMARK.md)."""

from inpaintzoo.evaluation.protocol import (
    EvalProtocol,
    PairsManifest,
    TargetRatioMasks,
    pairs_hash,
    protocol_manifest,
)
from inpaintzoo.evaluation.runner import (
    LPIPS_MODES,
    SCHEMA_VERSION,
    EvaluationResult,
    environment_info,
    evaluate,
    grid_indices,
    method_key,
    write_per_sample,
    write_protocol_inputs,
    write_result,
)

__all__ = [
    "LPIPS_MODES",
    "SCHEMA_VERSION",
    "EvalProtocol",
    "EvaluationResult",
    "PairsManifest",
    "TargetRatioMasks",
    "environment_info",
    "evaluate",
    "grid_indices",
    "method_key",
    "pairs_hash",
    "protocol_manifest",
    "write_per_sample",
    "write_protocol_inputs",
    "write_result",
]
