"""Check: evaluate one sub-problem (a relation or permission over a batch of ids).

Reads happen only in `_direct` and `_arrow` (STYLE C1); everything else is set algebra
from `membership.py` over the results of sub-problems sent to the dispatcher head.

Reducer error semantics (fail closed; an error is never "allowed"):

- union: a branch that proves membership of every requested id ends the union and the
  other branches are cancelled, even if one of them failed; otherwise any branch error
  is raised (a union cannot say "no" without every branch answering).
- intersection: a branch that comes back empty ends it with "no members" (errors in the
  other branches are then moot); otherwise any branch error is raised.
- exclusion: an empty base ends it with "no members"; otherwise any error in base or
  subtracted is raised.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import assert_never

from rebac.datastore.filters import RelationshipFilter
from rebac.engine.closure import ClosureResolver
from rebac.engine.dispatch import (
    DispatchCheckRequest,
    DispatchCheckResponse,
    Dispatcher,
    NodeKey,
)
from rebac.engine.membership import (
    EMPTY,
    CaveatLeaf,
    Condition,
    MembershipSet,
    caveat_and,
)
from rebac.errors import MaxDepthExceededError, RebacError, UnknownDefinitionError, UnknownRelationError
from rebac.schema.definitions import (
    ArrowFunction,
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
from rebac.tuples import Relationship

__all__ = ["Checker", "condition_of", "is_live"]


def condition_of(relationship: Relationship) -> Condition:
    """The condition a relationship's caveat puts on membership (None: unconditional)."""
    caveat = relationship.caveat
    return None if caveat is None else CaveatLeaf(caveat.name, caveat.context_json)


def is_live(relationship: Relationship, now: datetime) -> bool:
    """False once the relationship's expiration has passed (``expiration <= now``)."""
    return relationship.expiration is None or relationship.expiration > now


class Checker:
    """Evaluates check sub-problems; stateless apart from configuration, safe to share."""

    async def check(self, request: DispatchCheckRequest, dispatcher: Dispatcher) -> DispatchCheckResponse:
        """Which requested ids have the relation for the subject.

        UnknownDefinitionError / UnknownRelationError for names the schema lacks.
        """
        return await _Evaluation(request, dispatcher).run()


@dataclass(slots=True)
class _Meta:
    """Response metadata accumulated from the reads and sub-problems of one evaluation."""

    depth_required: int = 1
    cycle_cut: bool = False
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def absorb(self, response: DispatchCheckResponse) -> None:
        self.depth_required = max(self.depth_required, response.depth_required + 1)
        self.cycle_cut = self.cycle_cut or response.cycle_cut
        self.bound(response.valid_from, response.valid_until)

    def bound(self, valid_from: datetime | None, valid_until: datetime | None) -> None:
        if valid_from is not None and (self.valid_from is None or valid_from > self.valid_from):
            self.valid_from = valid_from
        if valid_until is not None and (self.valid_until is None or valid_until < self.valid_until):
            self.valid_until = valid_until


