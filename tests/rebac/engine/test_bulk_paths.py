"""CheckBulk by path search answers exactly as the evaluator, or leaves the item to it.

Every scenario runs on memory and on PostgreSQL. Each item of a bulk call is asked three
ways, and all three must agree (same result, or the same error class): the bulk call with
the path search (`Engine()`), the bulk call without it (`Engine(path_search=False)`, the
reference) and a single `Engine.check`. `EngineStats.path_answers` then says how many
items the path search answered, so a fast path that silently stops answering (or starts
answering what it must not) fails here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest

from rebac.datastore.postgres import PostgresDatastore
from rebac.datastore.protocol import Reader
from rebac.engine import Engine
from rebac.engine.requests import CheckRequest, CheckResult, Permissionship
from rebac.engine.stats import EngineStats
from rebac.errors import MaxDepthExceededError, RebacError, UnknownRelationError
from rebac.testing import memory_datastore
from rebac.tuples import ObjectRef, Relationship, RelationshipUpdate, SubjectRef, UpdateOperation, rel
from rebac.writes import write_relationships, write_schema
from tests.postgres_helpers import fresh_pg_schema
from tests.rebac.engine.path_schemas import COMBINED_ARROWS

YES = Permissionship.HAS_PERMISSION
NO = Permissionship.NO_PERMISSION
MAYBE = Permissionship.CONDITIONAL

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)

SCHEMA = """
use expiration

caveat weekday(day string) { day != "sat" && day != "sun" }

definition user {}

definition group {
  relation member: user | user:* | group#member | user with weekday | user with expiration
}

definition folder {
  relation parent: folder | folder with weekday | folder with expiration
  relation owner: user
  relation editor: user | group#member
  relation viewer: user | user:* | group#member | user with weekday | user with expiration | group#member with weekday
  permission edit = owner + editor + parent->edit
  permission view = edit + viewer + parent->view
}

definition document {
  relation parent: folder | folder with weekday | folder with expiration
  relation owner: user
  relation editor: user | group#member
  relation viewer: user | user:* | group#member | user with weekday | user with expiration | group#member with weekday
  permission edit = owner + editor + parent->edit
  permission view = edit + viewer + parent->view
}
"""

DRIVE = (
    # Alice's and Bob's private trees.
    "folder:alice_home#owner@user:alice",
    "document:alice_cv#parent@folder:alice_home",
    "folder:bob_home#owner@user:bob",
    "document:bob_cv#parent@folder:bob_home",
    "document:bob_notes#owner@user:bob",
    "document:bob_notes#viewer@user:carol",
    # A shared tree: root <- team <- spec; eng (dave, and erin through backend) edits team.
    "folder:root#owner@user:olga",
    "folder:team#parent@folder:root",
    "folder:team#editor@group:eng#member",
    "document:spec#parent@folder:team",
    "document:spec#viewer@user:frank",
    "group:eng#member@user:dave",
    "group:eng#member@group:backend#member",
    "group:backend#member@user:erin",
)
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "olga", "zoe")
DOCUMENTS = ("alice_cv", "bob_cv", "bob_notes", "spec")


class Load(Protocol):
    """Loads a schema and relationships into a fresh datastore; returns a reader at that revision."""

    def __call__(self, rels: Sequence[str], *, schema: str = SCHEMA) -> Awaitable[Reader]: ...


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def server_dsn(request: pytest.FixtureRequest) -> str | None:
    """None for memory, else the PostgreSQL server's DSN (requested only when needed)."""
    return request.getfixturevalue("pg_server_dsn") if request.param == "postgres" else None


@pytest.fixture
async def load(server_dsn: str | None) -> AsyncIterator[Load]:
    """`load(rels, schema=...)`: a reader at the revision holding them, on memory or Postgres (once per test)."""
    if server_dsn is None:

        async def in_memory(rels: Sequence[str], *, schema: str = SCHEMA) -> Reader:
            ds, revision = await memory_datastore(schema, rels)
            return ds.snapshot_reader(revision)

        yield in_memory
        return
    async with (
        fresh_pg_schema(server_dsn) as dsn,
        PostgresDatastore.connect(dsn, migrate=True, max_pool_size=4, quantization=timedelta(0)) as ds,
    ):

        async def in_postgres(rels: Sequence[str], *, schema: str = SCHEMA) -> Reader:
            await write_schema(ds, schema)
            updates = [RelationshipUpdate(UpdateOperation.TOUCH, rel(r)) for r in rels]
            revision = await write_relationships(ds, updates)
            return ds.snapshot_reader(revision)

        yield in_postgres


