"""The public test helpers in rebac.testing."""

from __future__ import annotations

import pytest

from rebac.datastore.filters import RelationshipFilter
from rebac.errors import InvalidRelationshipError, SchemaError, SchemaViolationError
from rebac.testing import memory_datastore, parse_relationships, rel
from rebac.tuples import Relationship

SCHEMA = """
definition user {}
definition document {
    relation viewer: user
}
"""


class TestMemoryDatastore:
    async def test_builds_a_populated_datastore(self) -> None:
        """Text and Relationship values are loaded and readable at the returned revision."""
        ds, revision = await memory_datastore(
            SCHEMA, ["document:1#viewer@user:ann", rel("document:2#viewer@user:bob")]
        )
        reader = ds.snapshot_reader(revision)
        found = [str(r) async for r in reader.query_relationships(RelationshipFilter())]
        assert found == ["document:1#viewer@user:ann", "document:2#viewer@user:bob"]
        assert await reader.read_schema_text() == SCHEMA
        assert revision == await ds.head_revision()
        await ds.aclose()

    async def test_relationships_are_validated(self) -> None:
        """A relationship the schema refuses fails the helper like a client write would."""
        with pytest.raises(SchemaViolationError, match="document:1#viewer@document:2"):
            await memory_datastore(SCHEMA, ["document:1#viewer@document:2"])

    async def test_bad_schema_is_refused(self) -> None:
        """Invalid schema text raises SchemaError."""
        with pytest.raises(SchemaError):
            await memory_datastore("definition {", [])


class TestParseRelationships:
    def test_skips_blank_and_comment_lines(self) -> None:
        """One relationship per line; blank and `//` lines are ignored."""
        text = "\n// owners\ndocument:1#viewer@user:ann\n   \n  document:2#viewer@user:bob  \n"
        assert parse_relationships(text) == [
            Relationship.parse("document:1#viewer@user:ann"),
            Relationship.parse("document:2#viewer@user:bob"),
        ]

    def test_error_names_the_line(self) -> None:
        """A malformed line raises InvalidRelationshipError with a note naming its line number."""
        with pytest.raises(InvalidRelationshipError) as info:
            parse_relationships("document:1#viewer@user:ann\n\ndocument:2#viewer")
        assert info.value.__notes__ == ["on line 3: document:2#viewer"]
