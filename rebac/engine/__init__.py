"""The graph evaluator: check, expand, lookups and bulk check over a Reader.

`Engine` is the facade and the composition root of the dispatcher chain
(caching → in-flight de-duplication → local evaluation). One Engine serves many
requests concurrently on one event loop; each call takes the reader (bound to the
revision the caller chose) and, optionally, "now" for expirations.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

from rebac.datastore.protocol import GraphReader, Reader
from rebac.engine.bulk_paths import answer_by_paths
from rebac.engine.caching import CachingDispatcher, walks_graph
from rebac.engine.caveats import CaveatEvaluator, CaveatVerdict, evaluate_condition
from rebac.engine.check import Checker
from rebac.engine.closure import MAX_CLOSURE_ROWS, UNKNOWN, ClosureCache, ClosureResolver, is_closure_node
from rebac.engine.contextual import ContextualReader
from rebac.engine.cursor import cursor_encoder, decode_cursor
from rebac.engine.dispatch import (
    CheckKeyPrefix,
    DispatchCheckRequest,
    DispatchCheckResponse,
    LocalDispatcher,
    RequestScope,
)
from rebac.engine.expand import expand_tree
from rebac.engine.keys import key_of
from rebac.engine.lookup_resources import Confirm, ResourcePage, resource_pages, reverse_walk
from rebac.engine.lookup_subjects import subject_candidates
from rebac.engine.membership import Condition, MembershipSet
from rebac.engine.path_plan import BulkPathPlan, compile_path_plan
from rebac.engine.prefetch import PrefetchStore, WalkPlan, walk_plan
from rebac.engine.prefetched_check import check_prefetched
from rebac.engine.reachability import Reachability
from rebac.engine.requests import (
    CheckRequest,
    CheckResult,
    ExpandTree,
    FoundResource,
    FoundSubject,
    Permissionship,
)
from rebac.engine.singleflight import SingleflightDispatcher
from rebac.engine.stats import EngineStats
from rebac.errors import (
    BugError,
    InvalidRequestError,
    LimitExceededError,
    RebacError,
    UnknownDefinitionError,
    UnknownRelationError,
)
from rebac.schema.definitions import CompiledSchema
from rebac.schema.typesystem import TypeSystem
from rebac.tuples import ObjectRef, Relationship, SubjectRef

__all__ = ["CaveatEvaluator", "CaveatVerdict", "Engine", "EngineStats"]

_PREFETCH_BASE_ROWS = 2_000
_PREFETCH_ROWS_PER_ID = 50


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a root question needs planned, memoized per schema (`Engine._plan`).

    Its up-front reads (an arrow walk and the closures it may use) and, for CheckBulk, its
    path search (None where it has none).
    """

    walk: WalkPlan | None
    closure_nodes: tuple[tuple[str, str], ...]
    path: BulkPathPlan | None


_NO = CheckResult(Permissionship.NO_PERMISSION)
_YES = CheckResult(Permissionship.HAS_PERMISSION)
_LOOKUP_PAGE = 1000
"""Results per page while `lookup_resources` streams them one by one."""