def _req(resource: str, permission: str, subject: str, **kw: Any) -> CheckRequest:
    return CheckRequest(ObjectRef.parse(resource), permission, SubjectRef.parse(subject), **kw)


Answer = CheckResult | RebacError


async def _agree(
    reader: Reader,
    requests: Sequence[CheckRequest],
    *,
    max_depth: int = 50,
    contextual: Sequence[Relationship] = (),
) -> tuple[list[Answer], EngineStats]:
    """The bulk answers with the path search and its stats, asserted equal to the reference and to Check."""
    engine = Engine(cache_size=0, max_depth=max_depth)
    bulk = await engine.check_bulk(reader, requests, now=NOW, contextual_relationships=contextual)
    reference = await Engine(cache_size=0, max_depth=max_depth, path_search=False).check_bulk(
        reader, requests, now=NOW, contextual_relationships=contextual
    )
    assert len(bulk) == len(reference) == len(requests)
    for request, got, expected in zip(requests, bulk, reference, strict=True):
        single_request = replace(
            request, contextual_relationships=(*contextual, *request.contextual_relationships)
        )
        try:
            single: Answer = await Engine(cache_size=0, max_depth=max_depth).check(
                reader, single_request, now=NOW
            )
        except RebacError as err:
            single = err
        for other, name in ((expected, "bulk without paths"), (single, "check")):
            assert type(got) is type(other), f"{request}: bulk {got!r} != {name} {other!r}"
            if isinstance(got, CheckResult):
                assert got == other, f"{request}: bulk {got} != {name} {other}"
    return bulk, engine.stats


def _perm(answer: Answer) -> Permissionship:
    assert isinstance(answer, CheckResult), answer
    return answer.permissionship


def _allowed(requests: Sequence[CheckRequest], answers: Sequence[Answer]) -> set[tuple[str, str, str]]:
    return {
        (r.resource.id, r.permission, r.subject.id)
        for r, a in zip(requests, answers, strict=True)
        if _perm(a) is YES
    }