class _Evaluation:
    """One sub-problem being evaluated; not shared between tasks of other sub-problems."""

    def __init__(self, request: DispatchCheckRequest, dispatcher: Dispatcher) -> None:
        self.request = request
        self.scope = request.scope
        self.dispatcher = dispatcher
        self.meta = _Meta()
        self.recursive: bool | None = None  # looked up on first use: most evaluations never ask

    def _response(self, members: MembershipSet) -> DispatchCheckResponse:
        return DispatchCheckResponse(
            members=members,
            depth_required=self.meta.depth_required,
            cycle_cut=self.meta.cycle_cut,
            valid_from=self.meta.valid_from,
            valid_until=self.meta.valid_until,
        )

    async def run(self) -> DispatchCheckResponse:
        req = self.request
        definition = self.scope.schema.definition(req.resource_type)
        if definition is None:
            raise UnknownDefinitionError(req.resource_type)
        member = definition.member(req.relation)
        if member is None:
            raise UnknownRelationError(req.resource_type, req.relation)
        ids = req.resource_ids
        # A subject set is a member of itself: `group:a#member` has `member` on group:a,
        # at every level (so `permission p = r` with subject `doc:1#r` is found via r).
        found = EMPTY
        subject = req.subject
        if subject.type == req.resource_type and subject.relation == req.relation and subject.id in ids:
            found = MembershipSet.of(subject.id)
            ids = tuple(i for i in ids if i != subject.id)
        if not ids or not self.scope.reachability.can_reach(req.resource_type, req.relation, subject):
            return self._response(found)  # nothing left, or the schema rules it out: no I/O
        if isinstance(member, Relation):
            closures = self.scope.closures
            closed = None
            if closures is not None and closures.applies(req.resource_type, req.relation, subject):
                closed = await self._from_closure(closures, ids)
            result = closed if closed is not None else await self._direct(req.relation, ids)
        else:
            result = await self._rewrite(member.rewrite, ids)
        return self._response(found.union_with(result))

    async def _from_closure(self, closures: ClosureResolver, ids: tuple[str, ...]) -> MembershipSet | None:
        """The members among `ids` from the subject's nested-group closure, when usable.

        None (walk instead) without a closure, or when a member sits deeper than the depth
        left, so the walk raises MaxDepthExceededError exactly as it would have.
        """
        req = self.request
        closure = await closures.get(req.resource_type, req.relation, req.subject)
        if closure is None:
            return None
        levels = closure.levels
        members = [rid for rid in ids if rid in levels]
        deepest = max((levels[rid] for rid in members), default=0)
        if deepest >= req.depth_remaining:
            return None
        if len(members) < len(ids):
            # The walk would explore every chain below a non-member (and raise if one is too
            # deep for the depth left): answer "no" only where the walk would have.
            store = self.scope.prefetch
            pool = frozenset() if store is None else store.subject_set_ids(req.resource_type, req.relation)
            depth = req.depth_remaining
            if await closures.chain_reaches(req.resource_type, req.relation, ids, depth, pool=pool):
                return None
        self.meta.depth_required = max(self.meta.depth_required, deepest + 1)
        return MembershipSet.of(*members)

    # ----------------------------------------------------------------- the rewrite tree

    async def _rewrite(self, node: Rewrite, ids: tuple[str, ...]) -> MembershipSet:  # noqa: PLR0911 - a return per node kind
        match node:
            case Nil():
                return EMPTY
            case This():
                return await self._direct(self.request.relation, ids)
            case ComputedUserset(relation=relation):
                return await self._computed(relation, ids)
            case TupleToUserset():
                return await self._arrow(node, ids)
            case Union(children=children):
                return await self._union([self._thunk(c, ids) for c in children], ids)
            case Intersection(children=children):
                return await self._intersection([self._thunk(c, ids) for c in children])
            case Exclusion(base=base, subtracted=subtracted):
                return await self._exclusion(self._thunk(base, ids), self._thunk(subtracted, ids))
            case _:  # pragma: no cover - the ADT is closed
                assert_never(node)

    def _thunk(self, node: Rewrite, ids: tuple[str, ...]) -> Callable[[], Awaitable[MembershipSet]]:
        return lambda: self._rewrite(node, ids)

    async def _computed(self, relation: str, ids: tuple[str, ...]) -> MembershipSet:
        definition = self.scope.schema.definition(self.request.resource_type)
        if definition is None or definition.member(relation) is None:
            raise UnknownRelationError(self.request.resource_type, relation)
        if len(ids) == 1:  # the common case: one sub-problem, no grouping to do
            return await self._dispatch(self.request.resource_type, relation, ids, self._child_path(ids[0]))
        # Ids share one sub-problem only if they share a path (see DispatchCheckRequest).
        groups: dict[frozenset[NodeKey], list[str]] = defaultdict(list)
        for rid in ids:
            groups[self._child_path(rid)].append(rid)
        thunks = [
            self._dispatch_thunk(self.request.resource_type, relation, tuple(group), path)
            for path, group in groups.items()
        ]
        return await self._union(thunks, ids)

    # ----------------------------------------------------------------------- reducers

    async def _union(
        self, thunks: Sequence[Callable[[], Awaitable[MembershipSet]]], ids: Sequence[str]
    ) -> MembershipSet:
        """OR of the branches; stops once every id in `ids` is a determined member."""
        if len(thunks) == 1:
            return await thunks[0]()  # the OR of one branch is that branch (errors included)
        result = EMPTY
        errors: list[RebacError] = []

        def accept(value: MembershipSet | RebacError) -> bool:
            nonlocal result
            if isinstance(value, RebacError):
                errors.append(value)
                return False
            result = result.union_with(value)
            return result.all_determined(ids)

        if await _run_until(thunks, accept, sequential=self._in_memory()):
            return result
        if errors:
            raise errors[0]
        return result

    def _in_memory(self) -> bool:
        """True when this request's reads were prefetched.

        Branches then run one after another: no task per branch, and a union stops
        before evaluating the rest.
        """
        store = self.scope.prefetch
        return store is not None and len(store) > 0

    async def _intersection(self, thunks: Sequence[Callable[[], Awaitable[MembershipSet]]]) -> MembershipSet:
        """AND of the branches; stops at the first branch that leaves no members."""
        result: MembershipSet | None = None
        errors: list[RebacError] = []

        def accept(value: MembershipSet | RebacError) -> bool:
            nonlocal result
            if isinstance(value, RebacError):
                errors.append(value)
                return False
            result = value if result is None else result.intersect_with(value)
            return not result

        if await _run_until(thunks, accept, sequential=self._in_memory()):
            return EMPTY
        if errors:
            raise errors[0]
        return result if result is not None else EMPTY

    async def _exclusion(
        self,
        base: Callable[[], Awaitable[MembershipSet]],
        subtracted: Callable[[], Awaitable[MembershipSet]],
    ) -> MembershipSet:
        """`base - subtracted`; the subtracted side is evaluated only for base's members."""
        members = await base()
        if not members:
            return EMPTY
        removed = await subtracted()
        return members.subtract(removed)

    # --------------------------------------------------------------------------- reads

    async def _read(self, relation: str, ids: Sequence[str]) -> list[Relationship]:
        """Live relationships `resource_type:ids#relation`, in one batched query."""
        scope = self.scope
        store = scope.prefetch
        if store is None:
            missing: Sequence[str] = ids
            rows: list[Relationship] = []
        else:
            rows, missing = store.take(self.request.resource_type, relation, ids)
        if missing:
            filter_ = RelationshipFilter(
                resource_type=self.request.resource_type, resource_ids=tuple(missing), relation=relation
            )
            async with scope.query_limit:
                scope.stats.datastore_queries += 1
                rows.extend([r async for r in scope.reader.query_relationships(filter_)])
        for row in rows:  # a loop, not all(): this runs for every read
            if row.expiration is not None:
                break
        else:
            return rows  # nothing expires: every row is live, and no bound to record
        live: list[Relationship] = []
        for row in rows:
            if row.expiration is None:
                live.append(row)
            elif row.expiration > scope.now:
                live.append(row)
                self.meta.bound(None, row.expiration)  # the answer may change when it expires
            else:
                self.meta.bound(row.expiration, None)  # expired; stays expired after this
        return live

    async def _direct(self, relation: str, ids: tuple[str, ...]) -> MembershipSet:
        """Members stored directly, plus members of the subject sets stored there."""
        subject = self.request.subject
        reach = self.scope.reachability
        found: dict[str, Condition] = {}
        # (subject type, subject relation, path) -> subject id -> [(resource id, condition)]
        nested: dict[tuple[str, str, frozenset[NodeKey]], dict[str, list[tuple[str, Condition]]]] = (
            defaultdict(lambda: defaultdict(list))
        )
        for row in await self._read(relation, ids):
            stored = row.subject
            rid = row.resource.id
            cond = condition_of(row)
            if stored == subject or (
                stored.is_wildcard and subject.relation is None and stored.type == subject.type
            ):
                found[rid] = _or_condition(found, rid, cond)
            elif (
                stored.relation is not None
                and not stored.is_wildcard
                and reach.can_reach(stored.type, stored.relation, subject)
            ):
                key = (stored.type, stored.relation, self._child_path(rid))
                nested[key][stored.id].append((rid, cond))
        result = MembershipSet(found)
        if not nested or result.all_determined(ids):
            return result
        thunks = [
            self._mapped_thunk(stype, srel, path, mapping) for (stype, srel, path), mapping in nested.items()
        ]
        return result.union_with(await self._union(thunks, [i for i in ids if i not in found]))

    async def _arrow(self, arrow: TupleToUserset, ids: tuple[str, ...]) -> MembershipSet:
        """`tupleset->computed` (any) or `tupleset.all(computed)` over the tupleset's subjects."""
        schema = self.scope.schema
        definition = schema.definition(self.request.resource_type)
        tupleset = definition.member(arrow.tupleset_relation) if definition else None
        if not isinstance(tupleset, Relation):
            raise UnknownRelationError(self.request.resource_type, arrow.tupleset_relation)
        # Arrows walk the *objects* of the tupleset's subjects; a subject relation
        # (`folder:x#parent`) is ignored and a wildcard is not an object to walk to.
        per_resource: dict[str, list[tuple[str, str, Condition]]] = defaultdict(list)
        nested: dict[tuple[str, str, frozenset[NodeKey]], dict[str, list[tuple[str, Condition]]]] = (
            defaultdict(lambda: defaultdict(list))
        )
        for row in await self._read(arrow.tupleset_relation, ids):
            stored = row.subject
            if stored.is_wildcard:
                continue
            rid = row.resource.id
            cond = condition_of(row)
            per_resource[rid].append((stored.type, stored.id, cond))
            target = schema.definition(stored.type)
            if target is None or target.member(arrow.computed_relation) is None:
                continue  # SpiceDB: an arrow to a type without the relation finds nothing
            if not self.scope.reachability.can_reach(
                stored.type, arrow.computed_relation, self.request.subject
            ):
                continue
            key = (stored.type, arrow.computed_relation, self._child_path(rid))
            nested[key][stored.id].append((rid, cond))
        if arrow.function is ArrowFunction.ANY:
            thunks = [self._mapped_thunk(t, r, p, m) for (t, r, p), m in nested.items()]
            return await self._union(thunks, ids)
        return await self._arrow_all(per_resource, nested)

    async def _arrow_all(
        self,
        per_resource: dict[str, list[tuple[str, str, Condition]]],
        nested: dict[tuple[str, str, frozenset[NodeKey]], dict[str, list[tuple[str, Condition]]]],
    ) -> MembershipSet:
        """A resource is a member iff every tupleset subject is (and it has at least one)."""
        # Resolve every subject's membership (no early exit: one "no" only fails its resource).
        by_subject: dict[tuple[str, str], Condition] = {}
        for (stype, srel, path), mapping in nested.items():
            members = await self._dispatch(stype, srel, tuple(sorted(mapping)), path)
            for sid, cond in members.items():
                by_subject[(stype, sid)] = cond
        out: dict[str, Condition] = {}
        for rid, subjects in per_resource.items():
            combined: Condition = None
            for stype, sid, rel_cond in subjects:
                if (stype, sid) not in by_subject:
                    break
                combined = caveat_and(caveat_and(combined, rel_cond), by_subject[(stype, sid)])
            else:
                out[rid] = combined
        return MembershipSet(out)

    # ------------------------------------------------------------------- dispatching

    def _child_path(self, resource_id: str) -> frozenset[NodeKey]:
        """The path a sub-problem of `resource_id` carries (only recursive nodes recorded)."""
        if self.recursive is None:
            node = (self.request.resource_type, self.request.relation)
            self.recursive = self.scope.reachability.is_recursive(node)
        if not self.recursive:
            return self.request.path
        return self.request.path | {(self.request.resource_type, self.request.relation, resource_id)}

    def _mapped_thunk(
        self,
        subject_type: str,
        subject_relation: str,
        path: frozenset[NodeKey],
        mapping: dict[str, list[tuple[str, Condition]]],
    ) -> Callable[[], Awaitable[MembershipSet]]:
        """Dispatch `subject_type:ids#subject_relation`, then map members back to resources."""

        async def run() -> MembershipSet:
            members = await self._dispatch(subject_type, subject_relation, tuple(sorted(mapping)), path)
            out = EMPTY
            for sid, cond in members.items():
                for rid, rel_cond in mapping[sid]:
                    out = out.union_with({rid: caveat_and(rel_cond, cond)})
            return out

        return run

    def _dispatch_thunk(
        self, resource_type: str, relation: str, ids: tuple[str, ...], path: frozenset[NodeKey]
    ) -> Callable[[], Awaitable[MembershipSet]]:
        return lambda: self._dispatch(resource_type, relation, ids, path)

    async def _dispatch(
        self, resource_type: str, relation: str, ids: tuple[str, ...], path: frozenset[NodeKey]
    ) -> MembershipSet:
        """Send a sub-problem to the dispatcher head, cutting ids already on the path."""
        subject = self.request.subject
        if not self.scope.reachability.can_reach(resource_type, relation, subject):
            return EMPTY  # pruned by the schema: no I/O
        kept: tuple[str, ...]
        if len(ids) == 1:  # the common case, without the set and the sort
            kept = () if (resource_type, relation, ids[0]) in path else ids
            if not kept:
                self.meta.cycle_cut = True
                return EMPTY
        else:
            kept = tuple(sorted({i for i in ids if (resource_type, relation, i) not in path}))
            if len(kept) < len(set(ids)):
                self.meta.cycle_cut = True
            if not kept:
                return EMPTY
        request = DispatchCheckRequest(
            resource_type=resource_type,
            resource_ids=kept,
            relation=relation,
            subject=subject,
            depth_remaining=self.request.depth_remaining - 1,
            scope=self.scope,
            path=path,
        )
        definition = self.scope.schema.definition(resource_type)
        if definition is not None and isinstance(definition.member(relation), Relation):
            # A relation is evaluated in place, past the cache and de-duplication: its answer
            # is one read (usually from the prefetch) or a closure lookup, cheaper than the
            # chain's bookkeeping, and the permissions above it are still cached. The depth
            # limit and the dispatch count apply exactly as in `LocalDispatcher`.
            if request.depth_remaining <= 0:
                raise MaxDepthExceededError(self.scope.max_depth)
            self.scope.stats.dispatches += 1
            response = await _Evaluation(request, self.dispatcher).run()
        else:
            response = await self.dispatcher.dispatch_check(request)
        self.meta.absorb(response)
        return response.members


