"""The write use cases: validated relationship writes, deletes, schema changes, import."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import pytest

from rebac.datastore.filters import ANY_RELATION, RelationshipFilter, SubjectFilter
from rebac.datastore.memory import MemoryDatastore
from rebac.errors import (
    BatchTooLargeError,
    InvalidRelationshipError,
    InvalidRequestError,
    PreconditionFailedError,
    RelationshipExistsError,
    SchemaChangeRefusedError,
    SchemaError,
    SchemaMissingError,
    SchemaViolationError,
    UnknownDefinitionError,
    UnknownRelationError,
)
from rebac.revision import Revision
from rebac.tuples import Relationship, RelationshipUpdate, UpdateOperation, rel
from rebac.writes import (
    ImportResult,
    Precondition,
    delete_relationships,
    describe_filter,
    import_relationships,
    write_relationships,
    write_schema,
)

SCHEMA = """
definition user {}

definition group {
    relation member: user | group#member
}

definition document {
    relation owner: user
    relation viewer: user | user:* | group#member
    permission view = viewer + owner
}
"""


def touch(*texts: str) -> list[RelationshipUpdate]:
    return [RelationshipUpdate(UpdateOperation.TOUCH, rel(t)) for t in texts]


def create(*texts: str) -> list[RelationshipUpdate]:
    return [RelationshipUpdate(UpdateOperation.CREATE, rel(t)) for t in texts]


async def stored(ds: MemoryDatastore, revision: Revision | None = None) -> list[str]:
    reader = ds.snapshot_reader(revision or await ds.head_revision())
    return [str(r) async for r in reader.query_relationships(RelationshipFilter())]


async def stream(texts: Iterable[str]) -> AsyncIterator[Relationship]:
    for text in texts:
        yield rel(text)


@pytest.fixture(name="ds")
async def _ds() -> AsyncIterator[MemoryDatastore]:
    ds = MemoryDatastore()
    await write_schema(ds, SCHEMA)
    yield ds
    await ds.aclose()


class TestWriteRelationships:
    async def test_writes_and_returns_the_new_revision(self, ds: MemoryDatastore) -> None:
        """Valid updates are applied atomically at the returned revision."""
        before = await ds.head_revision()
        revision = await write_relationships(
            ds, touch("document:1#viewer@user:ann", "document:1#viewer@group:eng#member", "document:2#viewer@user:*")
        )
        assert revision.greater_than(before)
        assert await stored(ds, revision) == [
            "document:1#viewer@group:eng#member",
            "document:1#viewer@user:ann",
            "document:2#viewer@user:*",
        ]
        assert await stored(ds, before) == []

    async def test_delete_and_touch_in_one_batch(self, ds: MemoryDatastore) -> None:
        """DELETE and TOUCH of different keys in one write both apply."""
        await write_relationships(ds, touch("document:1#viewer@user:ann"))
        await write_relationships(
            ds,
            [
                RelationshipUpdate(UpdateOperation.DELETE, rel("document:1#viewer@user:ann")),
                RelationshipUpdate(UpdateOperation.TOUCH, rel("document:1#owner@user:ann")),
            ],
        )
        assert await stored(ds) == ["document:1#owner@user:ann"]

    async def test_batch_too_large_names_the_limit(self, ds: MemoryDatastore) -> None:
        """More updates than max_updates raises BatchTooLargeError naming the limit; nothing is written."""
        head = await ds.head_revision()
        updates = touch(*(f"document:{i}#viewer@user:ann" for i in range(4)))
        with pytest.raises(BatchTooLargeError, match="limit of 3"):
            await write_relationships(ds, updates, max_updates=3)
        assert await ds.head_revision() == head
        assert await write_relationships(ds, updates, max_updates=4)

    async def test_duplicate_key_in_one_batch_is_refused(self, ds: MemoryDatastore) -> None:
        """Two updates of one relationship in one write raise InvalidRequestError naming it."""
        updates = [
            *touch("document:1#viewer@user:ann"),
            RelationshipUpdate(UpdateOperation.DELETE, rel("document:1#viewer@user:ann")),
        ]
        with pytest.raises(InvalidRequestError, match=r"document:1#viewer@user:ann.*more than once"):
            await write_relationships(ds, updates)
        assert await stored(ds) == []

    @pytest.mark.parametrize(
        ("text", "error", "fragment"),
        [
            ("folder:1#viewer@user:ann", UnknownDefinitionError, "folder"),
            ("document:1#editor@user:ann", UnknownRelationError, "editor"),
            ("document:1#view@user:ann", SchemaViolationError, "permission"),
            ("document:1#owner@group:eng#member", SchemaViolationError, "group#member"),
            ("document:1#owner@user:*", SchemaViolationError, "user:\\*"),
            ("document:1#viewer@group:eng", SchemaViolationError, "group"),
            ("document:1#viewer@user:ann[some_caveat]", SchemaViolationError, "some_caveat"),
        ],
    )
    async def test_invalid_relationship_fails_the_whole_batch(
        self, ds: MemoryDatastore, text: str, error: type[Exception], fragment: str
    ) -> None:
        """One relationship the schema refuses fails the write with a clear error, writing nothing."""
        with pytest.raises(error, match=fragment):
            await write_relationships(ds, touch("document:9#viewer@user:ann", text))
        assert await stored(ds) == []

    async def test_error_names_the_offending_update(self, ds: MemoryDatastore) -> None:
        """In a batch, the refusal names the index and text of the relationship at fault."""
        updates = touch("document:1#viewer@user:ann", "document:2#viewer@user:bob", "document:3#readr@user:cy")
        with pytest.raises(UnknownRelationError, match=r"updates\[2\] `document:3#readr@user:cy`: .*readr"):
            await write_relationships(ds, updates)
        assert await stored(ds) == []

    async def test_without_schema(self) -> None:
        """Writing before any schema exists raises SchemaMissingError."""
        ds = MemoryDatastore()
        with pytest.raises(SchemaMissingError):
            await write_relationships(ds, touch("document:1#viewer@user:ann"))

    async def test_create_of_existing_fails_and_writes_nothing(self, ds: MemoryDatastore) -> None:
        """CREATE of a stored relationship raises RelationshipExistsError; the rest of the batch is dropped."""
        await write_relationships(ds, create("document:1#viewer@user:ann"))
        with pytest.raises(RelationshipExistsError, match="document:1#viewer@user:ann"):
            await write_relationships(ds, create("document:2#viewer@user:bob", "document:1#viewer@user:ann"))
        assert await stored(ds) == ["document:1#viewer@user:ann"]

    async def test_touch_is_idempotent(self, ds: MemoryDatastore) -> None:
        """TOUCH of an existing relationship succeeds and keeps one row."""
        await write_relationships(ds, touch("document:1#viewer@user:ann"))
        await write_relationships(ds, touch("document:1#viewer@user:ann"))
        assert await stored(ds) == ["document:1#viewer@user:ann"]

    async def test_delete_of_unknown_relation_is_refused(self, ds: MemoryDatastore) -> None:
        """A DELETE naming a relation the schema lacks raises UnknownRelationError."""
        with pytest.raises(UnknownRelationError, match="editor"):
            await write_relationships(
                ds, [RelationshipUpdate(UpdateOperation.DELETE, rel("document:1#editor@user:ann"))]
            )


class TestPreconditions:
    async def test_must_match_holds(self, ds: MemoryDatastore) -> None:
        """A must-match precondition that matches lets the write through."""
        await write_relationships(ds, touch("document:1#owner@user:ann"))
        owner = RelationshipFilter(resource_type="document", resource_ids=("1",), relation="owner")
        await write_relationships(
            ds, touch("document:1#viewer@user:bob"), preconditions=[Precondition(owner, must_match=True)]
        )
        assert "document:1#viewer@user:bob" in await stored(ds)

    async def test_must_match_fails_naming_the_filter(self, ds: MemoryDatastore) -> None:
        """User A's ownership does not satisfy a precondition about user B; nothing is written."""
        await write_relationships(ds, touch("document:1#owner@user:ann"))
        bob_owns = RelationshipFilter(
            resource_type="document",
            resource_ids=("1",),
            relation="owner",
            subject=SubjectFilter("user", ids=("bob",), relation=None),
        )
        with pytest.raises(PreconditionFailedError, match=r"document:\{1\}#owner@user:\{bob\}"):
            await write_relationships(
                ds, touch("document:1#viewer@user:bob"), preconditions=[Precondition(bob_owns, must_match=True)]
            )
        assert await stored(ds) == ["document:1#owner@user:ann"]

    async def test_must_not_match_fails_with_example(self, ds: MemoryDatastore) -> None:
        """A must-not-match precondition that matches names the filter and the matching relationship."""
        await write_relationships(ds, touch("document:1#owner@user:ann"))
        any_owner = RelationshipFilter(resource_type="document", relation="owner")
        with pytest.raises(PreconditionFailedError, match=r"document:1#owner@user:ann.*document:\*#owner"):
            await write_relationships(
                ds, touch("document:2#owner@user:bob"), preconditions=[Precondition(any_owner, must_match=False)]
            )
        assert await stored(ds) == ["document:1#owner@user:ann"]

    async def test_subject_only_precondition(self, ds: MemoryDatastore) -> None:
        """A precondition with only a subject filter is checked through the reverse path."""
        await write_relationships(ds, touch("document:1#viewer@user:ann"))
        bob_anywhere = RelationshipFilter(subject=SubjectFilter("user", ids=("bob",)))
        await write_relationships(
            ds, touch("document:2#viewer@user:cat"), preconditions=[Precondition(bob_anywhere, must_match=False)]
        )
        with pytest.raises(PreconditionFailedError):
            await write_relationships(
                ds, touch("document:3#viewer@user:cat"), preconditions=[Precondition(bob_anywhere, must_match=True)]
            )

    def test_describe_filter(self) -> None:
        """Filters print compactly with `*` for open positions."""
        assert describe_filter(RelationshipFilter()) == "*:*#*"
        assert (
            describe_filter(
                RelationshipFilter("document", ("1", "2"), "viewer", SubjectFilter("group", None, "member"))
            )
            == "document:{1,2}#viewer@group:*#member"
        )
        assert describe_filter(RelationshipFilter(subject=SubjectFilter("user", ("*",), None))) == "*:*#*@user:{*}"
        assert describe_filter(RelationshipFilter(subject=SubjectFilter("user", None, ANY_RELATION))) == "*:*#*@user:*#*"


