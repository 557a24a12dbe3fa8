"""LookupSubjects: a forward walk from the resource, planned from the schema.

The walk expands ``resource#permission`` level by level (computed usersets and arrows to
their objects, relations to their stored subjects, subject sets to their members), one
batched forward query per (type, relation) per level, all queries of a level
concurrently, and records:

- `ids` / `wildcard`: every subject of the requested type met (a superset: both sides of
  exclusions and intersections, caveated rows alike);
- `definite` / `definite_wildcard`: those reached from the resource only through
  union-only nodes (`lookup_plan.LookupIndex.is_union_only`) and unconditional live rows,
  shallow enough for the depth limit: Check would answer HAS_PERMISSION for them.

The Engine answers the definite ones directly and confirms the rest with Check, so the
result equals Check's. Expired rows are dropped with the request's "now", as Check does.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass, field

from rebac.datastore.filters import RelationshipFilter
from rebac.engine.check import is_live
from rebac.engine.dispatch import RequestScope
from rebac.engine.lookup_plan import lookup_index
from rebac.engine.reachability import rewrite_references
from rebac.schema.definitions import ComputedUserset, Relation, This, TupleToUserset
from rebac.tuples import WILDCARD, ObjectRef, Relationship, SubjectRef

__all__ = ["SubjectCandidates", "subject_candidates"]

_Triple = tuple[str, str, str]  # (type, relation, id)

_DEPTH_MARGIN = 2
"""Definite subjects must be found this many dispatches above the depth limit."""


@dataclass(slots=True)
class SubjectCandidates:
    """Subject ids met on the walk (and a wildcard of the type), and which are definite."""

    ids: set[str] = field(default_factory=set)
    wildcard: bool = False
    definite: set[str] = field(default_factory=set)
    definite_wildcard: bool = False


@dataclass(slots=True)
class _Walk:
    """Reached triples, the edges between them, and the subjects each one holds."""

    edges: dict[_Triple, list[tuple[_Triple, bool]]] = field(default_factory=lambda: defaultdict(list))
    # triple -> [(subject id or "*", unconditional)]
    hits: dict[_Triple, list[tuple[str, bool]]] = field(default_factory=lambda: defaultdict(list))
    reached: set[_Triple] = field(default_factory=set)


async def subject_candidates(
    scope: RequestScope,
    resource: ObjectRef,
    permission: str,
    subject_type: str,
    subject_relation: str | None,
) -> SubjectCandidates:
    """Every subject of `subject_type` (`#subject_relation`) reachable from resource#permission."""
    probe = SubjectRef(subject_type, "_", subject_relation)
    reach = scope.reachability
    walk = _Walk()
    root = (resource.type, permission, resource.id)
    frontier = {root}
    while frontier:
        frontier = {n for n in frontier if n not in walk.reached and reach.can_reach(n[0], n[1], probe)}
        walk.reached |= frontier
        frontier = await _step(scope, walk, frontier, subject_type, subject_relation)
    return _classify(scope, walk, root, subject_type, subject_relation)


