"""Evaluation protocols (deterministic image x mask pairs) and the runner that scores a method
on them, writing schema-v1 results files (see docs/CONTRACTS.md)."""

from inpaintzoo.evaluation.protocol import EvalProtocol, pairs_hash
from inpaintzoo.evaluation.runner import SCHEMA_VERSION, environment_info, evaluate, write_result

__all__ = [
    "SCHEMA_VERSION",
    "EvalProtocol",
    "environment_info",
    "evaluate",
    "pairs_hash",
    "write_result",
]