class TestDrive:
    async def test_yes_and_no_grid(self, load: Load) -> None:
        """Owners see their own trees only; inherited edit implies view; every item answered by the search."""
        reader = await load(DRIVE)
        requests = [
            _req(f"document:{d}", p, f"user:{u}") for d in DOCUMENTS for p in ("view", "edit") for u in USERS
        ]
        answers, stats = await _agree(reader, requests)
        assert _allowed(requests, answers) == {
            ("alice_cv", "view", "alice"),
            ("alice_cv", "edit", "alice"),
            ("bob_cv", "view", "bob"),
            ("bob_cv", "edit", "bob"),
            ("bob_notes", "view", "bob"),
            ("bob_notes", "edit", "bob"),
            ("bob_notes", "view", "carol"),  # a viewer, not an editor
            ("spec", "view", "olga"),  # owner of the root, two folders up
            ("spec", "edit", "olga"),
            ("spec", "view", "dave"),  # eng edits the team folder
            ("spec", "edit", "dave"),
            ("spec", "view", "erin"),  # backend is nested in eng
            ("spec", "edit", "erin"),
            ("spec", "view", "frank"),  # a viewer, not an editor
        }
        assert all(_perm(a) in (YES, NO) for a in answers)
        assert stats.path_searches == 1  # document#view and document#edit together: one subject type
        assert stats.path_answers == len(requests)

    async def test_one_user_never_sees_anothers_documents(self, load: Load) -> None:
        """Alice cannot see or edit Bob's documents and Bob cannot see Alice's, answered "no" by the search."""
        reader = await load(DRIVE)
        requests = [
            _req("document:bob_cv", "view", "user:alice"),
            _req("document:bob_cv", "edit", "user:alice"),
            _req("document:bob_notes", "view", "user:alice"),
            _req("document:alice_cv", "view", "user:bob"),
            _req("document:alice_cv", "edit", "user:bob"),
            _req("folder:alice_home", "view", "user:bob"),
            _req("folder:bob_home", "view", "user:alice"),
            _req("document:alice_cv", "view", "user:alice"),  # and each sees their own
            _req("document:bob_cv", "view", "user:bob"),
        ]
        answers, stats = await _agree(reader, requests)
        assert [_perm(a) for a in answers] == [NO] * 7 + [YES, YES]
        assert stats.path_answers == len(requests)

    async def test_wildcards(self, load: Load) -> None:
        """`user:*` on a folder or in a group grants everyone view, never edit."""
        reader = await load(
            (
                *DRIVE,
                "folder:public#viewer@user:*",
                "document:handbook#parent@folder:public",
                "group:everyone#member@user:*",
                "document:intranet#viewer@group:everyone#member",
            )
        )
        requests = [
            _req(f"document:{d}", p, f"user:{u}")
            for d in ("handbook", "intranet")
            for p in ("view", "edit")
            for u in ("zoe", "alice")
        ]
        answers, stats = await _agree(reader, requests)
        assert [_perm(a) for a in answers] == [YES, YES, NO, NO, YES, YES, NO, NO]
        assert stats.path_answers == len(requests)

    async def test_nested_groups(self, load: Load) -> None:
        """A member four groups down views the document; others do not; all answered by the search."""
        reader = await load(
            (
                "group:l1#member@group:l2#member",
                "group:l2#member@group:l3#member",
                "group:l3#member@group:l4#member",
                "group:l4#member@user:deep",
                "group:l3#member@user:mid",
                "document:nested#viewer@group:l1#member",
            )
        )
        requests = [_req("document:nested", "view", f"user:{u}") for u in ("deep", "mid", "zoe")]
        requests += [_req("document:nested", "edit", "user:deep")]
        answers, stats = await _agree(reader, requests)
        assert [_perm(a) for a in answers] == [YES, YES, NO, NO]
        assert stats.path_answers == len(requests)

    async def test_two_arrows_over_one_relation(self, load: Load) -> None:
        """`parent->view + parent->comment` walks both up the same chain: commenters and viewers of ancestors."""
        reader = await load(
            (
                "doc:d1#parent@folder:a",
                "folder:a#parent@folder:b",
                "folder:a#viewer@user:vic",
                "folder:b#commenter@user:cora",
                "doc:d2#parent@box:x",
                "box:x#parent@box:y",
                "box:y#viewer@user:bea",
                "doc:d3#viewer@user:dan",
            ),
            schema=COMBINED_ARROWS,
        )
        users = ("cora", "vic", "bea", "dan", "zoe")
        requests = [_req(f"doc:{d}", "view", f"user:{u}") for d in ("d1", "d2", "d3") for u in users]
        answers, stats = await _agree(reader, requests)
        assert _allowed(requests, answers) == {
            ("d1", "view", "cora"),
            ("d1", "view", "vic"),
            ("d2", "view", "bea"),
            ("d3", "view", "dan"),
        }
        assert stats.path_answers == len(requests)

    async def test_a_parent_cycle(self, load: Load) -> None:
        """A cycle cuts the search: the evaluator answers those items, the same as without the search."""
        reader = await load(
            (
                "folder:c1#parent@folder:c2",
                "folder:c2#parent@folder:c1",
                "folder:c2#viewer@user:cyc",
                "document:loop#parent@folder:c1",
                "document:plain#owner@user:cyc",
            )
        )
        requests = [
            _req("document:loop", "view", "user:cyc"),
            _req("document:loop", "view", "user:zoe"),
            _req("document:loop", "edit", "user:cyc"),
            _req("document:plain", "view", "user:cyc"),  # off the cycle: still answered by the search
        ]
        answers, stats = await _agree(reader, requests)
        assert isinstance(answers[0], CheckResult)
        assert answers[0].permissionship is YES
        assert stats.path_answers == 1


