"""LookupResources: a reverse walk from the subject, planned from the schema.

The walk starts at the subject's own relationships and climbs the schema's reverse edges
(subject sets, computed usersets, arrows) toward the requested permission, level by
level: one batched reverse query per subject-set node and one per (subject type,
tupleset) for the arrows of every resource type over it, all queries of a level
concurrently. Rows are read as bare `Edge` tuples where the reader can (`EdgeReader`).
It yields two sets of the requested type:

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
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol, cast

from rebac.datastore.filters import ANY_RELATION, RelationshipFilter, SubjectFilter
from rebac.engine.closure import is_closure_node
from rebac.engine.dispatch import DispatchCheckResponse, RequestScope
from rebac.engine.lookup_plan import LookupIndex, lookup_index
from rebac.engine.requests import CheckResult, Permissionship
from rebac.errors import MaxDepthExceededError
from rebac.tuples import WILDCARD, SubjectRef

__all__ = ["Confirm", "Edge", "EdgeReader", "ResourcePage", "ReverseWalk", "resource_pages", "reverse_walk"]

_Node = tuple[str, str]  # (type, relation or permission)
_Ids = dict[_Node, set[str]]  # ids per node: how the walk holds the triples it reached

Confirm = Callable[[str, tuple[str, ...], str], Awaitable[DispatchCheckResponse]]
"""Batched Check of ``(type, ids, relation)`` for the lookup's subject at the root depth."""

Edge = tuple[str, str, str, str, bool, datetime | None]
"""One row as the walk reads it: (resource type, relation, resource id, subject id, caveated, expiration)."""


class EdgeReader(Protocol):
    """**Protocol (optional capability):** a reverse query's rows as `Edge` tuples.

    The walk reads thousands of rows per lookup and needs neither whole relationships nor
    key order; a reader that can skip both (Postgres: one unordered round trip) saves most
    of the walk's time. Other readers (memory, contextual relationships) are read with
    `reverse_query_relationships`, with the same result.
    """

    async def reverse_edges(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the domain word
        *,
        resource_types: Sequence[str] | None = None,
    ) -> Sequence[Edge]:
        """The live rows matching `filter` (whose `subject` is set), in any order.

        `resource_types` (with no `filter.resource_type`) keeps only rows of those types.
        """
        ...


_DEPTH_MARGIN = 2
"""Definite proofs must be this many dispatches shallower than the depth limit."""


@dataclass(frozen=True, slots=True)
class ReverseWalk:
    """Ids of the requested type: `definite` members (no Check needed) within `candidates`."""

    candidates: frozenset[str]
    definite: frozenset[str]


