"""Nested-group closures (Zanzibar's Leopard idea), per revision, read in one round trip.

A *closure node* is a relation whose only subject sets are itself, like
``relation member: user | group#member``. Membership of a plain subject (``user:ann``) in
``group:X#member`` is then plain reachability: X is reachable upward from ann through
``member`` rows. `GraphReader.subject_set_closure` returns exactly those rows in one query;
`Closure` turns them into {group id: hops}. The checker answers a closure node from it
instead of walking down one level per round trip.

It is used only where it cannot differ from the step-by-step walk:

- every row of the closure is unconditional and never expires (otherwise None: walk);
- the hops to a requested member fit in the depth left, and when some requested id is
  not a member, the longest subject-set chain below the requested ids does too (one more
  recursive query, `GraphReader.subject_set_height`); otherwise the walk runs and raises
  MaxDepthExceededError exactly as before. That query is asked once per request for all
  the subject sets the prefetch saw (`ClosureResolver.chain_reaches`): the longest chain
  below a superset bounds the chains below any subset, and only a bound at or over the
  depth left sends the exact question for the requested ids;
- readers with contextual relationships are not graph readers, so they always walk.

Closures are cached per (revision, node, subject): rows at a revision never change, so
a write (a newer revision) can never be answered from an older closure.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from rebac.datastore.graph import BatchClosureReader
from rebac.datastore.protocol import GraphReader
from rebac.engine.stats import EngineStats
from rebac.schema.definitions import CompiledSchema, Relation
from rebac.tuples import Relationship, SubjectRef

__all__ = [
    "CLOSURE_BATCH",
    "MAX_BOUNDS",
    "MAX_BOUND_NODES",
    "MAX_CLOSURE_ROWS",
    "UNKNOWN",
    "Closure",
    "ClosureCache",
    "ClosureResolver",
    "build_closure",
    "is_closure_node",
]

_T = TypeVar("_T")

MAX_CLOSURE_ROWS = 10_000
"""Larger closures are not materialized (the checker walks instead)."""

CLOSURE_BATCH = 100
"""Subjects per batched closure query (`ClosureResolver.prime`): keeps each under the row cap."""

MAX_BOUND_NODES = 16
"""(Revision, node) pairs whose per-id chain height bounds are kept (`ClosureCache.bound_heights`)."""

MAX_BOUNDS = 200_000
"""Ids with a known chain height bound kept per (revision, node)."""
"""Subjects per batched closure query (`ClosureResolver.prime`): keeps each under the row cap."""


class _Unknown:
    """The type of `UNKNOWN`."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
"""`ClosureResolver.known`'s answer for a closure not loaded yet."""


@dataclass(frozen=True, slots=True)
class Closure:
    """The ids whose relation contains the subject, with the fewest hops to it (0 = direct)."""

    levels: Mapping[str, int]


def is_closure_node(schema: CompiledSchema, resource_type: str, relation: str, subject_type: str) -> bool:
    """True if `resource_type#relation` is a closure node for plain `subject_type` subjects.

    That is: a relation whose only subject sets are itself, that refers to itself, and
    that allows `subject_type` as a plain subject.
    """
    definition = schema.definition(resource_type)
    member = definition.member(relation) if definition is not None else None
    if not isinstance(member, Relation):
        return False
    recursive = False
    plain = False
    for allowed in member.allowed:
        if allowed.relation is None:
            plain = plain or allowed.type == subject_type
        elif (allowed.type, allowed.relation) == (resource_type, relation):
            recursive = True
        else:
            return False
    return recursive and plain


def build_closure(rows: Sequence[Relationship]) -> Closure | None:
    """Hops per reached id (breadth first); None if any row has a caveat or an expiration."""
    parents: dict[str, list[str]] = defaultdict(list)
    frontier: list[str] = []
    for row in rows:
        if row.caveat is not None or row.expiration is not None:
            return None
        if row.subject.relation is None:
            frontier.append(row.resource.id)
        else:
            parents[row.subject.id].append(row.resource.id)
    levels: dict[str, int] = {}
    level = 0
    while frontier:
        nxt: list[str] = []
        for oid in frontier:
            if oid not in levels:
                levels[oid] = level
                nxt.extend(parents.get(oid, ()))
        frontier = nxt
        level += 1
    return Closure(levels)


