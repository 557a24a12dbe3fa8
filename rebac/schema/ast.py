"""The schema syntax tree: what the text says, with positions, before any name is resolved.

Every node is a frozen dataclass with a `position` (line:column of its first token).
Binary operator chains are kept n-ary (`operands`) so that long chains never make deep trees;
only parentheses nest, and the parser bounds their depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

from rebac.errors import SourcePosition

__all__ = [
    "AllowedType",
    "Arrow",
    "ArrowStep",
    "BinaryChain",
    "CaveatDecl",
    "CaveatParam",
    "DefinitionDecl",
    "Expression",
    "Identifier",
    "ImportDecl",
    "MemberDecl",
    "NilExpr",
    "Operator",
    "PartialDecl",
    "PartialReference",
    "PermissionDecl",
    "RelationDecl",
    "SchemaFile",
    "SelfExpr",
    "TopLevel",
    "UseDecl",
]


class Operator(Enum):
    """A binary set operator, by its symbol."""

    UNION = "+"
    INTERSECTION = "&"
    EXCLUSION = "-"


@dataclass(frozen=True, slots=True)
class Identifier:
    """A bare name in an expression: a relation or permission of the same definition."""

    name: str
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class NilExpr:
    """`nil`."""

    position: SourcePosition


@dataclass(frozen=True, slots=True)
class SelfExpr:
    """`self` (only a keyword after `use self`)."""

    position: SourcePosition


@dataclass(frozen=True, slots=True)
class ArrowStep:
    """One `->target`, `.any(target)` or `.all(target)` after an arrow's left side."""

    target: str
    function: str
    """``"any"`` for `->` and `.any(...)`, ``"all"`` for `.all(...)`."""
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class Arrow:
    """`left->a->b`: a left expression followed by one or more steps (more than one is nested)."""

    left: Expression
    steps: tuple[ArrowStep, ...]
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class BinaryChain:
    """`a op b op c ...` (left-associative) with two or more operands."""

    operator: Operator
    operands: tuple[Expression, ...]
    position: SourcePosition


Expression: TypeAlias = Identifier | NilExpr | SelfExpr | Arrow | BinaryChain


@dataclass(frozen=True, slots=True)
class AllowedType:
    """One alternative of a relation's type annotation: `type`, `type#rel`, `type:*`, `... with ...`."""

    type: str
    relation: str | None
    wildcard: bool
    caveat: str | None
    expiration: bool
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class RelationDecl:
    """`relation name: type | type#rel | type:* ...`."""

    name: str
    allowed: tuple[AllowedType, ...]
    doc: str | None
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class PermissionDecl:
    """`permission name [: type | ...] = expression` (the type annotation is kept, unchecked)."""

    name: str
    expression: Expression
    annotation: tuple[str, ...]
    doc: str | None
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class PartialReference:
    """`...partial_name` inside a definition: splice in the partial's members."""

    name: str
    position: SourcePosition


MemberDecl: TypeAlias = RelationDecl | PermissionDecl | PartialReference


@dataclass(frozen=True, slots=True)
class DefinitionDecl:
    """`definition name { members }`."""

    name: str
    members: tuple[MemberDecl, ...]
    doc: str | None
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class PartialDecl:
    """`partial name { members }` (after `use partial`)."""

    name: str
    members: tuple[MemberDecl, ...]
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class CaveatParam:
    """`name type` in a caveat's parameter list; `type` is normalized text like ``map<int>``."""

    name: str
    type: str
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class CaveatDecl:
    """`caveat name(params) { CEL }`; `expression` is the raw CEL text, stripped."""

    name: str
    parameters: tuple[CaveatParam, ...]
    expression: str
    doc: str | None
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class UseDecl:
    """`use flag`."""

    flag: str
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class ImportDecl:
    """`import "path"` (after `use import`)."""

    path: str
    position: SourcePosition


TopLevel: TypeAlias = DefinitionDecl | PartialDecl | CaveatDecl | UseDecl | ImportDecl


@dataclass(frozen=True, slots=True)
class SchemaFile:
    """A whole parsed text, its top-level items in source order."""

    items: tuple[TopLevel, ...]
    source: str

    @property
    def use_flags(self) -> frozenset[str]:
        """The flags turned on by `use` statements."""
        return frozenset(item.flag for item in self.items if isinstance(item, UseDecl))