class _Walk:
    """The state of one reverse walk: the ids reached per node and the sure edges between them.

    Only nodes that can flow into the target (`wanted`) enter the walk. The state is kept
    per node, as sets of ids, rather than per (type, relation, id) triple: a lookup reaches
    tens of thousands of ids of a handful of nodes, and set operations over ids (whose
    hashes Python caches) cost a fraction of the same over triples.

    An edge is *sure* when membership of its source proves membership of its destination
    with one more dispatch: an unconditional row, or a computed userset, into a union-only
    node. Only sure edges are kept (other rows only make candidates): computed usersets
    implicitly (`sure_computed`: every id of the node), rows in `children` (rows of one
    query kind: source id -> destination ids) named from `sure_rows` per source node.
    """

    def __init__(self, scope: RequestScope, index: LookupIndex, target: _Node) -> None:
        self.scope = scope
        self.index = index
        self.wanted = scope.reachability.reachable(target)
        self.reached: _Ids = {}
        # Ids proven directly from the subject's rows, with the dispatch depth they need.
        self.seeds: dict[_Node, dict[str, int]] = defaultdict(dict)
        self.children: dict[object, dict[str, list[str]]] = {}
        self.sure_rows: dict[_Node, set[tuple[_Node, object]]] = defaultdict(set)
        self._union_only = {node: index.is_union_only(node) for node in self.wanted}
        self.sure_computed: dict[_Node, list[_Node]] = {}
        for otype, rel in self.wanted:
            nodes = [(otype, perm) for perm in sorted(index.computed_by.get((otype, rel), ()))]
            self.sure_computed[(otype, rel)] = [n for n in nodes if self.sure_into(n)]
        reader = scope.reader
        # Looked up once per walk; a delegating reader (the server's instrumentation) forwards it.
        self._edges = cast("EdgeReader", reader) if hasattr(reader, "reverse_edges") else None

    def seed(self, node: _Node, oid: str, height: int) -> None:
        if node in self.wanted:
            known = self.seeds[node]
            if height < known.get(oid, height + 1):
                known[oid] = height

    def sure_into(self, node: _Node) -> bool:
        """True if an unconditional edge into `node` is sure (`node` wanted and union-only)."""
        return self._union_only.get(node, False)

    def add_sure_rows(self, src: _Node, dst: _Node, key: object, children: dict[str, list[str]]) -> None:
        """Sure rows from `src` into `dst`: `children` (source id -> destination ids) of query `key`.

        A key names one kind of query (what its rows mean does not depend on the level that
        asked), so the rows of several levels merge under it.
        """
        if self.sure_into(dst) and children:
            known = self.children.get(key)
            if known is None:
                self.children[key] = dict(children)
            else:
                known.update(children)
            self.sure_rows[src].add((dst, key))

    async def read(
        self, filter_: RelationshipFilter, resource_types: Sequence[str] | None = None
    ) -> list[Edge]:
        """The live rows of one reverse query (expired rows dropped with the request's "now").

        With `resource_types`, only rows of those types (`filter_` names no resource type).
        """
        scope = self.scope
        async with scope.query_limit:
            scope.stats.datastore_queries += 1
            if self._edges is not None:
                rows: Iterable[Edge] = await self._edges.reverse_edges(filter_, resource_types=resource_types)
            else:
                filters = (
                    [filter_]
                    if resource_types is None
                    else [replace(filter_, resource_type=t) for t in resource_types]
                )
                rows = [
                    (
                        r.resource.type,
                        r.relation,
                        r.resource.id,
                        r.subject.id,
                        r.caveat is not None,
                        r.expiration,
                    )
                    for flt in filters
                    async for r in scope.reader.reverse_query_relationships(flt)
                ]
        now = scope.now
        # As `check.is_live`: a row expires at its expiration (``expiration <= now``).
        return [row for row in rows if row[5] is None or row[5] > now]


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
    wanted = walk.wanted
    frontier: _Ids = defaultdict(set)
    if subject.relation is not None:
        own = (subject.type, subject.relation)
        walk.seed(own, subject.id, 0)  # a subject set is a member of itself, with no dispatch
        if own in wanted:
            frontier[own].add(subject.id)
        first = SubjectFilter(subject.type, (subject.id,), subject.relation)
    else:
        first = SubjectFilter(subject.type, (subject.id, WILDCARD), None)
        await _group_closures(walk, subject, frontier)
    for rtype, rel, rid, _, caveated, _ in await walk.read(RelationshipFilter(subject=first)):
        node = (rtype, rel)
        if node in wanted:
            frontier[node].add(rid)
            if not caveated:
                walk.seed(node, rid, 1)
    while frontier:
        frontier = _close_computed(walk, frontier)
        for node, ids in frontier.items():
            walk.reached.setdefault(node, set()).update(ids)
        frontier = await _step(walk, frontier)
    await _confirm_inner_nodes(walk, target, confirm)
    heights = _propagate(walk, scope.max_depth - _DEPTH_MARGIN)
    candidates = frozenset(walk.reached.get(target, ()))
    return ReverseWalk(candidates, candidates.intersection(heights.get(target, ())))


async def _group_closures(walk: _Walk, subject: SubjectRef, frontier: _Ids) -> None:
    """The subject's nested-group memberships in one query each (`closure.py`), seeded.

    Only for closure nodes on the way to the target and only where the closure is usable
    (every row unconditional, no expiration); elsewhere the walk climbs level by level.
    """
    closures = walk.scope.closures
    if closures is None:
        return
    schema = walk.scope.schema
    nodes = sorted(n for n in walk.wanted if is_closure_node(schema, n[0], n[1], subject.type))
    for node, closure in zip(
        nodes, await asyncio.gather(*(closures.get(t, r, subject) for t, r in nodes)), strict=True
    ):
        if closure is None:
            continue
        for oid, hops in closure.levels.items():
            walk.seed(node, oid, hops + 1)
            frontier[node].add(oid)


