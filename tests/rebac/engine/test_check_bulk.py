"""CheckBulk shares one scope and merged reads across items, and answers like Check.

Runs on PostgreSQL (batched closures in one recursive query) and on memory (closures
subject by subject); every item must answer exactly as its own Check does.
"""

from __future__ import annotations

from rebac.datastore.graph import (
    BatchClosureReader,
    subject_set_closure_by_queries,
    subject_set_closures_by_queries,
)
from rebac.datastore.postgres import PostgresDatastore
from rebac.datastore.protocol import Datastore, Reader
from rebac.engine import Engine
from rebac.engine.closure import CLOSURE_BATCH
from rebac.engine.requests import CheckRequest, CheckResult
from rebac.errors import RebacError, UnknownDefinitionError
from rebac.revision import Revision
from rebac.testing import memory_datastore
from rebac.tuples import ObjectRef, RelationshipUpdate, SubjectRef, UpdateOperation, rel
from rebac.writes import write_relationships, write_schema

SCHEMA = """
definition user {}
definition group { relation member: user | user:* | group#member }
definition folder {
  relation parent: folder
  relation viewer: user | group#member
  permission view = viewer + parent->view
}
definition doc {
  relation parent: folder
  relation owner: user
  relation viewer: user | group#member
  permission view = owner + viewer + parent->view
}
"""

RELS = (
    "doc:1#parent@folder:f1",
    "doc:2#parent@folder:f2",
    "doc:3#viewer@group:eng#member",
    "doc:4#owner@user:u3",
    "folder:f1#parent@folder:f0",
    "folder:f0#viewer@group:all#member",
    "folder:f2#viewer@group:ops#member",
    "group:all#member@group:eng#member",
    "group:all#member@group:ops#member",
    "group:eng#member@user:u0",
    "group:eng#member@user:u1",
    "group:ops#member@user:u2",
    "group:ops#member@group:oncall#member",
    "group:oncall#member@user:u4",
    "group:open#member@user:*",
)


async def _load(ds: Datastore, rels: tuple[str, ...] = RELS) -> Revision:
    await write_schema(ds, SCHEMA)
    return await write_relationships(ds, [RelationshipUpdate(UpdateOperation.TOUCH, rel(r)) for r in rels])


def _grid() -> list[CheckRequest]:
    users = [f"u{i}" for i in range(6)]
    return [
        CheckRequest(ObjectRef("doc", d), "view", SubjectRef("user", u))
        for d in ("1", "2", "3", "4")
        for u in users
    ]


async def _agree(reader: Reader, requests: list[CheckRequest]) -> list[CheckResult | RebacError]:
    """Bulk answers, asserted equal item by item to single cold checks."""
    bulk = await Engine(cache_size=0).check_bulk(reader, requests)
    for request, got in zip(requests, bulk, strict=True):
        try:
            single: CheckResult | RebacError = await Engine(cache_size=0).check(reader, request)
        except RebacError as err:
            single = err
        assert type(got) is type(single), f"{request}: bulk {got!r} != check {single!r}"
        if isinstance(got, CheckResult):
            assert got == single, f"{request}: bulk {got} != check {single}"
    return bulk


