"""PostgresReader.reverse_edges: the reverse walk's rows, equal to reverse_query_relationships'."""

from __future__ import annotations

import pytest

from rebac.datastore.filters import ANY_RELATION, RelationshipFilter, SubjectFilter
from rebac.datastore.postgres import PostgresDatastore
from rebac.datastore.postgres.reader import PostgresReader
from rebac.errors import BugError
from rebac.tuples import RelationshipUpdate, UpdateOperation, rel
from rebac.writes import write_relationships, write_schema

pytestmark = pytest.mark.postgres

SCHEMA = """
use expiration
definition user {}
caveat on_weekday(day string) { day != "sat" && day != "sun" }
definition group { relation member: user | user:* | group#member | user with on_weekday }
definition folder {
  relation parent: folder | folder with expiration
  relation viewer: user | group#member
}
definition doc {
  relation parent: folder | folder with on_weekday
  relation viewer: user | group#member
}
definition note { relation parent: folder }
"""

ROWS = (
    "group:a#member@user:ann",
    "group:a#member@user:*",
    "group:b#member@user:ann[on_weekday]",
    "group:b#member@group:a#member",
    "folder:f1#viewer@group:a#member",
    "folder:f1#viewer@user:ann",
    "folder:f2#parent@folder:f1",
    "folder:f3#parent@folder:f1[expiration:2001-01-01T00:00:00Z]",
    "doc:1#parent@folder:f1",
    "doc:2#parent@folder:f1[on_weekday]",
    "doc:3#parent@folder:f2",
    "note:1#parent@folder:f1",
)

FILTERS = [
    RelationshipFilter(subject=SubjectFilter("user", ("ann", "*"), None)),
    RelationshipFilter(subject=SubjectFilter("group", ("a", "b"), "member")),
    RelationshipFilter(relation="parent", subject=SubjectFilter("folder", ("f1", "f2"), ANY_RELATION)),
    RelationshipFilter("doc", None, "parent", SubjectFilter("folder", ("f1",), ANY_RELATION)),
    RelationshipFilter("folder", ("f2", "f3"), "parent", SubjectFilter("folder", ("f1",), ANY_RELATION)),
]


async def _reader(ds: PostgresDatastore) -> PostgresReader:
    await write_schema(ds, SCHEMA)
    revision = await write_relationships(
        ds, [RelationshipUpdate(UpdateOperation.TOUCH, rel(t)) for t in ROWS]
    )
    reader = ds.snapshot_reader(revision)
    assert isinstance(reader, PostgresReader)
    return reader


async def _expected(
    reader: PostgresReader, flt: RelationshipFilter
) -> list[tuple[str, str, str, str, bool, object]]:
    return sorted(
        [
            (r.resource.type, r.relation, r.resource.id, r.subject.id, r.caveat is not None, r.expiration)
            async for r in reader.reverse_query_relationships(flt)
        ]
    )


class TestReverseEdges:
    @pytest.mark.parametrize("flt", FILTERS, ids=["user", "subject-set", "untyped", "typed", "ids"])
    async def test_rows_equal_the_reverse_query(
        self, postgres_datastore: PostgresDatastore, flt: RelationshipFilter
    ) -> None:
        """Each filter's edges are its relationships' (type, relation, id, subject id, caveated, expiration)."""
        reader = await _reader(postgres_datastore)
        got = sorted(tuple(row) for row in await reader.reverse_edges(flt))
        assert got == await _expected(reader, flt)
        assert got, "every filter here matches something"

    async def test_resource_types_keep_only_those_types(self, postgres_datastore: PostgresDatastore) -> None:
        """`resource_types` drops the rows of other types (the note) and keeps caveats and expirations."""
        reader = await _reader(postgres_datastore)
        flt = RelationshipFilter(
            relation="parent", subject=SubjectFilter("folder", ("f1", "f2"), ANY_RELATION)
        )
        got = sorted(
            tuple(row)[:5] for row in await reader.reverse_edges(flt, resource_types=["doc", "folder"])
        )
        assert got == [
            ("doc", "parent", "1", "f1", False),
            ("doc", "parent", "2", "f1", True),
            ("doc", "parent", "3", "f2", False),
            ("folder", "parent", "f2", "f1", False),
            ("folder", "parent", "f3", "f1", False),
        ]
        assert await reader.reverse_edges(flt, resource_types=[]) == []
        with pytest.raises(BugError):
            await reader.reverse_edges(RelationshipFilter("doc", subject=flt.subject), resource_types=["doc"])

    async def test_empty_ids_and_deleted_rows(self, postgres_datastore: PostgresDatastore) -> None:
        """No ids match nothing; a row deleted later is still an edge at the earlier revision only."""
        reader = await _reader(postgres_datastore)
        assert await reader.reverse_edges(RelationshipFilter(subject=SubjectFilter("user", (), None))) == []
        with pytest.raises(BugError):
            await reader.reverse_edges(RelationshipFilter(resource_type="doc"))
        later = await write_relationships(
            postgres_datastore, [RelationshipUpdate(UpdateOperation.DELETE, rel("doc:1#parent@folder:f1"))]
        )
        flt = RelationshipFilter("doc", None, "parent", SubjectFilter("folder", ("f1",), ANY_RELATION))
        before = sorted(row[2] for row in await reader.reverse_edges(flt))
        after = postgres_datastore.snapshot_reader(later)
        assert isinstance(after, PostgresReader)
        assert (before, sorted(row[2] for row in await after.reverse_edges(flt))) == (["1", "2"], ["2"])