async def _step(  # noqa: C901 - the readers of each node kind, side by side
    scope: RequestScope, walk: _Walk, frontier: set[_Triple], subject_type: str, subject_relation: str | None
) -> set[_Triple]:
    """One level down from `frontier`: every forward query of the level, concurrently."""
    by_node: dict[tuple[str, str], set[str]] = defaultdict(set)
    for otype, rel, oid in frontier:
        by_node[(otype, rel)].add(oid)
    found: set[_Triple] = set()
    jobs: list[Awaitable[None]] = []

    async def stored(otype: str, rel: str, ids: set[str], read: str) -> None:
        """Subjects stored under `read` count for `rel` (the relation itself, or `This`)."""
        for row in await _forward(scope, otype, ids, read):
            src, sub, sure = (otype, rel, row.resource.id), row.subject, row.caveat is None
            if sub.relation is None:
                if sub.type == subject_type and subject_relation is None:
                    walk.hits[src].append((sub.id, sure))
            elif not sub.is_wildcard:
                dst = (sub.type, sub.relation, sub.id)
                walk.edges[src].append((dst, sure))
                found.add(dst)

    async def arrow(otype: str, rel: str, ids: set[str], ref: TupleToUserset) -> None:
        for row in await _forward(scope, otype, ids, ref.tupleset_relation):
            if not row.subject.is_wildcard:
                dst = (row.subject.type, ref.computed_relation, row.subject.id)
                walk.edges[(otype, rel, row.resource.id)].append((dst, row.caveat is None))
                found.add(dst)

    def computed(otype: str, rel: str, ids: set[str], target: str) -> None:
        for oid in ids:
            dst = (otype, target, oid)
            walk.edges[(otype, rel, oid)].append((dst, True))
            found.add(dst)

    for (otype, rel), ids in sorted(by_node.items()):
        definition = scope.schema.definition(otype)
        member = definition.member(rel) if definition else None
        if isinstance(member, Relation):
            jobs.append(stored(otype, rel, ids, rel))
        elif member is not None:
            for ref in rewrite_references(member.rewrite):
                if isinstance(ref, ComputedUserset):
                    computed(otype, rel, ids, ref.relation)
                elif isinstance(ref, This):
                    jobs.append(stored(otype, rel, ids, rel))
                else:
                    jobs.append(arrow(otype, rel, ids, ref))
    await asyncio.gather(*jobs)
    return found


def _classify(
    scope: RequestScope, walk: _Walk, root: _Triple, subject_type: str, subject_relation: str | None
) -> SubjectCandidates:
    """Every subject met on the walk, then those reached along sure edges (`_mark_definite`)."""
    out = SubjectCandidates()
    for otype, rel, oid in walk.reached:
        if otype == subject_type and rel == subject_relation:
            out.ids.add(oid)  # a subject set is a member of itself
    for triple, hits in walk.hits.items():
        if triple in walk.reached:
            for sid, _ in hits:
                if sid == WILDCARD:
                    out.wildcard = True
                else:
                    out.ids.add(sid)
    _mark_definite(scope, walk, root, (subject_type, subject_relation), out)
    return out


def _mark_definite(
    scope: RequestScope,
    walk: _Walk,
    root: _Triple,
    subject_node: tuple[str, str | None],
    out: SubjectCandidates,
) -> None:
    """Breadth first from `root` along unconditional edges out of union-only nodes only."""
    union_only = lookup_index(scope.schema, scope.reachability).is_union_only
    limit = scope.max_depth - _DEPTH_MARGIN
    frontier = [root]
    sure: set[_Triple] = {root}
    for _level in range(limit):
        if not frontier:
            return
        nxt: list[_Triple] = []
        for triple in frontier:
            if (triple[0], triple[1]) == subject_node:
                out.definite.add(triple[2])
            if not union_only(triple[:2]):
                continue  # what flows through an intersection/exclusion/.all needs Check
            for sid, unconditional in walk.hits.get(triple, ()):
                if unconditional:
                    out.definite_wildcard = out.definite_wildcard or sid == WILDCARD
                    if sid != WILDCARD:
                        out.definite.add(sid)
            fresh = [
                d for d, unconditional in walk.edges.get(triple, ()) if unconditional and d in walk.reached
            ]
            nxt.extend(d for d in fresh if d not in sure)
            sure.update(fresh)
        frontier = nxt


async def _forward(scope: RequestScope, otype: str, ids: set[str], relation: str) -> list[Relationship]:
    filter_ = RelationshipFilter(resource_type=otype, resource_ids=tuple(sorted(ids)), relation=relation)
    async with scope.query_limit:
        scope.stats.datastore_queries += 1
        rows = [r async for r in scope.reader.query_relationships(filter_)]
    return [r for r in rows if is_live(r, scope.now)]