class TestCheckBulkShared:
    async def test_agrees_with_check_on_postgres(self, postgres_datastore: PostgresDatastore) -> None:
        """Every item of a 24-item bulk over six users answers exactly as its own Check."""
        rev = await _load(postgres_datastore)
        results = await _agree(postgres_datastore.snapshot_reader(rev), _grid())
        allowed = {(r.resource.id, r.subject.id) for r, o in zip(_grid(), results, strict=True) if o.allowed}  # type: ignore[union-attr]
        assert ("1", "u4") in allowed  # doc:1 <- f1 <- f0 <- all <- ops <- oncall <- u4
        assert ("2", "u0") not in allowed  # eng is not in ops
        assert ("4", "u3") in allowed
        assert ("4", "u5") not in allowed

    async def test_agrees_with_check_on_memory(self) -> None:
        """On a reader without batched closures each subject's closure loads on its own; answers agree."""
        ds, rev = await memory_datastore(SCHEMA, RELS)
        assert not isinstance(ds.snapshot_reader(rev), BatchClosureReader)
        await _agree(ds.snapshot_reader(rev), _grid())

    async def test_reads_once_for_all_items(self, postgres_datastore: PostgresDatastore) -> None:
        """Through the evaluator, 24 items cost one prefetch, one closure query and one depth query."""
        rev = await _load(postgres_datastore)
        engine = Engine(cache_size=0, path_search=False)
        await engine.check_bulk(postgres_datastore.snapshot_reader(rev), _grid())
        assert (engine.stats.prefetches, engine.stats.datastore_queries) == (1, 3)

    async def test_many_subjects_load_closures_in_batches(
        self, postgres_datastore: PostgresDatastore
    ) -> None:
        """Through the evaluator, 250 users cost three closure queries (batches of `CLOSURE_BATCH`)."""
        members = tuple(f"group:eng#member@user:m{i}" for i in range(0, 250, 2))
        rev = await _load(postgres_datastore, (*RELS, *members))
        reader = postgres_datastore.snapshot_reader(rev)
        requests = [
            CheckRequest(ObjectRef("doc", "3"), "view", SubjectRef("user", f"m{i}")) for i in range(250)
        ]
        engine = Engine(cache_size=0, path_search=False)
        results = await engine.check_bulk(reader, requests)
        assert [r.allowed for r in results] == [i % 2 == 0 for i in range(250)]  # type: ignore[union-attr]
        assert CLOSURE_BATCH == 100
        # One prefetch, three closure batches and at most one depth query (closure loads too).
        stats = engine.stats
        assert stats.prefetches == 1
        assert stats.datastore_queries == 1 + stats.closure_loads
        assert stats.closure_loads in (3, 4), stats
        await _agree(reader, requests[:6])

    async def test_errors_stay_in_their_items(self, postgres_datastore: PostgresDatastore) -> None:
        """An unknown type fails its own item only; an item with contextual relationships answers privately."""
        rev = await _load(postgres_datastore)
        reader = postgres_datastore.snapshot_reader(rev)
        requests = [
            CheckRequest(ObjectRef("doc", "1"), "view", SubjectRef("user", "u0")),
            CheckRequest(ObjectRef("nosuch", "1"), "view", SubjectRef("user", "u0")),
            CheckRequest(
                ObjectRef("doc", "2"),
                "view",
                SubjectRef("user", "u5"),
                contextual_relationships=(rel("group:ops#member@user:u5"),),
            ),
            CheckRequest(ObjectRef("doc", "2"), "view", SubjectRef("user", "u5")),
        ]
        ok, unknown, contextual, plain = await _agree(reader, requests)
        assert isinstance(unknown, UnknownDefinitionError)
        assert ok.allowed  # type: ignore[union-attr]
        assert contextual.allowed  # type: ignore[union-attr]
        assert not plain.allowed  # type: ignore[union-attr]


class TestBatchedClosures:
    async def test_postgres_matches_one_subject_at_a_time(
        self, postgres_datastore: PostgresDatastore
    ) -> None:
        """`subject_set_closures` gives each subject what `subject_set_closure` gives it, wildcards and cycles included."""
        rev = await _load(postgres_datastore, (*RELS, "group:eng#member@group:all#member"))  # a cycle
        reader = postgres_datastore.snapshot_reader(rev)
        assert isinstance(reader, BatchClosureReader)
        subjects = ["u0", "u2", "u4", "u9", "nobody"]
        got = await reader.subject_set_closures("group", "member", "user", subjects, max_rows=100)
        assert got is not None
        for sid in subjects:
            expected = await subject_set_closure_by_queries(
                reader, "group", "member", "user", sid, max_rows=100
            )
            assert got[sid] == expected, sid
        assert [str(r) for r in got["nobody"]] == ["group:open#member@user:*"]
        reference = await subject_set_closures_by_queries(
            reader, "group", "member", "user", subjects, max_rows=100
        )
        assert reference == got

    async def test_a_deleted_row_is_gone_at_the_newer_revision_only(
        self, postgres_datastore: PostgresDatastore
    ) -> None:
        """Each revision sees its own rows: the older snapshot keeps a membership the newer one lost."""
        old = await _load(postgres_datastore)
        new = await write_relationships(
            postgres_datastore, [RelationshipUpdate(UpdateOperation.DELETE, rel("group:eng#member@user:u0"))]
        )
        for revision, member in ((old, True), (new, False)):
            reader = postgres_datastore.snapshot_reader(revision)
            assert isinstance(reader, BatchClosureReader)
            got = await reader.subject_set_closures("group", "member", "user", ["u0"], max_rows=100)
            assert got is not None
            assert any(str(r) == "group:eng#member@user:u0" for r in got["u0"]) is member

    async def test_too_large_is_none(self, postgres_datastore: PostgresDatastore) -> None:
        """A batch over `max_rows` answers None (ask subject by subject), never a partial closure."""
        rev = await _load(postgres_datastore)
        reader = postgres_datastore.snapshot_reader(rev)
        assert isinstance(reader, BatchClosureReader)
        assert await reader.subject_set_closures("group", "member", "user", ["u0", "u4"], max_rows=3) is None
        assert await reader.subject_set_closures("group", "member", "user", [], max_rows=3) == {}
