"""Compile a schema caveat into a checked, cached, bounded CEL program.

`compile_caveat(defn)` parses the expression (cel-python's grammar, for positions), type
checks it against the declared parameters (unknown parameter, type mismatch, non-bool
result → SchemaCompileError at the expression-relative line:column), and compiles it for
the CEL engine (the `common-expression-language` package, a Rust CEL interpreter). Results
are cached per definition, so compiling the same caveat again is free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cel
import celpy
import lark
from celpy.celparser import CELParseError
from lark import Token, Tree

from rebac.caveats.checker import CaveatTypeError, check_expression, position_of
from rebac.caveats.evaluator import (
    FALSE_RESULT,
    TRUE_RESULT,
    CaveatOutcome,
    CaveatResult,
    Failure,
    Skeleton,
    Unknown,
    build_skeleton,
    free_parameters,
    run_program,
)
from rebac.caveats.limits import (
    DEFAULT_LIMITS,
    CaveatLimits,
    cost_bound,
    count_nodes,
    has_comprehension,
    tree_depth,
)
from rebac.caveats.types import ParamType, convert_value, parse_type
from rebac.errors import CaveatEvaluationError, CaveatLimitExceededError, SchemaCompileError, SourcePosition
from rebac.schema.definitions import CaveatDefinition

__all__ = ["CelCaveatEvaluator", "CompiledCaveat", "compile_caveat", "merge_context"]

_PARSER = celpy.Environment()


@dataclass(frozen=True, eq=False)
class CompiledCaveat:
    """A caveat ready to evaluate. Immutable and safe to share between tasks.

    `parameters` maps each declared name to its type; `referenced` is the parameters the
    expression reads.
    """

    definition: CaveatDefinition
    parameters: Mapping[str, ParamType]
    referenced: frozenset[str]
    limits: CaveatLimits
    _tree: Tree[Token] = field(repr=False)
    _program: cel.Program = field(repr=False)
    _skeleton: Skeleton = field(repr=False)
    _static_cost: int | None = field(repr=False)

    @property
    def name(self) -> str:
        """The caveat's name."""
        return self.definition.name

    def evaluate(self, context: Mapping[str, Any] | None) -> CaveatResult:
        """Evaluate with `context` (JSON-like values; absent parameters are missing).

        Returns TRUE, FALSE, or PARTIAL with the sorted missing parameters that would decide
        it. Context keys that are not parameters are ignored (as SpiceDB does). Raises
        CaveatEvaluationError for a value of the wrong type or a CEL runtime error, and
        CaveatLimitExceededError when the worst-case cost exceeds `limits.max_cost`.
        """
        values = {
            name: convert_value(name, self.parameters[name], value)
            for name, value in (context or {}).items()
            if name in self.parameters and name in self.referenced
        }
        self._enforce_cost(values)
        if self.referenced.issubset(values):
            try:
                result = run_program(self._program, values)
            except Exception:  # noqa: BLE001 - fall back to CEL's error-absorbing evaluation below
                result = None
            if isinstance(result, bool):
                return TRUE_RESULT if result else FALSE_RESULT
        return self._decide(self._skeleton.evaluate(values))

    def _decide(self, value: bool | Unknown | Failure, /) -> CaveatResult:  # noqa: FBT001 - a value, not a flag
        if isinstance(value, Unknown):
            return CaveatResult(CaveatOutcome.PARTIAL, tuple(sorted(value.names)))
        if isinstance(value, Failure):
            raise CaveatEvaluationError(value.message, caveat=self.name)
        return TRUE_RESULT if value else FALSE_RESULT

    def _enforce_cost(self, values: Mapping[str, Any]) -> None:
        cost = self._static_cost if self._static_cost is not None else cost_bound(self._tree, values)
        if cost > self.limits.max_cost:
            raise CaveatLimitExceededError(
                f"evaluation could cost up to {cost} steps, over the limit of {self.limits.max_cost}",
                caveat=self.name,
            )