class TestDeleteRelationships:
    async def test_deletes_matching_and_counts(self, ds: MemoryDatastore) -> None:
        """Only relationships matching the filter are deleted; the count and revision come back."""
        await write_relationships(
            ds, touch("document:1#viewer@user:ann", "document:2#viewer@user:ann", "document:2#viewer@user:bob")
        )
        ann = RelationshipFilter(resource_type="document", subject=SubjectFilter("user", ids=("ann",)))
        revision, count = await delete_relationships(ds, ann)
        assert count == 2
        assert await stored(ds, revision) == ["document:2#viewer@user:bob"]

    async def test_limit(self, ds: MemoryDatastore) -> None:
        """With a limit, at most that many are deleted, in key order."""
        await write_relationships(ds, touch(*(f"document:{i}#viewer@user:ann" for i in range(5))))
        _, count = await delete_relationships(ds, RelationshipFilter(resource_type="document"), limit=2)
        assert count == 2
        assert await stored(ds) == [f"document:{i}#viewer@user:ann" for i in range(2, 5)]

    async def test_refuses_an_empty_filter(self, ds: MemoryDatastore) -> None:
        """A filter with no field set is refused instead of deleting everything."""
        await write_relationships(ds, touch("document:1#viewer@user:ann"))
        with pytest.raises(InvalidRequestError, match="sets no field"):
            await delete_relationships(ds, RelationshipFilter())
        with pytest.raises(InvalidRequestError, match="negative"):
            await delete_relationships(ds, RelationshipFilter(resource_type="document"), limit=-1)
        assert await stored(ds) == ["document:1#viewer@user:ann"]

    @pytest.mark.parametrize(
        ("flt", "error"),
        [
            (RelationshipFilter(resource_type="folder"), UnknownDefinitionError),
            (RelationshipFilter(resource_type="document", relation="editor"), UnknownRelationError),
            (RelationshipFilter(subject=SubjectFilter("robot")), UnknownDefinitionError),
        ],
    )
    async def test_unknown_names_in_filter(
        self, ds: MemoryDatastore, flt: RelationshipFilter, error: type[Exception]
    ) -> None:
        """A filter naming what the schema lacks raises the matching Unknown* error."""
        with pytest.raises(error):
            await delete_relationships(ds, flt)

    async def test_precondition_blocks_delete(self, ds: MemoryDatastore) -> None:
        """A failed precondition leaves everything in place."""
        await write_relationships(ds, touch("document:1#viewer@user:ann"))
        locked = Precondition(RelationshipFilter(resource_type="document", relation="owner"), must_match=True)
        with pytest.raises(PreconditionFailedError):
            await delete_relationships(ds, RelationshipFilter(resource_type="document"), preconditions=[locked])
        assert await stored(ds) == ["document:1#viewer@user:ann"]


