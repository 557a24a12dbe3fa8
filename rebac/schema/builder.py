"""Terse constructors for the compiled IR, for tests and programmatic schemas.

schema(
definition("user"),
definition("doc", relation("viewer", "user", "group#member", "user:*"),
permission("view", union(computed("viewer"), arrow("parent", "view")))),
)
"""

from __future__ import annotations

from rebac.schema.definitions import (
    AllowedSubject,
    ArrowFunction,
    CaveatDefinition,
    CaveatParameter,
    CompiledSchema,
    ComputedUserset,
    Definition,
    Exclusion,
    Intersection,
    Member,
    Nil,
    Permission,
    Relation,
    Rewrite,
    TupleToUserset,
    Union,
)

__all__ = [
    "allowed",
    "arrow",
    "arrow_all",
    "caveat",
    "computed",
    "definition",
    "exclusion",
    "intersection",
    "nil",
    "permission",
    "relation",
    "schema",
    "union",
]


def allowed(text: str) -> AllowedSubject:
    """Parse one annotation entry: `user`, `group#member`, `user:*`, `user with c and expiration`."""
    head, _, traits_text = text.partition(" with ")
    traits = [t.strip() for t in traits_text.split(" and ")] if traits_text else []
    expiration = "expiration" in traits
    caveat_names = [t for t in traits if t != "expiration"]
    cav = caveat_names[0] if caveat_names else None
    if head.endswith(":*"):
        return AllowedSubject(head[:-2], None, wildcard=True, caveat=cav, expiration=expiration)
    type_name, _, rel = head.partition("#")
    return AllowedSubject(type_name, rel or None, caveat=cav, expiration=expiration)


def relation(name: str, *subjects: str | AllowedSubject, doc: str | None = None) -> Relation:
    """`relation name: subjects...`."""
    return Relation(name, tuple(allowed(s) if isinstance(s, str) else s for s in subjects), doc)


def permission(name: str, rewrite: Rewrite | str, doc: str | None = None) -> Permission:
    """`permission name = rewrite` (a plain string means a computed userset)."""
    return Permission(name, computed(rewrite) if isinstance(rewrite, str) else rewrite, doc)


def definition(name: str, *members: Member, doc: str | None = None) -> Definition:
    """`definition name { members }`."""
    return Definition(name, members, doc)


def caveat(name: str, expression: str, **parameters: str) -> CaveatDefinition:
    """`caveat name(param type, ...) { expression }`."""
    return CaveatDefinition(name, tuple(CaveatParameter(k, v) for k, v in parameters.items()), expression)


def schema(*items: Definition | CaveatDefinition) -> CompiledSchema:
    """A schema of the given definitions and caveats, in order."""
    return CompiledSchema(
        tuple(i for i in items if isinstance(i, Definition)),
        tuple(i for i in items if isinstance(i, CaveatDefinition)),
    )


def computed(name: str) -> ComputedUserset:
    """Another relation or permission of the same object."""
    return ComputedUserset(name)


def arrow(tupleset: str, target: str) -> TupleToUserset:
    """`tupleset->target`."""
    return TupleToUserset(tupleset, target, ArrowFunction.ANY)


def arrow_all(tupleset: str, target: str) -> TupleToUserset:
    """`tupleset.all(target)`."""
    return TupleToUserset(tupleset, target, ArrowFunction.ALL)


def _rw(item: Rewrite | str) -> Rewrite:
    return computed(item) if isinstance(item, str) else item


def union(*children: Rewrite | str) -> Union:
    """`a + b + ...`."""
    return Union(tuple(_rw(c) for c in children))


def intersection(*children: Rewrite | str) -> Intersection:
    """`a & b & ...`."""
    return Intersection(tuple(_rw(c) for c in children))


def exclusion(base: Rewrite | str, subtracted: Rewrite | str) -> Exclusion:
    """`base - subtracted`."""
    return Exclusion(_rw(base), _rw(subtracted))


def nil() -> Nil:
    """`nil`."""
    return Nil()
