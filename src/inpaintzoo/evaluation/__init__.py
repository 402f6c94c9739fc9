"""Evaluation protocols (deterministic image x mask pairs) and the resumable runner that scores a
method on them, writing schema-v1 results files (see docs/CONTRACTS.md, docs/BENCHMARK.md).

``evaluate(predictor, protocol, **keywords)`` is the keyword form; ``run_evaluation(predictor,
PreparedProtocol.build(protocol), method=MethodInfo(...), metrics=MetricSettings(...),
outputs=OutputSettings(...), run=RunSettings(...))`` takes the same options grouped.
"""

from inpaintzoo.evaluation.cache import SampleCache
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
    MethodInfo,
    MetricSettings,
    OutputSettings,
    PreparedProtocol,
    RunSettings,
    assemble_result,
    environment_info,
    evaluate,
    grid_indices,
    method_key,
    run_evaluation,
    write_per_sample,
    write_protocol_inputs,
    write_result,
)

__all__ = [
    "LPIPS_MODES",
    "SCHEMA_VERSION",
    "EvalProtocol",
    "EvaluationResult",
    "MethodInfo",
    "MetricSettings",
    "OutputSettings",
    "PairsManifest",
    "PreparedProtocol",
    "RunSettings",
    "SampleCache",
    "TargetRatioMasks",
    "assemble_result",
    "environment_info",
    "evaluate",
    "grid_indices",
    "method_key",
    "pairs_hash",
    "protocol_manifest",
    "run_evaluation",
    "write_per_sample",
    "write_protocol_inputs",
    "write_result",
]
