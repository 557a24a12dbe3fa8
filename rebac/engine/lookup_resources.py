"""LookupResources: a reverse walk from the subject, planned from the schema.

The walk starts at the subject's own relationships and climbs the schema's reverse edges
(subject sets, computed usersets, arrows) toward the requested permission, one batched
reverse query per (type, relation) per level, all queries of a level concurrently. It
yields two sets of the requested type:

- `candidates`: every id membership could flow into (a superset: it ignores the operators
  that take membership away and keeps caveated rows);
- `definite`: ids proven members with no caveat, found only along union-only nodes
  (`lookup_plan.LookupIndex.is_union_only`) and unconditional live rows. Where the walk
  crosses a non-recursive intersection / exclusion / ``.all`` node, that node's candidates
  are confirmed there with one batched Check and its unconditional members carry on as
  definite (SpiceDB's LookupResources checks at the same points).

The Engine answers `definite` directly and confirms ``candidates - definite`` with Check,
so the result equals Check's. Expired rows are dropped with the request's "now", exactly
as Check drops them. A definite member whose proof is so deep that Check might exceed the
depth limit is left to Check (which then raises or answers as it always does).
"""

from __future__ import annotations

import asyncio
import heapq
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from rebac.datastore.filters import ANY_RELATION, RelationshipFilter, SubjectFilter
from rebac.engine.check import is_live
from rebac.engine.closure import is_closure_node
from rebac.engine.dispatch import DispatchCheckResponse, RequestScope
from rebac.engine.lookup_plan import LookupIndex, lookup_index
from rebac.errors import MaxDepthExceededError
from rebac.tuples import WILDCARD, Relationship, SubjectRef

__all__ = ["Confirm", "ReverseWalk", "reverse_walk"]

_Triple = tuple[str, str, str]  # (type, relation, id)

Confirm = Callable[[str, tuple[str, ...], str], Awaitable[DispatchCheckResponse]]
"""Batched Check of ``(type, ids, relation)`` for the lookup's subject at the root depth."""

_DEPTH_MARGIN = 2
"""Definite proofs must be this many dispatches shallower than the depth limit."""


@dataclass(frozen=True, slots=True)
class ReverseWalk:
    """Ids of the requested type: `definite` members (no Check needed) within `candidates`."""

    candidates: frozenset[str]
    definite: frozenset[str]


class _Walk:
    """The state of one reverse walk: reached triples and the edges between them."""

    def __init__(self, scope: RequestScope, index: LookupIndex, target: tuple[str, str]) -> None:
        self.scope = scope
        self.index = index
        self.wanted = scope.reachability.reachable(target)
        self.reached: set[_Triple] = set()
        # src -> [(dst, unconditional)]: membership of src flows into dst.
        self.edges: dict[_Triple, list[tuple[_Triple, bool]]] = defaultdict(list)
        # Triples proven directly from the subject's rows, with the dispatch depth they need.
        self.seeds: dict[_Triple, int] = {}

    def seed(self, triple: _Triple, height: int) -> None:
        if triple[:2] in self.wanted and height < self.seeds.get(triple, height + 1):
            self.seeds[triple] = height

    def link(self, src: _Triple, dst: _Triple, unconditional: bool) -> None:  # noqa: FBT001 - internal
        if dst[:2] in self.wanted:
            self.edges[src].append((dst, unconditional))

    def rows(self, rows: Iterable[Relationship]) -> Iterable[tuple[Relationship, bool]]:
        """Live rows with whether each is unconditional (no caveat)."""
        now = self.scope.now
        return ((row, row.caveat is None) for row in rows if is_live(row, now))