class TestDepth:
    CHAIN = (
        "document:chain#owner@user:near",
        "document:chain#parent@folder:ch1",
        "folder:ch1#viewer@user:one",
        *(f"folder:ch{i}#parent@folder:ch{i + 1}" for i in range(1, 8)),
        "folder:ch3#viewer@user:three",
        "folder:ch8#owner@user:far",
    )
    """document:chain -> ch1 -> ... -> ch8: grants on the document, at ch1, ch3 and ch8."""

    async def test_a_chain_deeper_than_max_depth(self, load: Load) -> None:
        """At every depth limit the answers and errors are the reference's; a grant on the document is still "yes"."""
        reader = await load((*self.CHAIN, "document:short#owner@user:near"))
        requests = [
            _req("document:chain", p, f"user:{u}")
            for p in ("view", "edit")
            for u in ("near", "one", "three", "far", "zoe")
        ]
        requests.append(_req("document:short", "view", "user:near"))
        for max_depth in (2, 3, 4, 5, 6, 8, 10, 12, 20, 27, 50):
            await _agree(reader, requests, max_depth=max_depth)
        answers, stats = await _agree(reader, requests, max_depth=5)
        assert _perm(answers[0]) is YES  # near: the document's own owner
        assert _perm(answers[5]) is YES
        assert isinstance(answers[3], MaxDepthExceededError)  # far: eight folders up
        assert isinstance(answers[8], MaxDepthExceededError)
        # The chain reaches the search's step limit, so its items go to the evaluator; the
        # short document's do not.
        assert stats.path_answers == 1
        answers, stats = await _agree(reader, requests, max_depth=50)
        assert [_perm(a) for a in answers] == [YES, YES, YES, YES, NO, YES, NO, NO, YES, NO, YES]
        assert stats.path_answers == len(requests)

    async def test_deep_groups_below_a_subject_set(self, load: Load) -> None:
        """With a small depth limit, a long chain of groups below an unmatched set sends the "no" to the evaluator."""
        deep = tuple(f"group:d{i}#member@group:d{i + 1}#member" for i in range(1, 8))
        shallow = ("group:s1#member@group:s2#member", "group:s2#member@user:sam")
        reader = await load(
            (
                *deep,
                "group:d8#member@user:bottom",
                "document:deep#viewer@group:d1#member",
                *shallow,
                "document:shallow#viewer@group:s1#member",
            )
        )
        requests = [_req("document:deep", "view", f"user:{u}") for u in ("bottom", "zoe")]
        answers, stats = await _agree(reader, requests, max_depth=5)
        assert isinstance(answers[1], MaxDepthExceededError)  # the evaluator cannot rule zoe out
        assert stats.path_answers == 0
        answers, stats = await _agree(reader, requests, max_depth=50)
        assert [_perm(a) for a in answers] == [YES, NO]
        assert stats.path_answers == 2
        # A chain shorter than the depth left: the search's "no" stands at the same limit.
        answers, stats = await _agree(reader, [_req("document:shallow", "view", "user:zoe")], max_depth=5)
        assert [_perm(a) for a in answers] == [NO]
        assert stats.path_answers == 1

    async def test_an_error_stays_with_its_own_item(self, load: Load) -> None:
        """A chain too deep for the limit fails its own item only: a shallow document for the same subject says "no", as Check does."""
        reader = await load((*self.CHAIN, "document:short#owner@user:near"))
        requests = [_req("document:chain", "view", "user:zoe"), _req("document:short", "view", "user:zoe")]
        engine = Engine(cache_size=0, max_depth=5)
        chain, short = await engine.check_bulk(reader, requests, now=NOW)
        assert isinstance(chain, MaxDepthExceededError)
        assert _perm(short) is NO
        assert engine.stats.path_answers == 1
        with pytest.raises(MaxDepthExceededError):
            await Engine(cache_size=0, max_depth=5).check(reader, requests[0], now=NOW)
        assert _perm(await Engine(cache_size=0, max_depth=5).check(reader, requests[1], now=NOW)) is NO

    async def test_without_the_search_an_error_stays_with_its_own_item(self, load: Load) -> None:
        """The same bulk without the path search: the shallow document still says "no".

        The evaluator asks a batch of resource ids as one request; when it fails, each id is
        asked alone, so one id's MaxDepthExceededError does not fail the others.
        """
        reader = await load((*self.CHAIN, "document:short#owner@user:near"))
        requests = [_req("document:chain", "view", "user:zoe"), _req("document:short", "view", "user:zoe")]
        engine = Engine(cache_size=0, max_depth=5, path_search=False)
        chain, short = await engine.check_bulk(reader, requests, now=NOW)
        assert isinstance(chain, MaxDepthExceededError)
        assert isinstance(short, CheckResult), short
        assert short.permissionship is NO


