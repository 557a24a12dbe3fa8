"""What the lookups' graph walks need from the schema, computed once per compiled schema.

Both lookups walk the relationship graph between ``(type, relation)`` nodes (reverse from
the subject for LookupResources, forward from the resource for LookupSubjects). Membership
found on the walk is *definite* (no Check needed) only while it flows into nodes whose
members are exactly the union of what flows in: relations, and permissions built from
``+``, computed usersets and ``->``/``.any`` arrows only (`is_union_only`). Intersections,
exclusions, ``.all`` arrows and (programmatic) ``This`` in a permission are not: what
flows through them is only a candidate that Check must confirm.
"""

from __future__ import annotations

from collections import defaultdict
from typing import assert_never

from rebac.engine.reachability import Reachability, rewrite_references
from rebac.schema.definitions import (
    ArrowFunction,
    CompiledSchema,
    ComputedUserset,
    Exclusion,
    Intersection,
    Nil,
    Relation,
    Rewrite,
    This,
    TupleToUserset,
    Union,
)

__all__ = ["LookupIndex", "lookup_index"]

Node = tuple[str, str]
"""``(type, relation or permission)``."""


def _union_only(rewrite: Rewrite) -> bool:
    match rewrite:
        case Union(children=children):
            return all(_union_only(child) for child in children)
        case ComputedUserset() | Nil():
            return True
        case TupleToUserset(function=function):
            return function is ArrowFunction.ANY
        case Intersection() | Exclusion() | This():
            return False
        case _:  # pragma: no cover - the ADT is closed
            assert_never(rewrite)


class LookupIndex:
    """The schema's edges indexed for lookups. Immutable after build; shared by requests.

    - `computed_by[(T, r)]`: permissions of T that name r as a computed userset;
    - `arrows_into[(S, p)]`: ``(T, tupleset, permission)`` for arrows on T that walk to S#p;
    - `subject_sets`: ``(T, r)`` pairs allowed as a subject set somewhere;
    - `is_union_only(node)`: see the module docstring.
    """

    def __init__(self, schema: CompiledSchema, reachability: Reachability) -> None:
        self.schema = schema
        self.reachability = reachability
        self.computed_by: dict[Node, set[str]] = defaultdict(set)
        self.arrows_into: dict[Node, set[tuple[str, str, str]]] = defaultdict(set)
        self.subject_sets: set[Node] = set()
        self._union_only: dict[Node, bool] = {}
        for definition in schema.definitions:
            for member in definition.members:
                node = (definition.name, member.name)
                if isinstance(member, Relation):
                    self._union_only[node] = True
                    self.subject_sets.update(
                        (a.type, a.relation) for a in member.allowed if a.relation is not None
                    )
                    continue
                self._union_only[node] = _union_only(member.rewrite)
                for ref in rewrite_references(member.rewrite):
                    if isinstance(ref, ComputedUserset):
                        self.computed_by[(definition.name, ref.relation)].add(member.name)
                    elif isinstance(ref, TupleToUserset):
                        for target in reachability.arrow_targets(definition.name, ref):
                            self.arrows_into[target].add(
                                (definition.name, ref.tupleset_relation, member.name)
                            )

    def is_union_only(self, node: Node) -> bool:
        """True if `node`'s members are exactly the union of what flows into it (see module)."""
        return self._union_only.get(node, False)


_INDEXES: dict[int, tuple[CompiledSchema, LookupIndex]] = {}
_MAX_INDEXES = 8


def lookup_index(schema: CompiledSchema, reachability: Reachability) -> LookupIndex:
    """The `LookupIndex` of `schema`, memoized for the last few schemas seen."""
    cached = _INDEXES.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    index = LookupIndex(schema, reachability)
    if len(_INDEXES) >= _MAX_INDEXES:
        _INDEXES.pop(next(iter(_INDEXES)))
    _INDEXES[id(schema)] = (schema, index)
    return index