def _close_computed(walk: _Walk, found: _Ids) -> _Ids:
    """The ids of `found` not reached yet, plus the permissions they reach by computed usersets alone.

    No I/O, and no edges to record: a computed userset carries every id of its node.
    """
    reached = walk.reached
    out: _Ids = {}
    for node, ids in found.items():
        new = ids.difference(reached[node]) if node in reached else ids
        if new:
            out[node] = set(new)
    pending = list(out.items())
    while pending:
        (otype, rel), ids = pending.pop()
        for perm in walk.index.computed_by.get((otype, rel), ()):
            node = (otype, perm)
            if node not in walk.wanted:
                continue
            new = ids.difference(reached.get(node, ()), out.get(node, ()))
            if new:
                out.setdefault(node, set()).update(new)
                pending.append((node, new))
    return out


async def _step(walk: _Walk, frontier: _Ids) -> _Ids:
    """One level up from `frontier`: every reverse query of the level, concurrently."""
    found: _Ids = defaultdict(set)
    jobs: list[Awaitable[None]] = [
        _subject_sets(walk, src, ids, found)
        for src, ids in sorted(frontier.items())
        if src in walk.index.subject_sets
    ]
    jobs.extend(_arrows(walk, key, uses, frontier, found) for key, uses in _arrow_uses(walk, frontier))
    await asyncio.gather(*jobs)
    return found


