"""The compiled schema: an immutable IR of frozen dataclasses.

This module is the contract between the schema compiler (which produces it), the
generator (which prints it back as text), the type system and the evaluator (which
read it). Source positions and nothing else are excluded from equality, so that
``compile(generate(compile(s))) == compile(s)``.

The rewrite ADT::

    Rewrite = Union | Intersection | Exclusion | ComputedUserset | TupleToUserset | Nil | This

Match on it with ``match``/``case`` and an ``assert_never`` default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import TypeAlias

from rebac.errors import SourcePosition

__all__ = [
    "AllowedSubject",
    "ArrowFunction",
    "CaveatDefinition",
    "CaveatParameter",
    "CompiledSchema",
    "ComputedUserset",
    "Definition",
    "Exclusion",
    "Intersection",
    "Member",
    "Nil",
    "Permission",
    "Relation",
    "Rewrite",
    "SourcePosition",
    "This",
    "TupleToUserset",
    "Union",
]


@dataclass(frozen=True, slots=True)
class This:
    """The relationships stored directly under the relation itself.

    SpiceDB's language never writes it (a relation *is* its stored tuples); it exists so
    programmatic schemas can express Zanzibar's `_this`.
    """

    position: SourcePosition | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Nil:
    """The empty set (`nil`)."""

    position: SourcePosition | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ComputedUserset:
    """Another relation or permission of the same object (`permission view = edit`)."""

    relation: str
    position: SourcePosition | None = field(default=None, compare=False, repr=False)


class ArrowFunction(Enum):
    """How an arrow combines the results over the tupleset's subjects."""

    ANY = "any"
    """`a->b` and `a.any(b)`: member if member through any subject of `a`."""
    ALL = "all"
    """`a.all(b)`: member if member through every subject of `a` (and there is at least one)."""


@dataclass(frozen=True, slots=True)
class TupleToUserset:
    """An arrow: for each subject of `tupleset_relation`, its `computed_relation`."""

    tupleset_relation: str
    computed_relation: str
    function: ArrowFunction = ArrowFunction.ANY
    position: SourcePosition | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Union:
    """`a + b + ...`: member of any child. Always at least two children after compiling."""

    children: tuple[Rewrite, ...]
    position: SourcePosition | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Intersection:
    """`a & b & ...`: member of every child."""

    children: tuple[Rewrite, ...]
    position: SourcePosition | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Exclusion:
    """`base - subtracted`: member of base and not of subtracted. Never flattened."""

    base: Rewrite
    subtracted: Rewrite
    position: SourcePosition | None = field(default=None, compare=False, repr=False)


Rewrite: TypeAlias = Union | Intersection | Exclusion | ComputedUserset | TupleToUserset | Nil | This
"""A permission's expression tree."""


@dataclass(frozen=True, slots=True)
class AllowedSubject:
    """One entry of a relation's type annotation.

    ``user`` → AllowedSubject("user"); ``group#member`` → relation="member";
    ``user:*`` → wildcard=True; ``user with is_weekday`` → caveat="is_weekday";
    ``user with expiration`` → expiration=True (both may be combined with `and`).
    """

    type: str
    relation: str | None = None
    wildcard: bool = False
    caveat: str | None = None
    expiration: bool = False
    position: SourcePosition | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Relation:
    """A relation: stored tuples whose subjects must match one of `allowed`."""

    name: str
    allowed: tuple[AllowedSubject, ...]
    doc: str | None = None
    position: SourcePosition | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Permission:
    """A permission: computed from `rewrite`, never stored."""

    name: str
    rewrite: Rewrite
    doc: str | None = None
    position: SourcePosition | None = field(default=None, compare=False, repr=False)


Member: TypeAlias = Relation | Permission
"""A named member of a definition."""


@dataclass(frozen=True)
class Definition:
    """An object type with its relations and permissions, in source order.

    `member(name)` is O(1); names are unique within a definition (the compiler checks).
    """

    name: str
    members: tuple[Member, ...] = ()
    doc: str | None = None
    position: SourcePosition | None = field(default=None, compare=False, repr=False)
    _by_name: MappingProxyType[str, Member] = field(
        init=False, compare=False, repr=False, hash=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", MappingProxyType({m.name: m for m in self.members}))

    def member(self, name: str) -> Member | None:
        """The relation or permission called `name`, or None."""
        return self._by_name.get(name)

    @property
    def relations(self) -> tuple[Relation, ...]:
        """The relations, in source order."""
        return tuple(m for m in self.members if isinstance(m, Relation))

    @property
    def permissions(self) -> tuple[Permission, ...]:
        """The permissions, in source order."""
        return tuple(m for m in self.members if isinstance(m, Permission))


@dataclass(frozen=True, slots=True)
class CaveatParameter:
    """A caveat parameter: name and SpiceDB type text (``int``, ``list<string>``, ...)."""

    name: str
    type: str
    position: SourcePosition | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CaveatDefinition:
    """A named CEL condition: `caveat name(params) { expression }`."""

    name: str
    parameters: tuple[CaveatParameter, ...]
    expression: str
    doc: str | None = None
    position: SourcePosition | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class CompiledSchema:
    """A whole compiled, validated schema: object definitions and caveats, in source order.

    Instances are immutable and safe to share between tasks and cache by revision.
    """

    definitions: tuple[Definition, ...] = ()
    caveats: tuple[CaveatDefinition, ...] = ()
    _defs: MappingProxyType[str, Definition] = field(
        init=False, compare=False, repr=False, hash=False
    )
    _caveats: MappingProxyType[str, CaveatDefinition] = field(
        init=False, compare=False, repr=False, hash=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_defs", MappingProxyType({d.name: d for d in self.definitions}))
        object.__setattr__(self, "_caveats", MappingProxyType({c.name: c for c in self.caveats}))

    def definition(self, name: str) -> Definition | None:
        """The definition called `name`, or None."""
        return self._defs.get(name)

    def caveat(self, name: str) -> CaveatDefinition | None:
        """The caveat called `name`, or None."""
        return self._caveats.get(name)