class TestConditional:
    ROWS = (
        "document:cav_leaf#viewer@user:ann[weekday]",
        "folder:ann_home#owner@user:ann",
        "document:cav_arrow#parent@folder:ann_home[weekday]",
        "group:cg#member@user:ann[weekday]",
        "document:cav_group#viewer@group:cg#member",
        "group:plain#member@user:ann",
        "document:cav_set#viewer@group:plain#member[weekday]",
    )
    DOCUMENTS = ("cav_leaf", "cav_arrow", "cav_group", "cav_set")

    @pytest.mark.parametrize(
        ("context", "expected"),
        [(None, MAYBE), ({"day": "mon"}, YES), ({"day": "sat"}, NO)],
        ids=["missing", "weekday", "weekend"],
    )
    async def test_a_caveat_on_the_path(
        self, load: Load, context: dict[str, str] | None, expected: Permissionship
    ) -> None:
        """A caveated leaf, arrow, group membership or subject-set row: the evaluator answers, as the reference."""
        reader = await load(self.ROWS)
        requests = [_req(f"document:{d}", "view", "user:ann", context=context) for d in self.DOCUMENTS]
        answers, stats = await _agree(reader, requests)
        assert [_perm(a) for a in answers] == [expected] * len(self.DOCUMENTS)
        if expected is MAYBE:
            assert all(a.missing_context == ("day",) for a in answers if isinstance(a, CheckResult))
        assert stats.path_answers == 0

    async def test_another_subjects_caveated_rows_do_not_stop_the_search(self, load: Load) -> None:
        """Bob never meets Ann's caveated grant or membership (his "no" is the search's); he does meet caveated arrows and subject sets."""
        reader = await load(self.ROWS)
        requests = [_req(f"document:{d}", "view", "user:bob") for d in self.DOCUMENTS]
        answers, stats = await _agree(reader, requests)
        assert [_perm(a) for a in answers] == [NO] * len(self.DOCUMENTS)
        assert stats.path_answers == 2  # cav_leaf and cav_group

    async def test_expiring_rows(self, load: Load) -> None:
        """An expired row grants nothing and a live expiring one grants, as the evaluator decides."""
        reader = await load(
            (
                "document:expired#viewer@user:ann[expiration:2030-01-01T00:00:00Z]",
                "document:expiring#viewer@user:ann[expiration:2031-01-01T00:00:00Z]",
                "folder:ann_home#owner@user:ann",
                "document:expired_arrow#parent@folder:ann_home[expiration:2030-01-01T00:00:00Z]",
                "group:old#member@user:ann[expiration:2030-01-01T00:00:00Z]",
                "document:expired_member#viewer@group:old#member",
            )
        )
        requests = [
            _req(f"document:{d}", "view", "user:ann")
            for d in ("expired", "expiring", "expired_arrow", "expired_member")
        ]
        answers, stats = await _agree(reader, requests)
        assert [_perm(a) for a in answers] == [NO, YES, NO, NO]
        assert stats.path_answers == 0


