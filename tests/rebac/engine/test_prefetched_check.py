"""The synchronous pass over prefetched rows answers exactly as the dispatch chain, or not at all.

Every answer here is also asked of an Engine with `prefetched_checks=False` (the dispatch
chain, the reference) and must be identical, errors included. The stats show which path
answered: `prefetched_checks` counts root questions the pass answered.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from rebac.datastore.protocol import Reader
from rebac.engine import Engine
from rebac.engine.requests import CheckRequest, CheckResult, Permissionship
from rebac.errors import MaxDepthExceededError, RebacError
from rebac.testing import memory_datastore
from rebac.tuples import ObjectRef, SubjectRef

SCHEMA = """
definition user {}
definition group { relation member: user | group#member }
definition team { relation member: user | group#member }
definition folder {
  relation parent: folder
  relation owner: user
  relation viewer: user | user:* | group#member | team#member
  relation banned: user
  permission edit = owner + parent->edit
  permission view = (edit + viewer + parent->view) - banned
}
definition doc {
  relation parent: folder
  relation owner: user
  relation viewer: user | user:* | group#member
  relation reviewer: user
  relation banned: user
  permission edit = owner + parent->edit
  permission view = (edit + viewer + parent->view) - banned
  permission review = reviewer & parent->view
  permission all_view = parent.all(view)
  permission nothing = reviewer & nil
}
"""

WORLD = [
    "doc:1#parent@folder:a",
    "doc:2#parent@folder:b",
    "doc:3#parent@folder:a",
    "doc:3#parent@folder:b",
    "folder:a#parent@folder:root",
    "folder:b#parent@folder:root",
    "folder:root#owner@user:olga",
    "folder:a#viewer@group:eng#member",
    "folder:b#viewer@team:ops#member",
    "folder:b#viewer@group:qa#member",
    "group:eng#member@group:backend#member",
    "group:backend#member@user:ann",
    "team:ops#member@user:bob",
    "team:ops#member@group:backend#member",
    "folder:b#banned@user:ann",
    "doc:1#reviewer@user:ann",
    "doc:2#reviewer@user:bob",
    "doc:3#reviewer@user:cid",
    "doc:2#viewer@user:*",
    "doc:1#banned@user:dan",
]

USERS = ("olga", "ann", "bob", "cid", "dan", "eve")
PERMISSIONS = ("view", "edit", "review", "all_view", "nothing", "viewer")


def _req(resource: str, permission: str, subject: str) -> CheckRequest:
    return CheckRequest(ObjectRef.parse(resource), permission, SubjectRef.parse(subject))


async def _ask(engine: Engine, reader: Reader, request: CheckRequest) -> CheckResult | RebacError:
    try:
        return await engine.check(reader, request)
    except RebacError as err:
        return err


async def _agree(
    reader: Reader, request: CheckRequest, **options: int
) -> tuple[CheckResult | RebacError, Engine]:
    """The pass's answer (and its engine), asserted identical to the dispatch chain's."""
    fast = Engine(cache_size=0, **options)
    chain = Engine(cache_size=0, prefetched_checks=False, **options)
    got, want = await _ask(fast, reader, request), await _ask(chain, reader, request)
    assert type(got) is type(want), f"{request}: pass {got!r}, chain {want!r}"
    if isinstance(got, CheckResult):
        assert got == want, f"{request}: pass {got!r}, chain {want!r}"
    return got, fast


class TestSameAnswers:
    async def test_every_question_of_a_world_with_every_operator(self) -> None:
        """Union, exclusion, intersection, nil, arrows (any and all), wildcards, nested subject sets."""
        ds, rev = await memory_datastore(SCHEMA, WORLD)
        reader = ds.snapshot_reader(rev)
        answered = 0
        allowed = 0
        for doc, permission, user in itertools.product(("1", "2", "3", "4"), PERMISSIONS, USERS):
            result, engine = await _agree(reader, _req(f"doc:{doc}", permission, f"user:{user}"))
            answered += engine.stats.prefetched_checks
            allowed += isinstance(result, CheckResult) and result.allowed
        assert answered > 50  # the pass answered most of them (questions it prunes need no pass)
        assert allowed > 10  # and not only "no"

    async def test_subject_sets_as_subjects(self) -> None:
        """A subject set is a member of itself and of every set that contains it."""
        ds, rev = await memory_datastore(SCHEMA, WORLD)
        reader = ds.snapshot_reader(rev)
        for subject in ("group:backend#member", "group:eng#member", "team:ops#member", "group:other#member"):
            for doc in ("1", "2", "3"):
                await _agree(reader, _req(f"doc:{doc}", "view", subject))

    async def test_user_a_cannot_reach_user_b_document(self) -> None:
        """Negative paths: a user with no path gets "no", through the pass."""
        ds, rev = await memory_datastore(
            SCHEMA, ["doc:ann#owner@user:ann", "doc:bob#owner@user:bob", "doc:bob#parent@folder:x"]
        )
        reader = ds.snapshot_reader(rev)
        result, engine = await _agree(reader, _req("doc:bob", "view", "user:ann"))
        assert isinstance(result, CheckResult)
        assert result.permissionship is Permissionship.NO_PERMISSION
        assert engine.stats.prefetched_checks == 1


class TestGivesUp:
    async def test_caveated_rows_go_to_the_dispatch_chain(self) -> None:
        """A caveat on a row read: the chain answers (CONDITIONAL here), never the pass."""
        schema = """
        caveat on_weekday(day string) { day != "sunday" }
        definition user {}
        definition folder { relation viewer: user with on_weekday
          permission view = viewer }
        definition doc { relation parent: folder
          permission view = parent->view }
        """
        ds, rev = await memory_datastore(
            schema, ["doc:1#parent@folder:a", "folder:a#viewer@user:ann[on_weekday]"]
        )
        result, engine = await _agree(ds.snapshot_reader(rev), _req("doc:1", "view", "user:ann"))
        assert isinstance(result, CheckResult)
        assert result.permissionship is Permissionship.CONDITIONAL
        assert engine.stats.prefetched_checks == 0

    async def test_expiring_rows_go_to_the_dispatch_chain(self) -> None:
        """An expiration on a row read: the chain answers (its answer carries validity bounds)."""
        schema = """
        use expiration
        definition user {}
        definition folder { relation viewer: user with expiration
          permission view = viewer }
        definition doc { relation parent: folder
          permission view = parent->view }
        """
        soon = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        ds, rev = await memory_datastore(
            schema, ["doc:1#parent@folder:a", f"folder:a#viewer@user:ann[expiration:{soon}]"]
        )
        result, engine = await _agree(ds.snapshot_reader(rev), _req("doc:1", "view", "user:ann"))
        assert isinstance(result, CheckResult)
        assert result.allowed
        assert engine.stats.prefetched_checks == 0

    async def test_cycles_go_to_the_dispatch_chain(self) -> None:
        """A parent cycle: the chain cuts it; the pass never answers from a cut."""
        ds, rev = await memory_datastore(
            SCHEMA,
            [
                "folder:a#parent@folder:b",
                "folder:b#parent@folder:a",
                "doc:1#parent@folder:a",
                "folder:b#owner@user:ann",
            ],
        )
        reader = ds.snapshot_reader(rev)
        assert (await _agree(reader, _req("doc:1", "view", "user:ann")))[0] == CheckResult(
            Permissionship.HAS_PERMISSION
        )
        result, engine = await _agree(reader, _req("doc:1", "view", "user:bob"))
        assert isinstance(result, CheckResult)
        assert not result.allowed
        assert engine.stats.prefetched_checks == 0

    async def test_depth_limit_raises_as_the_chain_does(self) -> None:
        """Too deep for max_depth: MaxDepthExceededError from both, never an answer."""
        chain = ["doc:1#parent@folder:f0", *(f"folder:f{i}#parent@folder:f{i + 1}" for i in range(12))]
        ds, rev = await memory_datastore(SCHEMA, [*chain, "folder:f12#owner@user:ann"])
        reader = ds.snapshot_reader(rev)
        for user in ("ann", "bob"):
            result, _ = await _agree(reader, _req("doc:1", "view", f"user:{user}"), max_depth=8)
            assert isinstance(result, MaxDepthExceededError)
        result, engine = await _agree(reader, _req("doc:1", "view", "user:ann"), max_depth=50)
        assert isinstance(result, CheckResult)
        assert result.allowed
        assert engine.stats.prefetched_checks == 1

    async def test_deep_nested_groups_raise_as_the_chain_does(self) -> None:
        """A group chain deeper than the depth left: both raise for a non-member."""
        groups = [f"group:g{i}#member@group:g{i + 1}#member" for i in range(12)]
        ds, rev = await memory_datastore(
            SCHEMA, ["doc:1#viewer@group:g0#member", *groups, "group:g12#member@user:ann"]
        )
        reader = ds.snapshot_reader(rev)
        for user in ("ann", "bob"):
            result, _ = await _agree(reader, _req("doc:1", "view", f"user:{user}"), max_depth=8)
            assert isinstance(result, MaxDepthExceededError)


class TestLoads:
    async def test_rows_outside_the_prefetch_are_read_then_answered(self) -> None:
        """`team#member` holds group subject sets (not a closure node): its rows are read on demand."""
        ds, rev = await memory_datastore(SCHEMA, WORLD)
        reader = ds.snapshot_reader(rev)
        result, engine = await _agree(reader, _req("doc:2", "view", "user:bob"))
        assert isinstance(result, CheckResult)
        assert result.allowed
        assert engine.stats.prefetched_checks == 1

    async def test_chain_heights_are_reused_at_the_same_revision(self) -> None:
        """A later "no" through groups an earlier depth query measured asks none of its own."""
        ds, rev = await memory_datastore(SCHEMA, WORLD)
        reader = ds.snapshot_reader(rev)
        engine = Engine()
        # Measures every group the walk saw below folders a and b: eng and qa.
        assert not (await engine.check(reader, _req("doc:3", "view", "user:eve"))).allowed
        first = engine.stats.snapshot()
        # Below folder a only eng: a different question, answered from eng's recorded bound.
        assert not (await engine.check(reader, _req("doc:1", "view", "user:fay"))).allowed
        again = engine.stats.since(first)
        # The prefetch with fay's (empty) closure in one statement; no height query.
        assert (again.datastore_queries, again.closure_loads) == (1, 1), again