async def _subject_sets(walk: _Walk, src: _Node, ids: set[str], found: _Ids) -> None:
    """One reverse query of the subject sets ``src#id`` for `ids`; what they reach goes to `found`."""
    rows = await walk.read(RelationshipFilter(subject=SubjectFilter(src[0], tuple(sorted(ids)), src[1])))
    sure: dict[_Node, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for rtype, relation, rid, sid, caveated, _ in rows:
        dst = (rtype, relation)
        if dst in walk.wanted:
            found[dst].add(rid)
            if not caveated:
                sure[dst][sid].append(rid)
    for dst, children in sure.items():
        walk.add_sure_rows(src, dst, ("subject set", src, dst), children)


async def _arrows(
    walk: _Walk, key: tuple[str, str], uses: list[tuple[_Node, str, str]], frontier: _Ids, found: _Ids
) -> None:
    """One reverse query of the arrows over `key` (subject type, tupleset) for a level.

    `uses`: (node of the subject type in `frontier`, resource type of an arrow over the
    tupleset, permission the arrow feeds). Arrows of several resource types over the same
    tupleset (a folder's `parent` is the parent of folders and of documents) share the
    query; its rows are grouped by resource type and subject id, then shared by every use.
    """
    otype, tupleset = key
    ids = tuple(sorted(set().union(*(frontier[src] for src, _, _ in uses))))
    types = sorted({res_type for _, res_type, _ in uses})
    flt = RelationshipFilter(relation=tupleset, subject=SubjectFilter(otype, ids, ANY_RELATION))
    children: dict[str, dict[str, list[str]]] = {t: defaultdict(list) for t in types}
    caveated_rows: list[tuple[str, str, str]] = []
    for rtype, _, rid, sid, caveated, _ in await walk.read(flt, resource_types=types):
        children[rtype][sid].append(rid)
        if caveated:
            caveated_rows.append((rtype, sid, rid))
    sure = children
    if caveated_rows:  # rare: copy, then drop each caveated row once (a duplicate may be sure)
        sure = {t: {sid: list(rids) for sid, rids in by_sid.items()} for t, by_sid in children.items()}
        for rtype, sid, rid in caveated_rows:
            sure[rtype][sid].remove(rid)
    for src, res_type, perm in uses:
        dst, by_sid = (res_type, perm), children[res_type]
        into = found[dst]
        for sid in frontier[src]:
            rids = by_sid.get(sid)
            if rids:
                into.update(rids)
        walk.add_sure_rows(src, dst, (otype, res_type, tupleset), sure[res_type])


def _arrow_uses(walk: _Walk, frontier: _Ids) -> list[tuple[tuple[str, str], list[tuple[_Node, str, str]]]]:
    """Arrow queries of one level: (subject type, tupleset) -> uses (see `_arrows`).

    Only arrows into wanted permissions are followed.
    """
    out: dict[tuple[str, str], list[tuple[_Node, str, str]]] = defaultdict(list)
    for src in frontier:
        for res_type, tupleset, perm in sorted(walk.index.arrows_into.get(src, ())):
            if (res_type, perm) in walk.wanted:
                out[(src[0], tupleset)].append((src, res_type, perm))
    return sorted(out.items())


async def _confirm_inner_nodes(walk: _Walk, target: _Node, confirm: Confirm) -> None:
    """Check candidates at non-union-only, non-recursive nodes below the target; seed members."""
    reachability = walk.scope.reachability
    inner = sorted(
        node
        for node in walk.reached
        if node != target and not walk.index.is_union_only(node) and not reachability.is_recursive(node)
    )

    async def one(node: _Node, ids: set[str]) -> None:
        try:
            response = await confirm(node[0], tuple(sorted(ids)), node[1])
        except MaxDepthExceededError:
            return  # no shortcut here: the final Check meets the same limit and raises
        for oid, condition in response.members.items():
            if condition is None:
                walk.seed(node, oid, response.depth_required)

    await asyncio.gather(*(one(node, walk.reached[node]) for node in inner))


def _propagate(walk: _Walk, limit: int) -> dict[_Node, dict[str, int]]:
    """Ids proven with fewer than `limit` dispatches, per node, with the fewest proving each.

    A shortest-path search over sure edges from the seeds; every edge is one dispatch, so
    it goes level by level (the ids of each node per height) instead of through a heap. A
    non-union-only node is definite only through its own seeds (`_confirm_inner_nodes`).
    """
    heights: dict[_Node, dict[str, int]] = defaultdict(dict)
    levels: dict[int, _Ids] = defaultdict(lambda: defaultdict(set))
    for node, seeded in walk.seeds.items():
        for oid, height in seeded.items():
            if height < limit:
                levels[height][node].add(oid)
    height = 0
    while levels:
        pending = levels.pop(height, {})
        above = levels[height + 1] if height + 1 < limit and pending else None
        for node, ids in pending.items():
            known = heights[node]
            new = ids.difference(known)
            if new:
                known.update(dict.fromkeys(new, height))
                if above is not None:
                    _climb(walk, node, new, above)
        if above is not None and not above:
            del levels[height + 1]
        height += 1
    return heights


def _climb(walk: _Walk, node: _Node, ids: set[str], above: _Ids) -> None:
    """Add to `above` what the sure edges from `ids` of `node` reach."""
    for dst in walk.sure_computed.get(node, ()):
        above[dst] |= ids
    for dst, key in walk.sure_rows.get(node, ()):
        children, into = walk.children[key], above[dst]
        for oid in ids:
            rids = children.get(oid)
            if rids:
                into.update(rids)


@dataclass(frozen=True, slots=True)
class ResourcePage:
    """Consecutive LookupResources results, in id order (`Engine.lookup_resource_pages`).

    Every id in `ids` has the permission except those in `conditional`, which are
    CONDITIONAL with the missing context given there. `cursor` resumes after the last id.
    """

    ids: tuple[str, ...]
    conditional: Mapping[str, tuple[str, ...]]
    cursor: str


def resource_pages(
    ids: Sequence[str],
    definite: frozenset[str],
    verdict: Callable[[str], CheckResult],
    cursor_after: Callable[[str], str],
    *,
    limit: int | None,
    size: int,
) -> Iterator[ResourcePage]:
    """The results among sorted `ids`, in pages of at most `size`, at most `limit` in all.

    `definite` ids have the permission; each other id gets its `verdict` (NO_PERMISSION
    drops it). Lazy, page by page, so a verdict that raises does so after the pages before
    it, as a stream of single results would. When the walk proved every id the pages are
    plain slices: no per-result work at all.
    """
    remaining = len(ids) if limit is None else min(limit, len(ids))
    if definite.issuperset(ids):
        for start in range(0, remaining, size):
            page = tuple(ids[start : min(start + size, remaining)])
            yield ResourcePage(page, {}, cursor_after(page[-1]))
        return
    kept: list[str] = []
    conditional: dict[str, tuple[str, ...]] = {}
    for rid in ids:
        if not remaining:
            break
        if rid not in definite:
            result = verdict(rid)
            if result.permissionship is Permissionship.NO_PERMISSION:
                continue
            if result.permissionship is Permissionship.CONDITIONAL:
                conditional[rid] = result.missing_context
        kept.append(rid)
        remaining -= 1
        if len(kept) == size:
            yield ResourcePage(tuple(kept), conditional, cursor_after(rid))
            kept, conditional = [], {}
    if kept:
        yield ResourcePage(tuple(kept), conditional, cursor_after(kept[-1]))