class TestLeftToTheEvaluator:
    async def test_a_subject_set_subject(self, load: Load) -> None:
        """`group:eng#member` as the subject is not searched; plain subjects beside it still are."""
        reader = await load(DRIVE)
        requests = [
            _req("document:spec", "view", "group:eng#member"),
            _req("document:spec", "edit", "group:backend#member"),
            _req("document:alice_cv", "view", "group:eng#member"),
            _req("document:spec", "view", "user:dave"),
        ]
        answers, stats = await _agree(reader, requests)
        assert _perm(answers[0]) is YES
        assert _perm(answers[2]) is NO
        assert _perm(answers[3]) is YES
        assert stats.path_answers == 1

    async def test_an_exclusion_has_no_plan(self, load: Load) -> None:
        """A permission with an exclusion is never searched; answers still agree."""
        schema_with_exclusion = """
            definition user {}
            definition doc {
              relation viewer: user
              relation banned: user
              permission view = viewer - banned
            }
        """
        rows = ("doc:1#viewer@user:ann", "doc:1#viewer@user:bob", "doc:1#banned@user:bob")
        reader = await load(rows, schema=schema_with_exclusion)
        requests = [_req("doc:1", "view", f"user:{u}") for u in ("ann", "bob", "zoe")]
        answers, stats = await _agree(reader, requests)
        assert [_perm(a) for a in answers] == [YES, NO, NO]
        assert (stats.path_searches, stats.path_answers) == (0, 0)

    async def test_contextual_relationships(self, load: Load) -> None:
        """An item's own contextual relationships keep it out of the search; call-wide ones keep every item out."""
        reader = await load(DRIVE)
        extra = (rel("document:spec#viewer@user:zoe"),)
        requests = [
            _req("document:spec", "view", "user:zoe", contextual_relationships=extra),
            _req("document:spec", "view", "user:zoe"),
            _req("document:spec", "view", "user:dave"),
        ]
        answers, stats = await _agree(reader, requests)
        assert [_perm(a) for a in answers] == [YES, NO, YES]
        assert stats.path_answers == 2
        answers, stats = await _agree(reader, requests[1:], contextual=extra)
        assert [_perm(a) for a in answers] == [YES, YES]
        assert (stats.path_searches, stats.path_answers) == (0, 0)


class TestItems:
    async def test_duplicate_items(self, load: Load) -> None:
        """A repeated item gets the same answer in each place."""
        reader = await load(DRIVE)
        requests = [
            _req("document:spec", "view", "user:dave"),
            _req("document:spec", "view", "user:zoe"),
            _req("document:spec", "view", "user:dave"),
            _req("document:spec", "view", "user:zoe"),
        ]
        answers, stats = await _agree(reader, requests)
        assert [_perm(a) for a in answers] == [YES, NO, YES, NO]
        assert stats.path_answers == 2  # one per distinct (resource, permission, subject)

    async def test_an_unknown_permission_fails_its_item_only(self, load: Load) -> None:
        """The unknown permission's item gets UnknownRelationError; the search answers the others."""
        reader = await load(DRIVE)
        requests = [
            _req("document:spec", "view", "user:dave"),
            _req("document:spec", "nosuch", "user:dave"),
            _req("document:alice_cv", "view", "user:bob"),
        ]
        answers, stats = await _agree(reader, requests)
        assert isinstance(answers[1], UnknownRelationError)
        assert [_perm(answers[0]), _perm(answers[2])] == [YES, NO]
        assert stats.path_answers == 2