def _or_condition(found: dict[str, Condition], rid: str, cond: Condition) -> Condition:
    if rid not in found:
        return cond
    return MembershipSet({rid: found[rid]}).union_with({rid: cond})[rid]


async def _run_until(  # noqa: C901 - two strategies of one loop, kept side by side
    thunks: Sequence[Callable[[], Awaitable[MembershipSet]]],
    accept: Callable[[MembershipSet | RebacError], bool],
    *,
    sequential: bool = False,
) -> bool:
    """Run `thunks` (concurrently unless `sequential`), feeding each outcome to `accept`.

    Returns True (and cancels or skips the rest) as soon as `accept` returns True; False
    once all have finished. RebacErrors are passed to `accept`, never raised here; anything
    else (a bug, cancellation) propagates.
    """
    if not thunks:
        return False
    if len(thunks) == 1 or sequential:
        for thunk in thunks:
            try:
                value: MembershipSet | RebacError = await thunk()
            except RebacError as err:
                value = err
            if accept(value):
                return True
        return False

    class _Stop(Exception):  # noqa: N818 - internal control flow, not an error
        pass

    async def one(thunk: Callable[[], Awaitable[MembershipSet]]) -> None:
        try:
            value: MembershipSet | RebacError = await thunk()
        except RebacError as err:
            value = err
        if accept(value):
            raise _Stop

    stopped = False
    try:
        async with asyncio.TaskGroup() as group:
            for thunk in thunks:
                group.create_task(one(thunk))
    except* _Stop:
        stopped = True  # the TaskGroup has cancelled the remaining branches
    return stopped