class TestWriteSchema:
    async def test_bad_text_raises_with_position_and_writes_nothing(self) -> None:
        """Unparseable text raises SchemaError with a line:column; no revision is created."""
        ds = MemoryDatastore()
        head = await ds.head_revision()
        with pytest.raises(SchemaError) as info:
            await write_schema(ds, "definition user {\n  relation = \n}")
        assert info.value.position is not None
        assert info.value.position.line == 2
        assert await ds.head_revision() == head

    async def test_stores_text_per_revision(self, ds: MemoryDatastore) -> None:
        """Each schema write is readable at its revision; the earlier text stays at earlier ones."""
        first = await ds.head_revision()
        wider = SCHEMA.replace("relation owner: user", "relation owner: user | group#member")
        second = await write_schema(ds, wider)
        assert await ds.snapshot_reader(first).read_schema_text() == SCHEMA
        assert await ds.snapshot_reader(second).read_schema_text() == wider

    @pytest.mark.parametrize(
        ("new_schema", "fragment"),
        [
            (SCHEMA.replace("relation viewer: user | user:* | group#member", "relation reader: user"), "document#viewer"),
            (SCHEMA.replace("relation viewer: user | user:* | group#member", "relation viewer: user:*"), "document#viewer"),
            (
                SCHEMA.replace("relation viewer: user | user:* | group#member", "permission viewer = owner"),
                "document#viewer",
            ),
        ],
    )
    async def test_refuses_orphaning_relationships(
        self, ds: MemoryDatastore, new_schema: str, fragment: str
    ) -> None:
        """Removing or narrowing a used relation is refused naming it and one example; nothing changes."""
        await write_relationships(ds, touch("document:1#viewer@user:ann"))
        head = await ds.head_revision()
        with pytest.raises(SchemaChangeRefusedError, match=fragment) as info:
            await write_schema(ds, new_schema.replace("permission view = viewer + owner", "permission view = owner"))
        assert info.value.relationship == "document:1#viewer@user:ann"
        assert "document:1#viewer@user:ann" in str(info.value)
        assert await ds.head_revision() == head
        assert await ds.snapshot_reader(head).read_schema_text() == SCHEMA

    async def test_refuses_removing_a_used_definition(self, ds: MemoryDatastore) -> None:
        """Dropping a definition whose relations are stored names the definition."""
        await write_relationships(ds, touch("group:eng#member@user:ann"))
        without_groups = """
            definition user {}
            definition document {
                relation owner: user
                relation viewer: user | user:*
                permission view = viewer + owner
            }
        """
        with pytest.raises(SchemaChangeRefusedError, match=r"definition `group`.*group:eng#member@user:ann"):
            await write_schema(ds, without_groups)

    async def test_narrowing_a_subject_type_that_is_in_use(self, ds: MemoryDatastore) -> None:
        """Removing `group#member` from viewer is refused only while a group viewer is stored."""
        narrowed = SCHEMA.replace("relation viewer: user | user:* | group#member", "relation viewer: user | user:*")
        await write_relationships(ds, touch("document:1#viewer@user:ann", "document:2#viewer@group:eng#member"))
        with pytest.raises(SchemaChangeRefusedError, match="document:2#viewer@group:eng#member"):
            await write_schema(ds, narrowed)
        await delete_relationships(ds, RelationshipFilter(resource_type="document", resource_ids=("2",)))
        await write_schema(ds, narrowed)
        assert await ds.snapshot_reader(await ds.head_revision()).read_schema_text() == narrowed

    async def test_unused_parts_may_be_removed(self, ds: MemoryDatastore) -> None:
        """A relation, subject type or definition no relationship uses can be removed."""
        await write_relationships(ds, touch("document:1#viewer@user:ann"))
        smaller = """
            definition user {}
            definition document {
                relation viewer: user
                permission view = viewer
            }
        """
        await write_schema(ds, smaller)
        assert await ds.snapshot_reader(await ds.head_revision()).read_schema_text() == smaller


