"""Public test helpers: a populated memory datastore in one call, and `rel()`.

Example::

    ds, revision = await memory_datastore(SCHEMA, ["document:1#viewer@user:ann"])
    reader = ds.snapshot_reader(revision)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from rebac.datastore.memory import MemoryDatastore
from rebac.errors import InvalidRelationshipError
from rebac.revision import Revision
from rebac.tuples import Relationship, rel
from rebac.writes import import_relationships, write_schema

__all__ = ["memory_datastore", "parse_relationships", "rel"]


async def _stream(items: Iterable[str | Relationship]) -> AsyncIterator[Relationship]:
    for item in items:
        yield item if isinstance(item, Relationship) else Relationship.parse(item)


async def memory_datastore(
    schema_text: str, relationships: Iterable[str | Relationship] = ()
) -> tuple[MemoryDatastore, Revision]:
    """A new MemoryDatastore holding `schema_text` and `relationships`, and its head revision.

    Relationships are text (``"doc:1#viewer@user:ann"``) or Relationship values and are
    validated against the schema exactly as a client write would be, so a test cannot
    build a world the product would refuse. Errors: SchemaError, InvalidRelationshipError,
    the schema validation errors and RelationshipExistsError for duplicates.
    """
    ds = MemoryDatastore()
    await write_schema(ds, schema_text)
    await import_relationships(ds, _stream(relationships))
    return ds, await ds.head_revision()


def parse_relationships(text: str) -> list[Relationship]:
    """Parse one relationship per line, skipping blank lines and ``//`` comment lines.

    This is the `relationships:` block format of zed validation files. An error names
    the 1-based line number in a note.
    """
    found: list[Relationship] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("//"):
            continue
        try:
            found.append(Relationship.parse(stripped))
        except InvalidRelationshipError as err:
            err.add_note(f"on line {number}: {stripped}")
            raise
    return found
