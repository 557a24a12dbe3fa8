"""Per-request memo of sub-problem answers, and the one depth query per request.

Every answer is also asked through a reader that is not a graph reader (the step-by-step
walk), and both must agree exactly, errors included.
"""

from __future__ import annotations

import asyncio

import pytest

from rebac.datastore.protocol import GraphReader, Reader
from rebac.engine import Engine
from rebac.engine.contextual import ContextualReader
from rebac.engine.dispatch import DispatchCheckRequest, DispatchCheckResponse
from rebac.engine.membership import MembershipSet
from rebac.engine.requests import CheckRequest, CheckResult
from rebac.engine.singleflight import SingleflightDispatcher
from rebac.errors import MaxDepthExceededError, RebacError
from rebac.testing import memory_datastore
from rebac.tuples import ObjectRef, SubjectRef

SCHEMA = """
definition user {}
definition group { relation member: user | group#member }
definition folder {
  relation parent: folder
  relation owner: user
  relation viewer: user | group#member
  permission edit = owner + parent->edit
  permission view = edit + viewer + parent->view
}
definition doc {
  relation parent: folder
  relation owner: user
  relation viewer: user | group#member
  relation allowed: user | group#member
  permission edit = owner + parent->edit
  permission view = edit + viewer + parent->view
  permission guarded = viewer & parent->view
}
"""


def _req(resource: str, permission: str, subject: str) -> CheckRequest:
    return CheckRequest(ObjectRef.parse(resource), permission, SubjectRef.parse(subject))


async def _both(reader: Reader, request: CheckRequest, **engine: int) -> CheckResult | RebacError:
    """The answer (or error) through the fast paths, asserted equal to the walk's."""
    assert isinstance(reader, GraphReader)
    outcomes: list[CheckResult | RebacError] = []
    for source in (reader, ContextualReader(reader, ())):
        try:
            outcomes.append(await Engine(cache_size=0, **engine).check(source, request))
        except RebacError as err:
            outcomes.append(err)
    fast, walk = outcomes
    assert type(fast) is type(walk), f"fast {fast!r} != walk {walk!r}"
    if isinstance(fast, CheckResult):
        assert fast == walk
    return fast


def _chain(depth: int) -> list[str]:
    return ["doc:1#parent@folder:f0"] + [f"folder:f{i}#parent@folder:f{i + 1}" for i in range(depth - 1)]


class TestRequestMemo:
    async def test_deep_folder_chain_evaluates_each_node_once(self) -> None:
        """A 12-folder chain reaching `edit` by two paths per level costs dispatches linear in depth.

        Asked of the dispatch chain: by default the whole check is one synchronous pass
        over the prefetched rows (`prefetched_check.py`) and dispatches nothing.
        """
        ds, rev = await memory_datastore(SCHEMA, [*_chain(12), "folder:f11#owner@user:ann"])
        reader = ds.snapshot_reader(rev)
        for subject, allowed in (("user:ann", True), ("user:bob", False)):
            engine = Engine(cache_size=0, prefetched_checks=False)
            result = await engine.check(reader, _req("doc:1", "view", subject))
            assert result.allowed is allowed
            # view, edit, owner, viewer and the arrows' targets: a handful per level, not 12^2.
            assert engine.stats.dispatches <= 6 * 13, engine.stats
            assert (await _both(reader, _req("doc:1", "view", subject))) == result
            fast = Engine(cache_size=0)
            assert (await fast.check(reader, _req("doc:1", "view", subject))) == result
            assert (fast.stats.prefetched_checks, fast.stats.dispatches) == (1, 0)
        assert engine.stats.memo_hits > 0  # the "no" walk reaches each folder's edit by two paths

    async def test_memo_is_private_to_a_request(self) -> None:
        """With the shared cache off, a repeated check redoes all its work: nothing leaks between requests."""
        ds, rev = await memory_datastore(SCHEMA, [*_chain(6), "folder:f5#owner@user:ann"])
        reader = ds.snapshot_reader(rev)
        engine = Engine(cache_size=0)
        first = engine.stats.snapshot()
        assert (await engine.check(reader, _req("doc:1", "view", "user:ann"))).allowed
        second = engine.stats.snapshot()
        assert (await engine.check(reader, _req("doc:1", "view", "user:ann"))).allowed
        once, again = second.since(first), engine.stats.since(second)
        assert (again.dispatches, again.datastore_queries) == (once.dispatches, once.datastore_queries)
        assert again.cache_hits == 0

    async def test_depth_limit_still_raises(self) -> None:
        """A chain longer than the depth limit raises MaxDepthExceededError (fast and walk), never "no"."""
        ds, rev = await memory_datastore(SCHEMA, [*_chain(12), "folder:f11#owner@user:ann"])
        reader = ds.snapshot_reader(rev)
        for subject in ("user:ann", "user:bob"):
            outcome = await _both(reader, _req("doc:1", "view", subject), max_depth=8)
            assert isinstance(outcome, MaxDepthExceededError)
        assert (await _both(reader, _req("doc:1", "view", "user:ann"), max_depth=40)).allowed

    async def test_cycle_cut_answers_agree_from_every_entry(self) -> None:
        """In a parent cycle, answers cut on the cycle are not reused: every entry point agrees with the walk."""
        rels = [
            "folder:a#parent@folder:b",
            "folder:b#parent@folder:c",
            "folder:c#parent@folder:a",
            "folder:c#viewer@user:ann",
            "doc:1#parent@folder:a",
        ]
        ds, rev = await memory_datastore(SCHEMA, rels)
        reader = ds.snapshot_reader(rev)
        for resource in ("doc:1", "folder:a", "folder:b", "folder:c"):
            assert (await _both(reader, _req(resource, "view", "user:ann"))).allowed  # type: ignore[union-attr]
            assert not (await _both(reader, _req(resource, "view", "user:bob"))).allowed  # type: ignore[union-attr]