def merge_context(
    request: Mapping[str, Any] | None, relationship: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The context a caveat sees: the request's, overridden by the relationship's.

    SpiceDB documents that values stored on the relationship take precedence over those
    in the check request for the same parameter.
    """
    return {**(request or {}), **(relationship or {})}


def compile_caveat(defn: CaveatDefinition, *, limits: CaveatLimits = DEFAULT_LIMITS) -> CompiledCaveat:
    """Parse, type check and compile `defn`; cached per (definition, limits).

    Raises SchemaCompileError (position relative to the expression's first character, 1:1)
    for a syntax error, an unknown parameter, a type mismatch, a non-bool result, an unknown
    parameter type, or an expression over the size/nesting limits.
    """
    return _compile(defn, limits)


@lru_cache(maxsize=1024)
def _compile(defn: CaveatDefinition, limits: CaveatLimits) -> CompiledCaveat:
    parameters = _parameter_types(defn)
    text = defn.expression
    if len(text) > limits.max_expression_length:
        _fail(defn, f"expression is longer than {limits.max_expression_length} characters", None)
    tree = _parse(defn)
    if tree_depth(tree) > limits.max_tree_depth:
        _fail(defn, "expression is nested too deeply", SourcePosition(1, 1))
    try:
        result = check_expression(tree, {name: p.cel for name, p in parameters.items()})
    except CaveatTypeError as exc:
        _fail(defn, exc.message, exc.position)
    if result.kind not in {"bool", "dyn"}:
        _fail(defn, f"caveat expression must result in a bool, found {result}", position_of(tree))
    names = frozenset(parameters)
    try:
        program = cel.compile(text)
        skeleton = build_skeleton(tree, text, names)
    except ValueError as exc:  # pragma: no cover - the grammars agree on checked expressions
        _fail(defn, f"expression not accepted by the CEL engine: {exc}", SourcePosition(1, 1))
    static_cost = None if has_comprehension(tree) else count_nodes(tree)
    return CompiledCaveat(
        definition=defn,
        parameters=parameters,
        referenced=free_parameters(tree, names),
        limits=limits,
        _tree=tree,
        _program=program,
        _skeleton=skeleton,
        _static_cost=static_cost,
    )


def _parameter_types(defn: CaveatDefinition) -> dict[str, ParamType]:
    parameters: dict[str, ParamType] = {}
    for param in defn.parameters:
        if param.name in parameters:
            raise SchemaCompileError(
                f"caveat `{defn.name}`: duplicate parameter `{param.name}`", position=param.position
            )
        try:
            parameters[param.name] = parse_type(param.type)
        except ValueError as exc:
            raise SchemaCompileError(f"caveat `{defn.name}`: {exc}", position=param.position) from None
    return parameters


def _parse(defn: CaveatDefinition) -> Tree[Token]:
    try:
        tree: Tree[Token] = _PARSER.compile(defn.expression)
    except CELParseError as exc:
        line, column = getattr(exc, "line", None), getattr(exc, "column", None)
        position = SourcePosition(line, column) if line and column else None
        message = str(exc.args[0]).splitlines()[0] if exc.args else "invalid expression"
        _fail(defn, f"syntax error: {message}", position)
    except lark.exceptions.LarkError as exc:  # pragma: no cover - celpy wraps lark's errors
        _fail(defn, f"syntax error: {exc}", None)
    return tree


def _fail(defn: CaveatDefinition, message: str, position: SourcePosition | None) -> Any:
    """Raise SchemaCompileError for `defn` (position relative to the expression)."""
    raise SchemaCompileError(f"caveat `{defn.name}`: {message}", position=position)


@dataclass(frozen=True, slots=True)
class CelCaveatEvaluator:
    """The engine's `CaveatEvaluator` backed by CEL: compile (cached), then evaluate.

    `context` is the already merged context (see `merge_context`). Raises the errors of
    `compile_caveat` and `CompiledCaveat.evaluate`; never answers true on an error.
    """

    limits: CaveatLimits = DEFAULT_LIMITS

    def evaluate(self, caveat: CaveatDefinition, context: Mapping[str, Any]) -> CaveatResult:
        """True, false, or partial with the sorted missing parameter names."""
        return compile_caveat(caveat, limits=self.limits).evaluate(context)