class Engine:
    """Answers permission questions over relationships read through a `Reader`.

    - `max_depth`: nested dispatches allowed before MaxDepthExceededError (never a guess).
    - `concurrency_limit`: datastore queries in flight per request.
    - `cache_size`: sub-problem answers kept (LRU, keyed by revision); 0 disables.
    - `caveat_evaluator`: evaluates caveats; None (the default) means the CEL evaluator
      from `rebac.caveats`. An evaluator that fails raises CaveatEvaluationError (fail closed).
    - `max_contextual_relationships`: most contextual relationships one request may carry
      (more raises LimitExceededError).
    - `prefetched_checks`: answer a root question whose rows were prefetched in one
      synchronous pass (`prefetched_check.py`); False sends every question down the
      dispatch chain (the reference; for tests and comparisons).

    `stats` accumulates datastore queries, dispatches and cache hits/misses.
    """

    def __init__(
        self,
        *,
        max_depth: int = 50,
        concurrency_limit: int = 32,
        cache_size: int = 10_000,
        caveat_evaluator: CaveatEvaluator | None = None,
        max_contextual_relationships: int = 100,
        prefetched_checks: bool = True,
        path_search: bool = True,
    ) -> None:
        if max_depth < 1 or concurrency_limit < 1:
            raise InvalidRequestError("max_depth and concurrency_limit must be at least 1")
        if max_contextual_relationships < 0:
            raise InvalidRequestError("max_contextual_relationships must not be negative")
        self.max_depth = max_depth
        self.max_contextual_relationships = max_contextual_relationships
        self.prefetched_checks = prefetched_checks
        self.path_search = path_search
        self.concurrency_limit = concurrency_limit
        if caveat_evaluator is None:
            # Imported here so the CEL libraries load only when an engine is built.
            from rebac.caveats import CelCaveatEvaluator  # noqa: PLC0415

            caveat_evaluator = CelCaveatEvaluator()
        self.caveat_evaluator: CaveatEvaluator = caveat_evaluator
        self.stats = EngineStats()
        local = LocalDispatcher(Checker())
        self._cache = CachingDispatcher(SingleflightDispatcher(local), max_entries=cache_size)
        local.head = self._cache
        self._reachability: tuple[CompiledSchema, Reachability] | None = None
        self._closures = ClosureCache(cache_size)
        self._plans: tuple[CompiledSchema, dict[tuple[str, str, str], _Plan]] | None = None

    # ------------------------------------------------------------------ plumbing

    def _reach(self, schema: CompiledSchema) -> Reachability:
        cached = self._reachability
        if cached is not None and cached[0] is schema:
            return cached[1]
        reach = Reachability(schema)
        self._reachability = (schema, reach)
        return reach

    async def _scope(
        self,
        reader: Reader,
        now: datetime | None,
        contextual: Sequence[Relationship] = (),
        schema: CompiledSchema | None = None,
    ) -> RequestScope:
        if schema is None:
            schema = await reader.read_schema()
        if contextual:
            self._validate_contextual(schema, contextual)
        # The fast paths need one-round-trip graph walks; contextual relationships are not
        # in the datastore, so a request carrying them always walks step by step.
        fast = not contextual and walks_graph(reader)
        return RequestScope(
            reader=ContextualReader(reader, contextual) if contextual else reader,
            schema=schema,
            reachability=self._reach(schema),
            now=now if now is not None else datetime.now(UTC),
            max_depth=self.max_depth,
            stats=self.stats,
            query_limit=asyncio.Semaphore(self.concurrency_limit),
            # Contextual relationships exist for this request only: keep its answers private.
            cache_namespace=object() if contextual else None,
            prefetch=PrefetchStore() if fast else None,
            closures=ClosureResolver(cast("GraphReader", reader), schema, self._closures, self.stats)
            if fast
            else None,
        )

    def _plan(self, scope: RequestScope, resource_type: str, permission: str, subject_type: str) -> _Plan:
        """What to fetch up front for this root question (memoized per schema)."""
        schema = scope.schema
        if self._plans is None or self._plans[0] is not schema:
            self._plans = (schema, {})
        plans = self._plans[1]
        key = (resource_type, permission, subject_type)
        plan = plans.get(key)
        if plan is None:
            closure_nodes = tuple(
                node
                for node in sorted(scope.reachability.reachable((resource_type, permission)))
                if is_closure_node(schema, node[0], node[1], subject_type)
            )
            plan = _Plan(
                walk_plan(schema, scope.reachability, resource_type, permission),
                closure_nodes,
                compile_path_plan(schema, scope.reachability, resource_type, permission, subject_type),
            )
            plans[key] = plan
        return plan

    async def _warm(self, scope: RequestScope, request: DispatchCheckRequest) -> None:
        """Run the fast paths' reads for a root request concurrently, in one round trip.

        The parent chains of all requested ids (`prefetch.py`) and the subject's
        nested-group closures (`closure.py`); skipped when the answer is already cached.
        """
        store, closures = scope.prefetch, scope.closures
        if store is None or closures is None or self._cache.peek(request):
            return
        subject = request.subject
        if not scope.reachability.can_reach(request.resource_type, request.relation, subject):
            return  # the schema rules the subject out: the checker answers without I/O
        plan = self._plan(scope, request.resource_type, request.relation, subject.type)
        nodes = plan.closure_nodes if subject.relation is None else ()
        jobs: list[Awaitable[object]] = []
        if plan.walk is not None:
            together = getattr(scope.reader, "walk_with_closure", None)
            if together is not None and nodes and closures.known(*nodes[0], subject) is UNKNOWN:
                # The walk and the first closure in one statement: one round trip, not two.
                jobs.append(self._prefetch_with_closure(scope, request, plan.walk, nodes[0], together))
                nodes = nodes[1:]
            else:
                jobs.append(
                    self._prefetch(scope, store, request.resource_type, request.resource_ids, plan.walk)
                )
        jobs.extend(closures.get(t, r, subject) for t, r in nodes)
        if jobs:
            await asyncio.gather(*jobs)

    @staticmethod
    async def _prefetch_with_closure(
        scope: RequestScope,
        request: DispatchCheckRequest,
        walk: WalkPlan,
        node: tuple[str, str],
        together: Callable[..., Awaitable[tuple[list[Relationship] | None, list[Relationship] | None]]],
    ) -> None:
        """`_prefetch` and the subject's closure of `node` (`WalkClosureReader.walk_with_closure`)."""
        store, closures = scope.prefetch, scope.closures
        assert store is not None  # noqa: S101 - `_warm` checked it
        assert closures is not None  # noqa: S101 - `_warm` checked it
        subject = request.subject
        ids = request.resource_ids
        scope.stats.datastore_queries += 1
        scope.stats.prefetches += 1
        rows, closure_rows = await together(
            request.resource_type,
            ids,
            follow=walk.follow,
            relations=walk.relations,
            max_rows=_PREFETCH_BASE_ROWS + _PREFETCH_ROWS_PER_ID * len(ids),
            closure=(node[0], node[1], subject.type, subject.id),
            max_closure_rows=MAX_CLOSURE_ROWS,
        )
        if rows is not None:  # too many rows: the checker reads step by step instead
            store.add(request.resource_type, ids, walk, rows)
        closures.provide(node[0], node[1], subject, closure_rows)

    @staticmethod
    async def _prefetch(
        scope: RequestScope, store: PrefetchStore, resource_type: str, ids: Sequence[str], walk: WalkPlan
    ) -> None:
        reader = scope.reader
        if not walks_graph(reader):
            return
        reader = cast("GraphReader", reader)
        scope.stats.datastore_queries += 1
        scope.stats.prefetches += 1
        rows = await reader.walk_relations(
            resource_type,
            ids,
            follow=walk.follow,
            relations=walk.relations,
            max_rows=_PREFETCH_BASE_ROWS + _PREFETCH_ROWS_PER_ID * len(ids),
        )
        if rows is not None:  # too many rows: the checker reads step by step instead
            store.add(resource_type, ids, walk, rows)

    def _validate_contextual(self, schema: CompiledSchema, contextual: Sequence[Relationship]) -> None:
        """LimitExceededError over the bound; the schema's errors for one it does not allow."""
        if len(contextual) > self.max_contextual_relationships:
            raise LimitExceededError(
                f"{len(contextual)} contextual relationships exceed the limit of "
                f"{self.max_contextual_relationships} per request"
            )
        types = TypeSystem(schema)
        for relationship in contextual:
            types.validate_relationship(relationship)

    @staticmethod
    def _validate(scope: RequestScope, resource_type: str, permission: str, subject: SubjectRef) -> None:
        Engine._validate_names(scope.schema, resource_type, permission, subject)

    @staticmethod
    def _validate_names(
        schema: CompiledSchema, resource_type: str, permission: str, subject: SubjectRef
    ) -> None:
        definition = schema.definition(resource_type)
        if definition is None:
            raise UnknownDefinitionError(resource_type)
        if definition.member(permission) is None:
            raise UnknownRelationError(resource_type, permission)
        subject_def = schema.definition(subject.type)
        if subject_def is None:
            raise UnknownDefinitionError(subject.type)
        if subject.relation is not None and subject_def.member(subject.relation) is None:
            raise UnknownRelationError(subject.type, subject.relation)
        if subject.is_wildcard:
            raise InvalidRequestError("cannot check a wildcard subject", field="subject.object_id")

    async def _members(
        self,
        scope: RequestScope,
        resource_type: str,
        ids: Iterable[str],
        permission: str,
        subject: SubjectRef,
    ) -> MembershipSet:
        request = DispatchCheckRequest(
            resource_type=resource_type,
            resource_ids=tuple(sorted(set(ids))),
            relation=permission,
            subject=subject,
            depth_remaining=self.max_depth,
            scope=scope,
        )
        if not request.resource_ids:
            return MembershipSet()
        await self._warm(scope, request)
        return (await self._evaluate(request)).members

    async def _evaluate(self, request: DispatchCheckRequest) -> DispatchCheckResponse:
        """Answer a warmed root request: the cache, else the prefetched rows, else the chain.

        `check_prefetched` answers in one synchronous pass when the rows `_warm` read
        suffice, and gives up (None) wherever the async evaluator's rules are needed.
        """
        scope = request.scope
        store = scope.prefetch
        if self.prefetched_checks and store is not None and len(store) and not self._cache.peek(request):
            response = await check_prefetched(request)
            if response is not None:
                scope.stats.prefetched_checks += 1
                self._cache.store(request, response)
                return response
        return await self._cache.dispatch_check(request)

    def _result(
        self, scope: RequestScope, members: MembershipSet, resource_id: str, context: Mapping[str, Any] | None
    ) -> CheckResult:
        return self._answer(scope.schema, members, resource_id, context)

    def _answer(
        self,
        schema: CompiledSchema,
        members: MembershipSet,
        resource_id: str,
        context: Mapping[str, Any] | None,
    ) -> CheckResult:
        if resource_id not in members:
            return _NO
        condition: Condition = members[resource_id]
        if condition is None:
            return _YES
        verdict = evaluate_condition(
            condition, schema=schema, evaluator=self.caveat_evaluator, context=context
        )
        if verdict.value is None:
            return CheckResult(Permissionship.CONDITIONAL, tuple(sorted(verdict.missing)))
        return _YES if verdict.value else _NO

    # ------------------------------------------------------------------ public API

    async def check(
        self, reader: Reader, request: CheckRequest, *, now: datetime | None = None
    ) -> CheckResult:
        """Whether `request.subject` has `request.permission` on `request.resource`.

        `request.contextual_relationships` count for this request only: validated against
        the schema (its errors), at most `max_contextual_relationships`
        (LimitExceededError), never stored, and answers that used them are never shared
        through the cache. Raises UnknownDefinitionError / UnknownRelationError for names
        the schema lacks, InvalidRequestError for a wildcard subject, MaxDepthExceededError,
        and CaveatEvaluationError; an error is never an answer.
        """
        schema = None
        if not request.contextual_relationships:
            # The cached answer first: no request scope to build for a repeated question.
            schema = await reader.read_schema()
            self._validate_names(schema, request.resource.type, request.permission, request.subject)
            now = now if now is not None else datetime.now(UTC)
            key = key_of(
                CheckKeyPrefix(reader.revision, None),
                request.resource.type,
                (request.resource.id,),
                request.permission,
                request.subject,
            )
            hit = self._cache.lookup(key, self.max_depth, now)
            if hit is not None:
                self.stats.cache_hits += 1
                return self._answer(schema, hit.members, request.resource.id, request.context)
        scope = await self._scope(reader, now, request.contextual_relationships, schema)
        if schema is None:  # not validated above (contextual relationships)
            self._validate(scope, request.resource.type, request.permission, request.subject)
        members = await self._members(
            scope, request.resource.type, (request.resource.id,), request.permission, request.subject
        )
        return self._result(scope, members, request.resource.id, request.context)

    async def check_bulk(
        self,
        reader: Reader,
        requests: Sequence[CheckRequest],
        *,
        now: datetime | None = None,
        contextual_relationships: Sequence[Relationship] = (),
    ) -> list[CheckResult | RebacError]:
        """Many checks at one revision; the i-th item answers the i-th request.

        Requests that differ only in resource id (and caveat context) share one batched
        sub-problem; all share the cache and de-duplication. A failing item gets its
        RebacError in place; the others still answer. "now" is taken once for all.
        `contextual_relationships` apply to every request (before each request's own) and,
        like those, count for this call only (see `check`).
        """
        now = now if now is not None else datetime.now(UTC)
        shared = tuple(contextual_relationships)
        groups: dict[tuple[str, str, SubjectRef, tuple[Relationship, ...]], list[int]] = defaultdict(list)
        for i, req in enumerate(requests):
            key = (req.resource.type, req.permission, req.subject, shared + req.contextual_relationships)
            groups[key].append(i)
        out: list[CheckResult | RebacError] = [_NO] * len(requests)

        prepared = await self._bulk_requests(reader, now, requests, groups, out)
        common = next((scope for scope, _, _, shares in prepared if shares), None)
        if common is not None:
            prepared = await self._bulk_by_paths(common, prepared, requests, out)
            await self._warm_bulk(common, [request for _, request, _, shares in prepared if shares])

        async with asyncio.TaskGroup() as group:
            for scope, request, items, _ in prepared:
                warm = scope is not common
                group.create_task(self._bulk_answer(scope, request, items, requests, out, warm=warm))
        return out

    async def _bulk_answer(
        self,
        scope: RequestScope,
        request: DispatchCheckRequest,
        items: list[int],
        requests: Sequence[CheckRequest],
        out: list[CheckResult | RebacError],
        *,
        warm: bool,
    ) -> None:
        """Evaluate one root request of `check_bulk` and fill `out` for its items.

        When a request of several ids fails, each id is asked alone, so one id's error (a
        depth limit, say) does not fail the others: every item answers as its own Check.
        """
        try:
            if warm:
                await self._warm(scope, request)
            members = (await self._evaluate(request)).members
        except RebacError as err:
            if len(request.resource_ids) > 1:
                await asyncio.gather(
                    *(
                        self._bulk_answer(
                            scope,
                            replace(request, resource_ids=(rid,)),
                            [i for i in items if requests[i].resource.id == rid],
                            requests,
                            out,
                            warm=warm,
                        )
                        for rid in request.resource_ids
                    )
                )
                return
            for i in items:
                out[i] = err
            return
        self._fill(scope, members, items, requests, out)

    def _fill(
        self,
        scope: RequestScope,
        members: MembershipSet,
        items: Iterable[int],
        requests: Sequence[CheckRequest],
        out: list[CheckResult | RebacError],
    ) -> None:
        """`out[i]` for each of `items`: its request's result from `members`, or its own error."""
        for i in items:
            try:
                out[i] = self._result(scope, members, requests[i].resource.id, requests[i].context)
            except RebacError as err:
                out[i] = err

    async def _bulk_requests(
        self,
        reader: Reader,
        now: datetime,
        requests: Sequence[CheckRequest],
        groups: Mapping[tuple[str, str, SubjectRef, tuple[Relationship, ...]], list[int]],
        out: list[CheckResult | RebacError],
    ) -> list[tuple[RequestScope, DispatchCheckRequest, list[int], bool]]:
        """One validated root request per group: (scope, request, items, shares the scope).

        Groups without contextual relationships share one scope (one memo of sub-problem
        answers, reads merged by `_warm_bulk`); the others get private scopes. A group that
        fails validation gets its error in `out` and no request.
        """
        common: RequestScope | RebacError | None = None
        if any(not key[3] for key in groups):
            try:
                common = await self._scope(reader, now)
            except RebacError as err:
                common = err
        prepared: list[tuple[RequestScope, DispatchCheckRequest, list[int], bool]] = []
        for (resource_type, permission, subject, contextual), items in groups.items():
            try:
                if contextual:
                    scope = await self._scope(reader, now, contextual)
                elif isinstance(common, RequestScope):
                    scope = common
                elif isinstance(common, RebacError):
                    raise common  # reading the schema failed: every plain group fails with it
                else:  # pragma: no cover - a plain group always gets the common scope
                    raise BugError("no common scope for a group without contextual relationships")
                self._validate(scope, resource_type, permission, subject)
            except RebacError as err:
                for i in items:
                    out[i] = err
                continue
            request = DispatchCheckRequest(
                resource_type=resource_type,
                resource_ids=tuple(sorted({requests[i].resource.id for i in items})),
                relation=permission,
                subject=subject,
                depth_remaining=self.max_depth,
                scope=scope,
            )
            prepared.append((scope, request, items, scope is common))
        return prepared

    async def _bulk_by_paths(
        self,
        scope: RequestScope,
        prepared: list[_Prepared],
        requests: Sequence[CheckRequest],
        out: list[CheckResult | RebacError],
    ) -> list[_Prepared]:
        """Answer what a path search can (`bulk_paths.py`); the rest, narrowed, for the evaluator.

        Only requests sharing `scope` whose answer is not cached take part. A failed search
        answers nothing: the evaluator then meets the same error item by item, or not.
        """
        if not self.path_search:
            return prepared
        ask = [i for i, entry in enumerate(prepared) if entry[3] and not self._cache.peek(entry[1])]
        if not ask:
            return prepared
        try:
            answers = await answer_by_paths(
                scope,
                [prepared[i][1] for i in ask],
                lambda r: self._plan(scope, r.resource_type, r.relation, r.subject.type).path,
            )
        except RebacError:
            return prepared
        rest: dict[int, _Prepared | None] = dict(enumerate(prepared))
        for position, i in enumerate(ask):
            answered = answers.answered(position)
            if answered:
                members = MembershipSet.of(*answers.members.get(position, ()))
                rest[i] = self._narrow(prepared[i], answered, members, requests, out)
        return [entry for entry in rest.values() if entry is not None]

    def _narrow(
        self,
        entry: _Prepared,
        answered: set[str],
        members: MembershipSet,
        requests: Sequence[CheckRequest],
        out: list[CheckResult | RebacError],
    ) -> _Prepared | None:
        """Fill `out` for the items of `entry` whose id is `answered`; the entry for the others."""
        scope, request, items, shares = entry
        self._fill(scope, members, (i for i in items if requests[i].resource.id in answered), requests, out)
        left = [i for i in items if requests[i].resource.id not in answered]
        ids = tuple(rid for rid in request.resource_ids if rid not in answered)
        return (scope, replace(request, resource_ids=ids), left, shares) if ids else None

    async def _warm_bulk(self, scope: RequestScope, requests: Sequence[DispatchCheckRequest]) -> None:
        """`_warm` for many root requests sharing `scope`, with the reads merged.

        One arrow prefetch per (resource type, permission) over the ids of every request
        of that pair, and the closures of all subjects in one query per node and subject
        type (`ClosureResolver.prime`), in one round trip. What a read returns does not
        depend on which request asked, so merging changes no answer.
        """
        store, closures = scope.prefetch, scope.closures
        if store is None or closures is None:
            return
        walks: dict[tuple[str, str], tuple[WalkPlan, set[str]]] = {}
        loads: dict[tuple[str, str], dict[SubjectRef, None]] = defaultdict(dict)
        for request in requests:
            subject = request.subject
            if self._cache.peek(request) or not scope.reachability.can_reach(
                request.resource_type, request.relation, subject
            ):
                continue
            plan = self._plan(scope, request.resource_type, request.relation, subject.type)
            if plan.walk is not None:
                walks.setdefault((request.resource_type, request.relation), (plan.walk, set()))[1].update(
                    request.resource_ids
                )
            if subject.relation is None:
                for node in plan.closure_nodes:
                    loads[node][subject] = None
        jobs: list[Awaitable[object]] = []
        for (resource_type, _), (walk, ids) in walks.items():
            jobs.append(self._prefetch(scope, store, resource_type, sorted(ids), walk))
        jobs.extend(closures.prime(t, r, list(subjects)) for (t, r), subjects in loads.items())
        if jobs:
            await asyncio.gather(*jobs)
        # Closures the reader could not batch load one by one, still in this round trip.
        late = [closures.get(t, r, subject) for (t, r), subjects in loads.items() for subject in subjects]
        if late:
            await asyncio.gather(*late)

    async def expand(
        self, reader: Reader, resource: ObjectRef, permission: str, *, recursive: bool = False
    ) -> ExpandTree:
        """The userset tree behind `resource#permission` (see `expand.expand_tree`)."""
        scope = await self._scope(reader, None)
        return await expand_tree(scope, resource, permission, recursive=recursive)

    async def lookup_resources(
        self,
        reader: Reader,
        resource_type: str,
        permission: str,
        subject: SubjectRef,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        context: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        contextual_relationships: Sequence[Relationship] = (),
    ) -> AsyncIterator[FoundResource]:
        """Resources of `resource_type` on which `subject` has `permission`.

        Sorted by resource id; each result's `cursor` resumes strictly after it; at most
        `limit` results. Caveated results come back CONDITIONAL with their missing context
        when `context` does not decide them. Agrees exactly with `check` at the same
        revision, "now", context and `contextual_relationships` (see `check`).

        The reverse walk (`lookup_resources.reverse_walk`) finds every candidate first, then
        results stream in id order: members the walk proved need no Check; the rest are
        confirmed with one batched Check. Each page repeats the walk (cursors hold no state).
        """
        cursor_after = cursor_encoder("lookup_resources")
        async for page in self.lookup_resource_pages(
            reader,
            resource_type,
            permission,
            subject,
            page_size=_LOOKUP_PAGE,
            limit=limit,
            cursor=cursor,
            context=context,
            now=now,
            contextual_relationships=contextual_relationships,
        ):
            conditional = page.conditional
            for rid in page.ids:
                missing = conditional.get(rid) if conditional else None
                if missing is None:
                    yield FoundResource(rid, Permissionship.HAS_PERMISSION, (), cursor_after(rid))
                else:
                    yield FoundResource(rid, Permissionship.CONDITIONAL, missing, cursor_after(rid))

    async def lookup_resource_pages(
        self,
        reader: Reader,
        resource_type: str,
        permission: str,
        subject: SubjectRef,
        *,
        page_size: int,
        limit: int | None = None,
        cursor: str | None = None,
        context: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        contextual_relationships: Sequence[Relationship] = (),
    ) -> AsyncIterator[ResourcePage]:
        """`lookup_resources`' results in pages of at most `page_size`, one cursor per page.

        The same results in the same order; a page's `cursor` is the `cursor` of its last
        result. For transports that send many results per message: a result costs no object
        and no cursor of its own (a third of a large lookup's server CPU went to them).
        """
        if page_size < 1:
            raise InvalidRequestError("page_size must be at least 1", field="page_size")
        after = decode_cursor("lookup_resources", cursor)
        _check_limit(limit)
        scope = await self._scope(reader, now, tuple(contextual_relationships))
        self._validate(scope, resource_type, permission, subject)
        walk = await reverse_walk(
            scope, resource_type, permission, subject, self._lookup_confirm(scope, subject)
        )
        # Definite members need no Check; the rest of the candidates get one batched Check.
        checked = await self._members(
            scope, resource_type, walk.candidates - walk.definite, permission, subject
        )
        ids = sorted(walk.definite.union(checked))
        if after is not None:
            ids = ids[bisect_right(ids, after) :]
        for page in resource_pages(
            ids,
            walk.definite,
            lambda rid: self._result(scope, checked, rid, context),
            cursor_encoder("lookup_resources"),
            limit=limit,
            size=page_size,
        ):
            yield page

    def _lookup_confirm(self, scope: RequestScope, subject: SubjectRef) -> Confirm:
        """Batched root-level Check of `subject` for a lookup's inner nodes (cached, warmed)."""

        async def confirm(resource_type: str, ids: tuple[str, ...], relation: str) -> DispatchCheckResponse:
            request = DispatchCheckRequest(
                resource_type=resource_type,
                resource_ids=ids,
                relation=relation,
                subject=subject,
                depth_remaining=self.max_depth,
                scope=scope,
            )
            await self._warm(scope, request)
            return await self._evaluate(request)

        return confirm

    async def lookup_subjects(
        self,
        reader: Reader,
        resource: ObjectRef,
        permission: str,
        subject_type: str,
        *,
        subject_relation: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        context: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        contextual_relationships: Sequence[Relationship] = (),
    ) -> AsyncIterator[FoundSubject]:
        """Subjects of `subject_type` (`#subject_relation`) with `permission` on `resource`.

        Sorted by subject id (the wildcard ``*`` sorts first); cursors and `limit` as in
        `lookup_resources`. A wildcard result means every subject of the type not listed
        in its `excluded`; a concretely listed subject's own result takes precedence.
        Caveated results are CONDITIONAL as in `lookup_resources`. Agrees exactly with
        `check` (context and `contextual_relationships` included).
        """
        after = decode_cursor("lookup_subjects", cursor)
        _check_limit(limit)
        scope = await self._scope(reader, now, tuple(contextual_relationships))
        probe = SubjectRef(subject_type, "probe", subject_relation)
        self._validate(scope, resource.type, permission, probe)
        found = await subject_candidates(scope, resource, permission, subject_type, subject_relation)
        # Definite subjects (and everyone, under a definite wildcard) need no Check.
        sure = found.ids if found.definite_wildcard else found.definite
        results: dict[str, CheckResult] = dict.fromkeys(sure & found.ids, _YES)

        async def confirm(sid: str) -> None:
            subject = SubjectRef(subject_type, sid, subject_relation)
            members = await self._members(scope, resource.type, (resource.id,), permission, subject)
            results[sid] = self._result(scope, members, resource.id, context)

        await asyncio.gather(*(confirm(sid) for sid in sorted(found.ids - sure)))
        results = dict(sorted(results.items()))
        entries: list[FoundSubject] = []
        if found.wildcard:
            if found.definite_wildcard:
                verdict = _YES
            else:
                fresh = _fresh_id(found.ids)
                members = await self._members(
                    scope, resource.type, (resource.id,), permission, SubjectRef(subject_type, fresh)
                )
                verdict = self._result(scope, members, resource.id, context)
            if verdict.permissionship is not Permissionship.NO_PERMISSION:
                excluded = tuple(
                    SubjectRef(subject_type, sid)
                    for sid, r in results.items()
                    if r.permissionship is Permissionship.NO_PERMISSION
                )
                entries.append(
                    FoundSubject(
                        SubjectRef(subject_type, "*"),
                        excluded,
                        verdict.permissionship,
                        verdict.missing_context,
                    )
                )
        for sid, result in results.items():
            if result.permissionship is not Permissionship.NO_PERMISSION:
                entries.append(
                    FoundSubject(
                        SubjectRef(subject_type, sid, subject_relation),
                        permissionship=result.permissionship,
                        missing_context=result.missing_context,
                    )
                )
        cursor_after = cursor_encoder("lookup_subjects")
        emitted = 0
        for entry in entries:
            if after is not None and entry.subject.id <= after:
                continue
            if limit is not None and emitted >= limit:
                return
            emitted += 1
            yield FoundSubject(
                entry.subject,
                entry.excluded,
                entry.permissionship,
                entry.missing_context,
                cursor_after(entry.subject.id),
            )


_Prepared = tuple[RequestScope, DispatchCheckRequest, list[int], bool]
"""A root request of CheckBulk: (scope, request, item indexes, shares the common scope)."""


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise InvalidRequestError("limit must be at least 1", field="limit")


def _fresh_id(taken: set[str]) -> str:
    """An id no relationship on the walk mentions: it stands for "any other subject"."""
    n = 0
    while f"rebac_unlisted_{n}" in taken:
        n += 1
    return f"rebac_unlisted_{n}"
