"""Caveats: CEL conditions on relationships, with SpiceDB's types and partial evaluation.

    compiled = compile_caveat(schema.caveat("only_on_tuesday"))   # SchemaCompileError if invalid
    result = compiled.evaluate(merge_context(request_ctx, relationship_ctx))
    result.outcome  # TRUE | FALSE | PARTIAL (result.missing: sorted parameter names)

`CelCaveatEvaluator` adapts this to the engine: it compiles caveats of a schema on first use.
"""

from rebac.caveats.compiler import CelCaveatEvaluator, CompiledCaveat, compile_caveat, merge_context
from rebac.caveats.evaluator import CaveatOutcome, CaveatResult
from rebac.caveats.limits import DEFAULT_LIMITS, CaveatLimits
from rebac.caveats.types import CelType, ParamType, convert_value, parse_type

__all__ = [
    "DEFAULT_LIMITS",
    "CaveatLimits",
    "CaveatOutcome",
    "CaveatResult",
    "CelCaveatEvaluator",
    "CelType",
    "CompiledCaveat",
    "ParamType",
    "compile_caveat",
    "convert_value",
    "merge_context",
    "parse_type",
]
