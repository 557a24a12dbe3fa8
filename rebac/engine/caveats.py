"""The caveat seam: how the engine asks whether a caveated relationship holds.

The engine carries caveats through the membership algebra as expressions (see
`membership.py`) and evaluates them once, at the API boundary, against the request's
context. Evaluation of one caveat is delegated to a `CaveatEvaluator` (the CEL one lives in
`rebac.caveats`); combining caveats uses three-valued logic, so a check whose answer
hinges on a parameter nobody supplied comes out CONDITIONAL with the parameter names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from rebac.engine.membership import CaveatAnd, CaveatExpr, CaveatLeaf, CaveatNot, CaveatOr
from rebac.errors import CaveatEvaluationError
from rebac.schema.definitions import CaveatDefinition, CompiledSchema
from rebac.tuples import RelationshipCaveat

__all__ = ["CaveatEvaluator", "CaveatVerdict", "Tristate", "evaluate_condition"]


class CaveatVerdict(Protocol):
    """**Protocol:** the outcome of evaluating one caveat.

    Exactly one of: `is_true` (decided true), neither flag (decided false), or
    `is_partial` with `missing` naming the parameters that would decide it (sorted).
    `rebac.caveats.CaveatResult` satisfies this protocol.
    """

    @property
    def is_true(self) -> bool:
        """Decided true."""
        ...

    @property
    def is_partial(self) -> bool:
        """Undecided for lack of context."""
        ...

    @property
    def missing(self) -> tuple[str, ...]:
        """The parameters that would decide an undecided caveat."""
        ...


class CaveatEvaluator(Protocol):
    """**Protocol:** evaluates one caveat definition against a context.

    `context` is already merged: the check request's context overridden by the values
    stored on the relationship (SpiceDB's precedence). Raise CaveatEvaluationError for a
    context value of the wrong type or a runtime failure; never return "true" on error.
    Must be safe to call concurrently from one event loop (it is called synchronously).
    """

    def evaluate(self, caveat: CaveatDefinition, context: Mapping[str, Any]) -> CaveatVerdict:
        """True, false, or partial with the missing parameter names."""
        ...


@dataclass(frozen=True, slots=True)
class Tristate:
    """A combined verdict: `value` True/False, or None (undecided) with `missing` names."""

    value: bool | None
    missing: frozenset[str] = frozenset()


_TRUE = Tristate(value=True)
_FALSE = Tristate(value=False)


def evaluate_condition(
    condition: CaveatExpr,
    *,
    schema: CompiledSchema,
    evaluator: CaveatEvaluator | None,
    context: Mapping[str, Any] | None,
) -> Tristate:
    """Evaluate a membership condition with Kleene logic over the caveats' verdicts.

    Raises CaveatEvaluationError when no evaluator is configured (fail closed: a caveat
    that matters is never assumed true), a caveat is not defined in the schema, or the
    evaluator raises anything (its error is chained as the cause).
    """
    match condition:
        case CaveatLeaf():
            return _evaluate_leaf(condition, schema=schema, evaluator=evaluator, context=context)
        case CaveatNot(child=child):
            inner = evaluate_condition(child, schema=schema, evaluator=evaluator, context=context)
            return inner if inner.value is None else Tristate(value=not inner.value)
        case CaveatAnd(children=children) | CaveatOr(children=children):
            # AND is decided by any false, OR by any true; otherwise undecided children
            # contribute their missing names.
            decisive = isinstance(condition, CaveatOr)
            missing: set[str] = set()
            undecided = False
            for child in children:
                part = evaluate_condition(child, schema=schema, evaluator=evaluator, context=context)
                if part.value is decisive:
                    return part
                if part.value is None:
                    undecided = True
                    missing |= part.missing
            return Tristate(None, frozenset(missing)) if undecided else Tristate(value=not decisive)


def _evaluate_leaf(
    leaf: CaveatLeaf,
    *,
    schema: CompiledSchema,
    evaluator: CaveatEvaluator | None,
    context: Mapping[str, Any] | None,
) -> Tristate:
    """One caveated relationship's verdict; errors as in `evaluate_condition`."""
    name = leaf.name
    if evaluator is None:
        raise CaveatEvaluationError("caveats are not supported without a caveat evaluator", caveat=name)
    definition = schema.caveat(name)
    if definition is None:
        raise CaveatEvaluationError("caveat is not defined in the schema", caveat=name)
    stored = RelationshipCaveat(name, leaf.context_json).context
    try:
        verdict = evaluator.evaluate(definition, {**(context or {}), **stored})
    except CaveatEvaluationError as err:
        if err.caveat is not None:
            raise
        raise CaveatEvaluationError(str(err), caveat=name) from err
    except Exception as exc:
        # Fail closed: whatever went wrong inside the evaluator, the answer is an error
        # naming the caveat, never "allowed" and never a bare crash.
        raise CaveatEvaluationError(f"evaluation failed: {type(exc).__name__}: {exc}", caveat=name) from exc
    if verdict.is_true:
        return _TRUE
    if verdict.is_partial:
        return Tristate(None, frozenset(verdict.missing))
    return _FALSE