class ClosureCache:
    """Closures shared between requests: LRU keyed by revision, node and subject.

    `max_entries` 0 keeps nothing between requests (each request still reuses its own).
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Closure | int | None] = OrderedDict()
        self._bounds: OrderedDict[Hashable, dict[str, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> tuple[Closure | int | None] | None:
        """The stored closure (or height) boxed in a 1-tuple, or None if none is stored."""
        if key not in self._entries:
            return None
        self._entries.move_to_end(key)
        return (self._entries[key],)

    def put(self, key: Hashable, closure: Closure | int | None) -> None:
        """Store `closure` (None: "not usable"; an int: a height) under `key`, LRU."""
        if self.max_entries <= 0:
            return
        self._entries[key] = closure
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def height_bounds(self, key: Hashable) -> dict[str, int] | None:
        """The per-id chain height bounds stored under `key` (revision and node), if any."""
        bounds = self._bounds.get(key)
        if bounds is not None:
            self._bounds.move_to_end(key)
        return bounds

    def bound_heights(self, key: Hashable, ids: Sequence[str], height: int) -> None:
        """Record that no subject-set chain below any of `ids` is longer than `height`.

        Kept for the last `MAX_BOUND_NODES` (revision, node) keys, at most `MAX_BOUNDS`
        ids each; a bound only ever tightens.
        """
        if self.max_entries <= 0:
            return
        bounds = self._bounds.get(key)
        if bounds is None:
            bounds = self._bounds[key] = {}
            while len(self._bounds) > MAX_BOUND_NODES:
                self._bounds.popitem(last=False)
        self._bounds.move_to_end(key)
        for rid in ids:
            known = bounds.get(rid)
            if known is None:
                if len(bounds) >= MAX_BOUNDS:
                    continue
                bounds[rid] = height
            elif height < known:
                bounds[rid] = height


class ClosureResolver:
    """One request's view of closures: its own memo over the shared cache, de-duplicated."""

    def __init__(
        self, reader: GraphReader, schema: CompiledSchema, shared: ClosureCache, stats: EngineStats
    ) -> None:
        self._reader = reader
        self._schema = schema
        self._shared = shared
        self._stats = stats
        self._tasks: dict[Hashable, asyncio.Future[Closure | None]] = {}
        self._heights: dict[Hashable, asyncio.Future[int]] = {}
        self._pool_caps: dict[tuple[str, str, tuple[str, ...]], int] = {}
        self._nodes: dict[tuple[str, str, str], bool] = {}
        self._pools: dict[frozenset[str], tuple[str, ...]] = {}

    async def get(self, resource_type: str, relation: str, subject: SubjectRef) -> Closure | None:
        """The closure of plain `subject` in `resource_type#relation`; None when not usable."""
        key = self._key(resource_type, relation, subject)
        if key is None:
            return None
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, resource_type, relation, subject))
            self._tasks[key] = task
        elif task.done():
            return task.result()  # the common case after the warm-up: no shield to build
        return await asyncio.shield(task)

    def known(self, resource_type: str, relation: str, subject: SubjectRef) -> Closure | _Unknown | None:
        """What `get` would return, if that is known without waiting; else UNKNOWN.

        For callers that cannot await (`prefetched_check.py`): they await `get` on UNKNOWN.
        """
        key = self._key(resource_type, relation, subject)
        if key is None:
            return None
        task = self._tasks.get(key)
        if task is not None:
            return task.result() if task.done() else UNKNOWN
        stored = self._shared.get(key)
        if stored is not None and not isinstance(stored[0], int):
            self._stats.closure_hits += 1
            self._tasks[key] = _done(stored[0])
            return stored[0]
        return UNKNOWN

    def known_chain_reaches(
        self, resource_type: str, relation: str, ids: tuple[str, ...], cap: int, *, pool: frozenset[str]
    ) -> bool | None:
        """What `chain_reaches` would return, if the heights it needs are known; else None."""
        verdict = self._chain_verdict(resource_type, relation, ids, cap, pool)
        return verdict if isinstance(verdict, bool) else None

    def _chain_verdict(
        self, resource_type: str, relation: str, ids: tuple[str, ...], cap: int, pool: frozenset[str]
    ) -> bool | tuple[tuple[str, ...], int]:
        """`chain_reaches`' answer from the heights known now, or the height (ids, cap) to ask first."""
        if self._bounded(resource_type, relation, ids, cap):
            return False
        if pool and pool.issuperset(ids):
            everything = self._sorted_pool(pool)
            measured = self._pool_caps.setdefault((resource_type, relation, everything), cap)
            bound = self._known_height(resource_type, relation, everything, measured)
            if bound is None:
                return everything, measured
            if bound < measured and bound < cap:
                return False
        exact = self._known_height(resource_type, relation, ids, cap)
        return (ids, cap) if exact is None else exact >= cap

    def _bounded(self, resource_type: str, relation: str, ids: tuple[str, ...], cap: int) -> bool:
        """True if every id's recorded chain height bound is below `cap`."""
        return not self.unbounded(resource_type, relation, dict.fromkeys(ids, cap))

    def unbounded(self, resource_type: str, relation: str, caps: Mapping[str, int]) -> list[str]:
        """The ids of `caps` (id -> cap) whose chains are not known to stay below their cap.

        Known: a chain height bound recorded at this revision (`ClosureCache.bound_heights`)
        below the id's cap; `chain_reaches` over the others answers for all of them.
        """
        bounds = self._shared.height_bounds((self._reader.revision, resource_type, relation)) or {}
        return [rid for rid, cap in caps.items() if (bound := bounds.get(rid)) is None or bound >= cap]

    def _known_height(self, resource_type: str, relation: str, ids: tuple[str, ...], cap: int) -> int | None:
        """`height` if it is known without waiting (this request's or the shared cache's); else None."""
        key = self._height_key(resource_type, relation, ids, cap)
        task = self._heights.get(key)
        if task is not None:
            return task.result() if task.done() else None
        stored = self._shared.get(key)
        if stored is not None and isinstance(stored[0], int):
            self._stats.closure_hits += 1  # once: the next ask finds it in `_heights`
            self._heights[key] = _done(stored[0])
            return stored[0]
        return None

    def _height_key(self, resource_type: str, relation: str, ids: tuple[str, ...], cap: int) -> Hashable:
        return ("height", self._reader.revision, resource_type, relation, ids, cap)

    def _sorted_pool(self, pool: frozenset[str]) -> tuple[str, ...]:
        """`tuple(sorted(pool))`, memoized: asked once per non-member a check meets."""
        known = self._pools.get(pool)
        if known is None:
            known = self._pools[pool] = tuple(sorted(pool))
        return known

    def provide(
        self, resource_type: str, relation: str, subject: SubjectRef, rows: Sequence[Relationship] | None
    ) -> None:
        """Record `subject_set_closure`'s answer read by the caller (None: over the row cap).

        For readers that fetch a closure together with other rows in one round trip
        (`WalkClosureReader`); a closure already known or loading is kept.
        """
        key = self._key(resource_type, relation, subject)
        if key is None or key in self._tasks:
            return
        self._stats.closure_loads += 1
        closure = None if rows is None else build_closure(rows)
        self._shared.put(key, closure)
        self._tasks[key] = _done(closure)

    async def prime(self, resource_type: str, relation: str, subjects: Sequence[SubjectRef]) -> None:
        """Load the closures of many plain `subjects` at once, when the reader can.

        Needs a `BatchClosureReader`; otherwise (or when the batch is too large) this does
        nothing and `get` loads each subject's closure on demand. Subjects whose closure is
        already known or loading are skipped.
        """
        reader = self._reader
        if not isinstance(reader, BatchClosureReader):
            return
        by_type: dict[str, dict[Hashable, str]] = defaultdict(dict)
        for key, subject in self._unknown(resource_type, relation, subjects).items():
            by_type[subject.type][key] = subject.id
        jobs = [
            self._load_batch(reader, resource_type, relation, subject_type, dict(keys[i : i + CLOSURE_BATCH]))
            for subject_type, wanted in by_type.items()
            for keys in [list(wanted.items())]
            for i in range(0, len(keys), CLOSURE_BATCH)
        ]
        await asyncio.gather(*jobs)

    async def _load_batch(
        self,
        reader: BatchClosureReader,
        resource_type: str,
        relation: str,
        subject_type: str,
        wanted: dict[Hashable, str],
    ) -> None:
        self._stats.datastore_queries += 1
        self._stats.closure_loads += 1
        found = await reader.subject_set_closures(
            resource_type, relation, subject_type, sorted(set(wanted.values())), max_rows=MAX_CLOSURE_ROWS
        )
        if found is None:
            return  # too large together: `get` loads these one by one
        for key, sid in wanted.items():
            if key not in self._tasks:  # else `get` loaded it meanwhile: keep that one
                closure = build_closure(found[sid])
                self._shared.put(key, closure)
                self._tasks[key] = _done(closure)

    def _unknown(
        self, resource_type: str, relation: str, subjects: Sequence[SubjectRef]
    ) -> dict[Hashable, SubjectRef]:
        """The closure keys of `subjects` not yet known to this request (shared hits recorded)."""
        unknown: dict[Hashable, SubjectRef] = {}
        for subject in subjects:
            key = self._key(resource_type, relation, subject)
            if key is None or key in self._tasks:
                continue
            stored = self._shared.get(key)
            if stored is not None and not isinstance(stored[0], int):
                self._stats.closure_hits += 1
                self._tasks[key] = _done(stored[0])
            else:
                unknown[key] = subject
        return unknown

    async def height(self, resource_type: str, relation: str, ids: tuple[str, ...], cap: int) -> int:
        """`GraphReader.subject_set_height` of `ids`, memoized like closures."""
        key = self._height_key(resource_type, relation, ids, cap)
        task = self._heights.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load_height(key, resource_type, relation, ids, cap))
            self._heights[key] = task
        elif task.done():
            return task.result()
        return await asyncio.shield(task)

    def applies(self, resource_type: str, relation: str, subject: SubjectRef) -> bool:
        """True if `get` may find a closure for these arguments (plain subject, closure node).

        Lets the checker skip the call, which runs for every relation it evaluates.
        """
        if subject.relation is not None or subject.is_wildcard:
            return False
        return self._is_node(resource_type, relation, subject.type)

    def _key(self, resource_type: str, relation: str, subject: SubjectRef) -> Hashable | None:
        """The closure key of plain `subject` at a closure node; None where closures do not apply."""
        if not self.applies(resource_type, relation, subject):
            return None
        return (self._reader.revision, resource_type, relation, subject.type, subject.id)

    def _is_node(self, resource_type: str, relation: str, subject_type: str) -> bool:
        """`is_closure_node`, memoized: asked for every relation a check evaluates."""
        key = (resource_type, relation, subject_type)
        known = self._nodes.get(key)
        if known is None:
            known = self._nodes[key] = is_closure_node(self._schema, resource_type, relation, subject_type)
        return known

    async def chain_reaches(
        self, resource_type: str, relation: str, ids: tuple[str, ...], cap: int, *, pool: frozenset[str]
    ) -> bool:
        """True if a subject-set chain of `cap` or more rows starts at one of `ids`.

        `pool` (ids whose chains this request may need, e.g. every subject set of this
        node that the prefetch read) is asked about first, in one memoized query: if the
        longest chain below the pool was fully measured (below the cap it was measured
        with) and is shorter than `cap`, so is every chain below `ids` ⊆ `pool` (a chain
        from an id of `ids` starts at an id of the pool). Otherwise `ids` are asked
        exactly. Cycles count as reaching the cap (see `GraphReader.subject_set_height`),
        so a cycle below the pool sends the exact question. Every fully measured answer
        also bounds each of its ids for later requests at the same revision
        (`ClosureCache.bound_heights`), so a known id needs no query at all.
        """
        verdict = self._chain_verdict(resource_type, relation, ids, cap, pool)
        while not isinstance(verdict, bool):  # at most twice: the pool's height, then the ids'
            await self.height(resource_type, relation, *verdict)
            verdict = self._chain_verdict(resource_type, relation, ids, cap, pool)
        return verdict

    async def _load_height(
        self, key: Hashable, resource_type: str, relation: str, ids: tuple[str, ...], cap: int
    ) -> int:
        stored = self._shared.get(key)
        if stored is not None and isinstance(stored[0], int):
            self._stats.closure_hits += 1
            return stored[0]
        self._stats.datastore_queries += 1
        self._stats.closure_loads += 1
        height = await self._reader.subject_set_height(resource_type, relation, ids, max_height=cap)
        self._shared.put(key, height)
        if height < cap:  # measured to the end: a bound for each id
            self._shared.bound_heights((self._reader.revision, resource_type, relation), ids, height)
        return height

    async def _load(
        self, key: Hashable, resource_type: str, relation: str, subject: SubjectRef
    ) -> Closure | None:
        stored = self._shared.get(key)
        if stored is not None and not isinstance(stored[0], int):
            self._stats.closure_hits += 1
            return stored[0]
        self._stats.datastore_queries += 1
        self._stats.closure_loads += 1
        rows = await self._reader.subject_set_closure(
            resource_type, relation, subject.type, subject.id, max_rows=MAX_CLOSURE_ROWS
        )
        closure = None if rows is None else build_closure(rows)
        self._shared.put(key, closure)
        return closure


def _done(value: _T) -> asyncio.Future[_T]:
    """A finished future holding `value` (what `ClosureResolver.get` and `height` await)."""
    future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future