async def reverse_walk(
    scope: RequestScope,
    resource_type: str,
    permission: str,
    subject: SubjectRef,
    confirm: Confirm,
) -> ReverseWalk:
    """Walk from `subject` to `resource_type#permission`; see the module docstring.

    `confirm` checks candidates at intersection/exclusion/``.all`` nodes on the way; its
    MaxDepthExceededError only withholds the shortcut (the Engine's final Check decides).
    """
    index = lookup_index(scope.schema, scope.reachability)
    target = (resource_type, permission)
    walk = _Walk(scope, index, target)
    frontier: set[_Triple] = set()
    if subject.relation is not None:
        own = (subject.type, subject.relation, subject.id)
        walk.seed(own, 0)  # a subject set is a member of itself, with no dispatch
        frontier.add(own)
        first = SubjectFilter(subject.type, (subject.id,), subject.relation)
    else:
        first = SubjectFilter(subject.type, (subject.id, WILDCARD), None)
    if subject.relation is None:
        frontier |= await _group_closures(walk, subject)
    for row, unconditional in walk.rows(await _reverse(scope, RelationshipFilter(subject=first))):
        triple = (row.resource.type, row.relation, row.resource.id)
        frontier.add(triple)
        if unconditional:
            walk.seed(triple, 1)
    while frontier:
        frontier = _close_computed(
            walk, {n for n in frontier if n not in walk.reached and n[:2] in walk.wanted}
        )
        walk.reached |= frontier
        frontier = await _step(walk, frontier)
    await _confirm_inner_nodes(walk, target, confirm)
    heights = _propagate(walk)
    candidates = frozenset(oid for (t, r, oid) in walk.reached if (t, r) == target)
    limit = scope.max_depth - _DEPTH_MARGIN
    definite = frozenset(
        oid for (t, r, oid), height in heights.items() if (t, r) == target and height < limit
    )
    return ReverseWalk(candidates, definite & candidates)


async def _group_closures(walk: _Walk, subject: SubjectRef) -> set[_Triple]:
    """The subject's nested-group memberships in one query each (`closure.py`), seeded.

    Only for closure nodes on the way to the target and only where the closure is usable
    (every row unconditional, no expiration); elsewhere the walk climbs level by level.
    """
    closures = walk.scope.closures
    if closures is None:
        return set()
    schema = walk.scope.schema
    nodes = sorted(n for n in walk.wanted if is_closure_node(schema, n[0], n[1], subject.type))
    found: set[_Triple] = set()
    for (otype, rel), closure in zip(
        nodes, await asyncio.gather(*(closures.get(t, r, subject) for t, r in nodes)), strict=True
    ):
        if closure is None:
            continue
        for oid, hops in closure.levels.items():
            triple = (otype, rel, oid)
            walk.seed(triple, hops + 1)
            found.add(triple)
    return found


def _close_computed(walk: _Walk, frontier: set[_Triple]) -> set[_Triple]:
    """`frontier` plus the permissions reached from it by computed usersets alone (no I/O)."""
    out = set(frontier)
    stack = list(frontier)
    while stack:
        src = stack.pop()
        otype, rel, oid = src
        for perm in walk.index.computed_by.get((otype, rel), ()):
            dst = (otype, perm, oid)
            walk.link(src, dst, True)  # noqa: FBT003 - a computed userset has no row
            if dst[:2] in walk.wanted and dst not in out and dst not in walk.reached:
                out.add(dst)
                stack.append(dst)
    return out


