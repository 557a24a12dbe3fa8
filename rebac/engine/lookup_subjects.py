"""LookupSubjects candidates: a forward walk from the resource, planned from the schema.

Like the reverse walk of LookupResources, it over-approximates (every branch, both sides
of exclusions and intersections, expired and caveated tuples alike) and the Engine
confirms each candidate with Check.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from rebac.datastore.filters import RelationshipFilter
from rebac.engine.dispatch import RequestScope
from rebac.engine.reachability import rewrite_references
from rebac.schema.definitions import ComputedUserset, Relation, This, TupleToUserset
from rebac.tuples import ObjectRef, Relationship, SubjectRef

__all__ = ["SubjectCandidates", "subject_candidates"]


@dataclass(slots=True)
class SubjectCandidates:
    """Subject ids met on the walk, and whether a wildcard of the subject type was met."""

    ids: set[str] = field(default_factory=set)
    wildcard: bool = False


async def subject_candidates(  # noqa: C901, PLR0912 - one loop over node kinds
    scope: RequestScope,
    resource: ObjectRef,
    permission: str,
    subject_type: str,
    subject_relation: str | None,
) -> SubjectCandidates:
    """Every subject of `subject_type` (`#subject_relation`) reachable from resource#permission."""
    out = SubjectCandidates()
    probe = SubjectRef(subject_type, "_", subject_relation)
    reach = scope.reachability
    seen: set[tuple[str, str, str]] = set()
    frontier = {(resource.type, permission, resource.id)}
    while frontier:
        frontier = {n for n in frontier if n not in seen and reach.can_reach(n[0], n[1], probe)}
        seen |= frontier
        by_node: dict[tuple[str, str], set[str]] = defaultdict(set)
        for otype, rel, oid in frontier:
            if otype == subject_type and rel == subject_relation:
                out.ids.add(oid)
            by_node[(otype, rel)].add(oid)
        nxt: set[tuple[str, str, str]] = set()
        for (otype, rel), ids in sorted(by_node.items()):
            definition = scope.schema.definition(otype)
            member = definition.member(rel) if definition else None
            if member is None:
                continue
            if isinstance(member, Relation):
                for row in await _forward(scope, otype, ids, rel):
                    nxt.update(_visit_subject(row.subject, out, subject_type, subject_relation))
                continue
            for ref in rewrite_references(member.rewrite):
                if isinstance(ref, ComputedUserset):
                    nxt.update((otype, ref.relation, oid) for oid in ids)
                elif isinstance(ref, This):
                    for row in await _forward(scope, otype, ids, rel):
                        nxt.update(_visit_subject(row.subject, out, subject_type, subject_relation))
                elif isinstance(ref, TupleToUserset):
                    for row in await _forward(scope, otype, ids, ref.tupleset_relation):
                        if not row.subject.is_wildcard:
                            nxt.add((row.subject.type, ref.computed_relation, row.subject.id))
        frontier = nxt
    return out


def _visit_subject(
    stored: SubjectRef, out: SubjectCandidates, subject_type: str, subject_relation: str | None
) -> set[tuple[str, str, str]]:
    if stored.relation is None:
        if stored.type == subject_type and subject_relation is None:
            if stored.is_wildcard:
                out.wildcard = True
            else:
                out.ids.add(stored.id)
        return set()
    return {(stored.type, stored.relation, stored.id)}


async def _forward(scope: RequestScope, otype: str, ids: set[str], relation: str) -> list[Relationship]:
    filter_ = RelationshipFilter(resource_type=otype, resource_ids=tuple(sorted(ids)), relation=relation)
    async with scope.query_limit:
        scope.stats.datastore_queries += 1
        return [r async for r in scope.reader.query_relationships(filter_)]