class TestPooledDepthQuery:
    async def test_one_depth_query_for_all_groups_of_a_request(self) -> None:
        """Three non-member groups along a folder chain cost one depth query, not one per group."""
        rels = [
            *_chain(3),
            "doc:1#viewer@group:a#member",
            "folder:f0#viewer@group:b#member",
            "folder:f2#viewer@group:c#member",
            "group:c#member@group:d#member",
            "group:d#member@user:ann",
        ]
        ds, rev = await memory_datastore(SCHEMA, rels)
        reader = ds.snapshot_reader(rev)
        engine = Engine(cache_size=0)
        assert not (await engine.check(reader, _req("doc:1", "view", "user:bob"))).allowed
        # The prefetch with bob's (empty) closure in one statement, then one depth query.
        assert (engine.stats.datastore_queries, engine.stats.closure_loads) == (2, 2)
        assert (await _both(reader, _req("doc:1", "view", "user:ann"))).allowed  # type: ignore[union-attr]

    async def test_deep_chain_elsewhere_in_the_pool_does_not_turn_no_into_an_error(self) -> None:
        """A too-deep group seen by the prefetch but never evaluated leaves a correct "no" (as the walk answers)."""
        deep = [f"group:d{i}#member@group:d{i + 1}#member" for i in range(12)]
        rels = [*_chain(1), "doc:1#viewer@group:a#member", "folder:f0#viewer@group:d0#member", *deep]
        ds, rev = await memory_datastore(SCHEMA, [*rels, "group:a#member@user:ann"])
        reader = ds.snapshot_reader(rev)
        assert not (await _both(reader, _req("doc:1", "guarded", "user:bob"), max_depth=8)).allowed  # type: ignore[union-attr]
        # Where the deep chain is evaluated, both raise.
        outcome = await _both(reader, _req("doc:1", "guarded", "user:ann"), max_depth=8)
        assert isinstance(outcome, MaxDepthExceededError)


class _Slow:
    """A delegate that answers after `release` is set, counting its evaluations."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls = 0

    async def dispatch_check(self, request: DispatchCheckRequest) -> DispatchCheckResponse:
        self.calls += 1
        await self.release.wait()
        return DispatchCheckResponse(MembershipSet.of(*request.resource_ids))


class TestSingleflightLeader:
    async def test_cancelled_leader_does_not_cancel_joiners(self) -> None:
        """When the first caller is cancelled, an identical waiting caller evaluates itself and answers."""
        ds, rev = await memory_datastore(SCHEMA, [])
        engine = Engine()
        scope = await engine._scope(ds.snapshot_reader(rev), None)
        request = DispatchCheckRequest("doc", ("1",), "view", SubjectRef("user", "ann"), 5, scope)
        slow = _Slow()
        flight = SingleflightDispatcher(slow)
        leader = asyncio.ensure_future(flight.dispatch_check(request))
        await asyncio.sleep(0)
        joiner = asyncio.ensure_future(flight.dispatch_check(request))
        await asyncio.sleep(0)
        leader.cancel()
        await asyncio.sleep(0)
        slow.release.set()
        assert "1" in (await joiner).members
        assert leader.cancelled()
        assert slow.calls == 2

    async def test_errors_are_shared_with_joiners(self) -> None:
        """An error of the evaluation reaches every identical caller, never an answer."""
        ds, rev = await memory_datastore(SCHEMA, [])
        engine = Engine()
        scope = await engine._scope(ds.snapshot_reader(rev), None)
        request = DispatchCheckRequest("doc", ("1",), "view", SubjectRef("user", "ann"), 5, scope)
        gate = asyncio.Event()

        class _Failing:
            async def dispatch_check(self, request: DispatchCheckRequest) -> DispatchCheckResponse:
                await gate.wait()
                raise MaxDepthExceededError(5)

        flight = SingleflightDispatcher(_Failing())
        both = asyncio.gather(
            flight.dispatch_check(request), flight.dispatch_check(request), return_exceptions=True
        )
        await asyncio.sleep(0)
        gate.set()
        outcomes = await both
        assert all(isinstance(o, MaxDepthExceededError) for o in outcomes)
        assert scope.stats.deduplicated == 1


class TestRelationsInPlace:
    async def test_depth_limit_at_a_relation(self) -> None:
        """A permission needing one more level than allowed raises; the relation itself answers at depth 1."""
        ds, rev = await memory_datastore(SCHEMA, ["doc:1#owner@user:ann"])
        reader = ds.snapshot_reader(rev)
        with pytest.raises(MaxDepthExceededError):
            await Engine(max_depth=1, cache_size=0).check(reader, _req("doc:1", "edit", "user:ann"))
        assert (
            await Engine(max_depth=2, cache_size=0).check(reader, _req("doc:1", "edit", "user:ann"))
        ).allowed
        assert (
            await Engine(max_depth=1, cache_size=0).check(reader, _req("doc:1", "owner", "user:ann"))
        ).allowed

    async def test_relation_answers_still_count_as_dispatches(self) -> None:
        """Relations evaluated in place are counted, and a subject set is still a member of itself."""
        ds, rev = await memory_datastore(SCHEMA, ["doc:1#viewer@group:eng#member"])
        reader = ds.snapshot_reader(rev)
        engine = Engine(cache_size=0, prefetched_checks=False)
        assert (await engine.check(reader, _req("doc:1", "view", "group:eng#member"))).allowed
        assert engine.stats.dispatches == 2  # view, then viewer in place (edit cannot reach a group: pruned)
        assert not (await _both(reader, _req("doc:1", "view", "group:ops#member"))).allowed  # type: ignore[union-attr]