class TestCost:
    async def test_a_hundred_items_cost_one_search(self, postgres_datastore: PostgresDatastore) -> None:
        """100 items over two resource types and two permissions: one search and at most one more query."""
        rows = [*DRIVE]
        for i in range(10):
            rows += [f"document:d{i}#parent@folder:team", f"folder:f{i}#parent@folder:root"]
        await write_schema(postgres_datastore, SCHEMA)
        revision = await write_relationships(
            postgres_datastore, [RelationshipUpdate(UpdateOperation.TOUCH, rel(r)) for r in rows]
        )
        reader = postgres_datastore.snapshot_reader(revision)
        users = [*USERS, "u1", "u2", "u3", "u4", "u5"]
        kinds = (
            ("document", "d", "view"),
            ("document", "d", "edit"),
            ("folder", "f", "view"),
            ("folder", "f", "edit"),
        )
        requests = [
            _req(f"{kind}:{prefix}{i % 10}", permission, f"user:{users[(i * 7 + n) % len(users)]}")
            for n, (kind, prefix, permission) in enumerate(kinds)
            for i in range(25)
        ]
        assert len(requests) == 100
        answers, stats = await _agree(reader, requests)
        granted = {"document": {"olga", "dave", "erin"}, "folder": {"olga"}}  # team's and root's
        assert _allowed(requests, answers) == {
            (r.resource.id, r.permission, r.subject.id)
            for r in requests
            if r.subject.id in granted[r.resource.type]
        }
        assert stats.path_searches == 1  # the four (type, permission) plans merged: one subject type
        assert stats.path_answers == len({(r.resource, r.permission, r.subject) for r in requests})
        assert stats.datastore_queries <= stats.path_searches + 1, stats
        assert (stats.prefetches, stats.dispatches) == (0, 0)  # the evaluator never ran


class TestCachedEngine:
    async def test_closures_known_from_checks_are_not_read_again(self, load: Load) -> None:
        """With caches on, a bulk takes the subjects' closures that earlier checks read (closure hits), same answers."""
        reader = await load(
            (
                *DRIVE,
                "group:l1#member@group:l2#member",
                "group:l2#member@group:l3#member",
                "group:l3#member@user:deep",
                "document:nested#viewer@group:l1#member",
            )
        )
        requests = [
            _req(f"document:{d}", "view", f"user:{u}")
            for d in ("spec", "nested", "alice_cv")
            for u in ("dave", "erin", "deep", "zoe")
        ]
        reference = await Engine(cache_size=0, path_search=False).check_bulk(reader, requests, now=NOW)
        cold = Engine()
        answers = await cold.check_bulk(reader, requests, now=NOW)
        assert answers == reference
        assert cold.stats.closure_hits == 0
        engine = Engine()
        for request in requests[:4]:  # one check per user reads (and caches) the user's closure
            await engine.check(reader, _req("document:nested", "edit", str(request.subject)), now=NOW)
        before = engine.stats.snapshot()
        answers = await engine.check_bulk(reader, requests, now=NOW)
        assert answers == reference
        work = engine.stats.since(before)
        assert work.path_answers == len(requests)
        assert work.closure_hits > 0
        for request, expected in zip(requests, reference, strict=True):
            assert await engine.check(reader, request, now=NOW) == expected, request




class TestChainHeights:
    GROUPS = (
        "document:d1#viewer@group:g1#member",
        "document:d2#viewer@group:g2#member",
        "group:g1#member@group:g3#member",
        "group:g3#member@user:ann",
        "group:g2#member@user:bob",
    )

    async def test_only_groups_without_a_height_bound_are_measured(
        self, load: Load, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A "no" next to a group needs the group's chain height once per revision.

        The first bulk measures the groups it met; a later bulk measures only groups not
        met before, and none at all once every group it meets was measured.
        """
        reader = await load(self.GROUPS)
        measured: list[tuple[str, ...]] = []
        height = reader.subject_set_height  # type: ignore[attr-defined]

        async def spy(resource_type: str, relation: str, ids: Sequence[str], **kw: Any) -> int:
            measured.append(tuple(ids))
            return int(await height(resource_type, relation, ids, **kw))

        monkeypatch.setattr(reader, "subject_set_height", spy)
        engine = Engine()
        zoe = [_req("document:d1", "view", "user:zoe"), _req("document:d2", "view", "user:zoe")]
        assert [_perm(a) for a in await engine.check_bulk(reader, zoe[:1], now=NOW)] == [NO]
        assert measured == [("g1",)]
        assert [_perm(a) for a in await engine.check_bulk(reader, zoe, now=NOW)] == [NO, NO]
        assert measured == [("g1",), ("g2",)]  # g1 is bounded already: only g2 is measured
        assert [_perm(a) for a in await engine.check_bulk(reader, zoe, now=NOW)] == [NO, NO]
        assert measured == [("g1",), ("g2",)]
        assert engine.stats.path_answers == 5
