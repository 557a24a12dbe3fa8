"""Three-valued evaluation of a caveat: true, false, or partial with the missing parameters.

CEL decides `a || b` as soon as one side is true and `a && b` as soon as one side is false,
whatever the other side is (an error or an unknown). A caveat whose context lacks some
parameters is evaluated the same way (SpiceDB's partial evaluation): the expression's boolean
skeleton (`||`, `&&`, `!`, `? :`) is walked here, every other sub-expression ("atom") runs in
the CEL engine when all its parameters are bound, and an atom that needs a missing parameter
is *unknown*. Unknowns merge through the skeleton exactly as CEL's do, so the missing list
names only the parameters that still matter (`a || b` with `b` false and `a` missing → `[a]`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeAlias

import cel
from lark import Token, Tree

__all__ = ["CaveatOutcome", "CaveatResult", "Skeleton", "Unknown", "build_skeleton", "run_program"]


class CaveatOutcome(Enum):
    """How a caveat evaluated."""

    TRUE = "true"
    FALSE = "false"
    PARTIAL = "partial"
    """Undecided: `CaveatResult.missing` names the parameters that would decide it."""


@dataclass(frozen=True, slots=True)
class CaveatResult:
    """A caveat's outcome; `missing` is sorted and non-empty exactly when PARTIAL."""

    outcome: CaveatOutcome
    missing: tuple[str, ...] = ()

    @property
    def is_true(self) -> bool:
        """True only when the caveat was decided true."""
        return self.outcome is CaveatOutcome.TRUE

    @property
    def is_partial(self) -> bool:
        """True when missing context leaves the caveat undecided."""
        return self.outcome is CaveatOutcome.PARTIAL


TRUE_RESULT = CaveatResult(CaveatOutcome.TRUE)
FALSE_RESULT = CaveatResult(CaveatOutcome.FALSE)


@dataclass(frozen=True, slots=True)
class Unknown:
    """A value that depends on missing parameters `names`."""

    names: frozenset[str]


@dataclass(frozen=True, slots=True)
class Failure:
    """A CEL runtime error (absorbed by `||`/`&&` when the other side decides)."""

    message: str


Value: TypeAlias = bool | Unknown | Failure


def _in_cidr(address: str, cidr: str) -> bool:
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise ValueError(f"invalid CIDR string `{cidr}`") from None
    return ipaddress.ip_address(address) in network


def run_program(program: cel.Program, values: Mapping[str, Any]) -> Any:
    """Run a compiled CEL program with `values` bound (and SpiceDB's `in_cidr`)."""
    context = cel.Context()
    context.add_function("in_cidr", _in_cidr)
    context.update(dict(values))
    return program.execute(context)


@dataclass(frozen=True)
class Atom:
    """A non-boolean-connective sub-expression, run by the CEL engine."""

    text: str
    params: frozenset[str]
    program: cel.Program

    def evaluate(self, values: Mapping[str, Any]) -> Value:
        missing = self.params.difference(values)
        if missing:
            return Unknown(frozenset(missing))
        try:
            result = run_program(self.program, {k: values[k] for k in self.params})
        except Exception as exc:  # noqa: BLE001 - the CEL engine raises several builtin types
            return Failure(str(exc))
        if not isinstance(result, bool):
            return Failure(f"expected a bool, found {type(result).__name__}")
        return result


@dataclass(frozen=True)
class Connective:
    """`||` (`any_of=True`) or `&&` over two or more parts."""

    parts: tuple[Skeleton, ...]
    any_of: bool

    def evaluate(self, values: Mapping[str, Any]) -> Value:
        unknown: set[str] = set()
        failure: Failure | None = None
        for part in self.parts:
            value = part.evaluate(values)
            if value is self.any_of:
                return self.any_of
            if isinstance(value, Unknown):
                unknown.update(value.names)
            elif isinstance(value, Failure):
                failure = failure or value
        if unknown:
            return Unknown(frozenset(unknown))
        return failure if failure is not None else not self.any_of


@dataclass(frozen=True)
class Negation:
    """`!part`."""

    part: Skeleton

    def evaluate(self, values: Mapping[str, Any]) -> Value:
        value = self.part.evaluate(values)
        return (not value) if isinstance(value, bool) else value


@dataclass(frozen=True)
class Conditional:
    """`condition ? then : otherwise` (an unknown condition makes the whole unknown)."""

    condition: Skeleton
    then: Skeleton
    otherwise: Skeleton

    def evaluate(self, values: Mapping[str, Any]) -> Value:
        value = self.condition.evaluate(values)
        if value is True:
            return self.then.evaluate(values)
        if value is False:
            return self.otherwise.evaluate(values)
        return value


Skeleton: TypeAlias = Atom | Connective | Negation | Conditional

_COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_PASSTHROUGH = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication",
     "unary", "member", "primary", "paren_expr"}
)


def _trees(node: Tree[Token]) -> list[Tree[Token]]:
    return [c for c in node.children if isinstance(c, Tree)]


def free_parameters(node: Tree[Token], params: frozenset[str]) -> frozenset[str]:
    """The parameters `node` reads (identifiers that are parameters, minus macro variables)."""
    names = {str(t.children[0]) for t in node.iter_subtrees() if t.data in {"ident", "dot_ident"}}
    bound: set[str] = set()
    for sub in node.iter_subtrees():
        is_macro = sub.data == "member_dot_arg" and str(sub.children[1]) in _COMPREHENSIONS
        if is_macro and len(sub.children) > 2 and isinstance(sub.children[2], Tree):
            first = _trees(sub.children[2])[:1]
            bound.update(str(t.children[0]) for f in first for t in f.iter_subtrees() if t.data == "ident")
    return frozenset((names - bound) & params)


def build_skeleton(node: Tree[Token], text: str, params: frozenset[str]) -> Skeleton:
    """Split `node` into its boolean skeleton and CEL atoms (compiled from `text` slices)."""
    parts = _trees(node)
    if node.data == "expr" and len(parts) == 3:
        condition, then, otherwise = (build_skeleton(p, text, params) for p in parts)
        return Conditional(condition, then, otherwise)
    if node.data in {"conditionalor", "conditionaland"} and len(parts) == 2:
        any_of = node.data == "conditionalor"
        children: list[Skeleton] = []
        for part in parts:
            child = build_skeleton(part, text, params)
            if isinstance(child, Connective) and child.any_of is any_of:
                children.extend(child.parts)
            else:
                children.append(child)
        return Connective(tuple(children), any_of=any_of)
    if node.data == "unary" and len(parts) == 2 and parts[0].data == "unary_not":
        return Negation(build_skeleton(parts[1], text, params))
    if node.data in _PASSTHROUGH and len(parts) == 1 and len(node.children) == 1:
        return build_skeleton(parts[0], text, params)
    source = text[node.meta.start_pos : node.meta.end_pos]
    return Atom(source, free_parameters(node, params), cel.compile(source))
