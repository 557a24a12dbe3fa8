"""LookupResources candidates: a reverse walk from the subject, planned from the schema.

The walk over-approximates: it follows every edge that could carry membership upwards
(stored subjects, subject sets, computed usersets, arrows) and ignores the operators that
could take it away (intersection, exclusion, caveats, expirations). The Engine then
confirms every candidate with one batched Check, so lookups agree with Check exactly.
"""

from __future__ import annotations

from collections import defaultdict

from rebac.datastore.filters import ANY_RELATION, RelationshipFilter, SubjectFilter
from rebac.engine.dispatch import RequestScope
from rebac.engine.reachability import rewrite_references
from rebac.schema.definitions import ComputedUserset, Relation, TupleToUserset
from rebac.tuples import WILDCARD, Relationship, SubjectRef

__all__ = ["resource_candidates"]

_Node = tuple[str, str]  # (type, relation)


class _ReverseIndex:
    """For a node (T, r): which permissions use it, and which arrows walk into it."""

    def __init__(self, scope: RequestScope) -> None:
        self.computed_by: dict[_Node, set[str]] = defaultdict(set)
        # (target type, computed relation) -> {(resource type, tupleset relation, permission)}
        self.arrows_into: dict[_Node, set[tuple[str, str, str]]] = defaultdict(set)
        # (subject type, subject relation) allowed as a subject set somewhere
        self.subject_sets: set[_Node] = set()
        reach = scope.reachability
        for definition in scope.schema.definitions:
            for member in definition.members:
                if isinstance(member, Relation):
                    self.subject_sets.update(
                        (a.type, a.relation) for a in member.allowed if a.relation is not None
                    )
                    continue
                for ref in rewrite_references(member.rewrite):
                    if isinstance(ref, ComputedUserset):
                        self.computed_by[(definition.name, ref.relation)].add(member.name)
                    elif isinstance(ref, TupleToUserset):
                        for target in reach.arrow_targets(definition.name, ref):
                            self.arrows_into[target].add(
                                (definition.name, ref.tupleset_relation, member.name)
                            )


async def resource_candidates(
    scope: RequestScope, resource_type: str, permission: str, subject: SubjectRef
) -> set[str]:
    """Ids of `resource_type` that might have `permission` for `subject` (a superset)."""
    index = _ReverseIndex(scope)
    wanted = scope.reachability.reachable((resource_type, permission))
    seen: set[tuple[str, str, str]] = set()
    frontier: set[tuple[str, str, str]] = set()
    if subject.relation is not None:
        frontier.add((subject.type, subject.relation, subject.id))  # a subject set is its own member
        rows = await _reverse(
            scope, RelationshipFilter(subject=SubjectFilter(subject.type, (subject.id,), subject.relation))
        )
    else:
        rows = await _reverse(
            scope, RelationshipFilter(subject=SubjectFilter(subject.type, (subject.id, WILDCARD), None))
        )
    frontier.update((r.resource.type, r.relation, r.resource.id) for r in rows)
    found: set[str] = set()
    while frontier:
        frontier = {n for n in frontier if n not in seen and (n[0], n[1]) in wanted}
        seen |= frontier
        found.update(oid for (t, r, oid) in frontier if t == resource_type and r == permission)
        by_node: dict[_Node, set[str]] = defaultdict(set)
        for otype, rel, oid in frontier:
            by_node[(otype, rel)].add(oid)
        nxt: set[tuple[str, str, str]] = set()
        for (otype, rel), ids in sorted(by_node.items()):
            nxt.update((otype, perm, oid) for perm in index.computed_by.get((otype, rel), ()) for oid in ids)
            id_tuple = tuple(sorted(ids))
            if (otype, rel) in index.subject_sets:
                rows = await _reverse(scope, RelationshipFilter(subject=SubjectFilter(otype, id_tuple, rel)))
                nxt.update((r.resource.type, r.relation, r.resource.id) for r in rows)
            for res_type, tupleset, perm in sorted(index.arrows_into.get((otype, rel), ())):
                rows = await _reverse(
                    scope,
                    RelationshipFilter(
                        resource_type=res_type,
                        relation=tupleset,
                        subject=SubjectFilter(otype, id_tuple, ANY_RELATION),
                    ),
                )
                nxt.update((res_type, perm, r.resource.id) for r in rows)
        frontier = nxt
    return found


async def _reverse(scope: RequestScope, filter_: RelationshipFilter) -> list[Relationship]:
    async with scope.query_limit:
        scope.stats.datastore_queries += 1
        return [r async for r in scope.reader.reverse_query_relationships(filter_)]