class TestImportRelationships:
    async def test_imports_in_batches_with_progress(self, ds: MemoryDatastore) -> None:
        """Relationships load in batches; progress reports the running count after each batch."""
        progress: list[int] = []
        texts = [f"document:{i}#viewer@user:u{i}" for i in range(7)]
        result = await import_relationships(ds, stream(texts), batch_size=3, on_progress=progress.append)
        assert result == ImportResult(7, result.revision)
        assert progress == [3, 6, 7]
        assert result.revision == await ds.head_revision()
        assert sorted(await stored(ds)) == sorted(texts)

    async def test_failed_batch_writes_nothing_of_itself(self, ds: MemoryDatastore) -> None:
        """An invalid relationship fails its batch whole; earlier batches stay, and the error says so."""
        texts = ["document:1#viewer@user:a", "document:2#viewer@user:b", "document:3#viewer@user:c", "folder:1#viewer@user:d"]
        progress: list[int] = []
        with pytest.raises(UnknownDefinitionError, match="folder") as info:
            await import_relationships(ds, stream(texts), batch_size=2, on_progress=progress.append)
        assert progress == [2]
        assert "2 relationships of earlier batches were committed" in info.value.__notes__
        assert await stored(ds) == ["document:1#viewer@user:a", "document:2#viewer@user:b"]

    async def test_duplicates_are_refused(self, ds: MemoryDatastore) -> None:
        """A relationship that exists already, or repeats within a batch, fails with RelationshipExistsError."""
        await write_relationships(ds, touch("document:1#viewer@user:a"))
        with pytest.raises(RelationshipExistsError):
            await import_relationships(ds, stream(["document:2#viewer@user:a", "document:1#viewer@user:a"]))
        with pytest.raises(RelationshipExistsError):
            await import_relationships(ds, stream(["document:3#viewer@user:a", "document:3#viewer@user:a"]))
        assert await stored(ds) == ["document:1#viewer@user:a"]

    async def test_empty_import(self, ds: MemoryDatastore) -> None:
        """An empty stream writes nothing and returns the head revision."""
        head = await ds.head_revision()
        assert await import_relationships(ds, stream([])) == ImportResult(0, head)
        assert await ds.head_revision() == head

    async def test_bad_batch_size(self, ds: MemoryDatastore) -> None:
        """A batch size below one is an InvalidRequestError."""
        with pytest.raises(InvalidRequestError, match="batch_size"):
            await import_relationships(ds, stream([]), batch_size=0)

    async def test_bad_text_in_stream_propagates(self, ds: MemoryDatastore) -> None:
        """A parse error in the caller's stream surfaces unchanged."""
        with pytest.raises(InvalidRelationshipError):
            await import_relationships(ds, stream(["document:1#viewer@user:a", "nonsense"]))