async def _step(walk: _Walk, frontier: set[_Triple]) -> set[_Triple]:
    """One level up from `frontier`: every reverse query of the level, concurrently."""
    by_node: dict[tuple[str, str], set[str]] = defaultdict(set)
    for otype, rel, oid in frontier:
        by_node[(otype, rel)].add(oid)
    jobs: list[Awaitable[None]] = []
    found: set[_Triple] = set()
    scope, index = walk.scope, walk.index

    async def subject_sets(otype: str, rel: str, ids: tuple[str, ...]) -> None:
        flt = RelationshipFilter(subject=SubjectFilter(otype, ids, rel))
        for row, unconditional in walk.rows(await _reverse(scope, flt)):
            dst = (row.resource.type, row.relation, row.resource.id)
            walk.link((otype, rel, row.subject.id), dst, unconditional)
            found.add(dst)

    async def arrows(otype: str, arrow: tuple[str, str], uses: dict[str, list[tuple[str, str]]]) -> None:
        """One reverse query of `arrow` (resource type, tupleset) for every id reached in `otype`.

        `uses`: subject id -> [(relation reached on it, permission the arrow feeds)].
        """
        res_type, tupleset = arrow
        ids = tuple(sorted(uses))
        flt = RelationshipFilter(
            resource_type=res_type, relation=tupleset, subject=SubjectFilter(otype, ids, ANY_RELATION)
        )
        for row, unconditional in walk.rows(await _reverse(scope, flt)):
            for rel, perm in uses.get(row.subject.id, ()):
                dst = (res_type, perm, row.resource.id)
                walk.edges[(otype, rel, row.subject.id)].append((dst, unconditional))  # dst is wanted
                found.add(dst)

    jobs.extend(
        subject_sets(otype, rel, tuple(sorted(ids)))
        for (otype, rel), ids in sorted(by_node.items())
        if (otype, rel) in index.subject_sets
    )
    jobs.extend(
        arrows(otype, (t, ts), uses) for (otype, t, ts), uses in _arrow_uses(index, by_node, walk.wanted)
    )
    await asyncio.gather(*jobs)
    return found


def _arrow_uses(
    index: LookupIndex, by_node: dict[tuple[str, str], set[str]], wanted: frozenset[tuple[str, str]]
) -> list[tuple[tuple[str, str, str], dict[str, list[tuple[str, str]]]]]:
    """Arrow queries of one level: (subject type, resource type, tupleset) -> id -> uses.

    Arrows from several relations of one type (say `view` and `edit` of the same folders)
    share one query per (subject type, resource type, tupleset).
    """
    out: dict[tuple[str, str, str], dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for (otype, rel), ids in by_node.items():
        for res_type, tupleset, perm in sorted(index.arrows_into.get((otype, rel), ())):
            if (res_type, perm) not in wanted:
                continue
            uses = out[(otype, res_type, tupleset)]
            for oid in ids:
                uses[oid].append((rel, perm))
    return sorted(out.items())


async def _confirm_inner_nodes(walk: _Walk, target: tuple[str, str], confirm: Confirm) -> None:
    """Check candidates at non-union-only, non-recursive nodes below the target; seed members."""
    by_node: dict[tuple[str, str], set[str]] = defaultdict(set)
    for otype, rel, oid in walk.reached:
        node = (otype, rel)
        if (
            node != target
            and not walk.index.is_union_only(node)
            and not walk.scope.reachability.is_recursive(node)
        ):
            by_node[node].add(oid)
    if not by_node:
        return

    async def one(node: tuple[str, str], ids: set[str]) -> None:
        try:
            response = await confirm(node[0], tuple(sorted(ids)), node[1])
        except MaxDepthExceededError:
            return  # no shortcut here: the final Check meets the same limit and raises
        for oid, condition in response.members.items():
            if condition is None:
                walk.seed((node[0], node[1], oid), response.depth_required)

    await asyncio.gather(*(one(node, ids) for node, ids in sorted(by_node.items())))


def _propagate(walk: _Walk) -> dict[_Triple, int]:
    """Definite triples with the fewest dispatches proving each (Dijkstra over sure edges).

    An edge is sure when its row is unconditional and its destination is union-only; a
    non-union-only node is definite only through its own seeds (`_confirm_inner_nodes`).
    """
    heights: dict[_Triple, int] = {}
    queue = [(height, triple) for triple, height in walk.seeds.items()]
    heapq.heapify(queue)
    union_only = walk.index.is_union_only
    while queue:
        height, triple = heapq.heappop(queue)
        if triple in heights:
            continue
        heights[triple] = height
        for dst, unconditional in walk.edges.get(triple, ()):
            if unconditional and dst not in heights and union_only(dst[:2]):
                heapq.heappush(queue, (height + 1, dst))
    return heights


async def _reverse(scope: RequestScope, filter_: RelationshipFilter) -> list[Relationship]:
    async with scope.query_limit:
        scope.stats.datastore_queries += 1
        return [r async for r in scope.reader.reverse_query_relationships(filter_)]
