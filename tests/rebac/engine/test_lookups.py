"""Lookups page exactly with cursors; expand shows the tree; bad cursors are rejected."""

from __future__ import annotations

import pytest

from rebac.engine import Engine
from rebac.engine.requests import ExpandOperation
from rebac.errors import InvalidRequestError
from rebac.testing import memory_datastore
from rebac.tuples import ObjectRef, SubjectRef

SCHEMA = """
definition user {}
definition doc {
  relation viewer: user | user:*
  relation banned: user
  permission view = viewer - banned
}
"""


class TestLookups:
    async def test_lookup_resources_pages_with_cursor(self) -> None:
        """Pages of size 2 resume exactly after the cursor and together list every resource once."""
        ds, rev = await memory_datastore(SCHEMA, [f"doc:d{i}#viewer@user:ann" for i in range(5)] + ["doc:x#viewer@user:bob"])
        reader, engine = ds.snapshot_reader(rev), Engine()
        seen: list[str] = []
        cursor = None
        while True:
            page = [r async for r in engine.lookup_resources(reader, "doc", "view", SubjectRef("user", "ann"), limit=2, cursor=cursor)]
            if not page:
                break
            seen += [r.resource_id for r in page]
            cursor = page[-1].cursor
        assert seen == [f"d{i}" for i in range(5)]

    async def test_lookup_subjects_wildcard_exclusions(self) -> None:
        """A wildcard result lists the banned user as excluded."""
        ds, rev = await memory_datastore(SCHEMA, ["doc:1#viewer@user:*", "doc:1#banned@user:eve", "doc:1#viewer@user:ann"])
        found = [f async for f in Engine().lookup_subjects(ds.snapshot_reader(rev), ObjectRef("doc", "1"), "view", "user")]
        assert [str(f.subject) for f in found] == ["user:*", "user:ann"]
        assert found[0].excluded == (SubjectRef("user", "eve"),)

    async def test_bad_cursor_rejected(self) -> None:
        """A malformed cursor raises InvalidRequestError naming the cursor field."""
        ds, rev = await memory_datastore(SCHEMA, [])
        with pytest.raises(InvalidRequestError) as info:
            _ = [r async for r in Engine().lookup_resources(ds.snapshot_reader(rev), "doc", "view", SubjectRef("user", "a"), cursor="!!")]
        assert info.value.field == "cursor"

    async def test_expand_exclusion_tree(self) -> None:
        """One level names the usersets of `viewer - banned`; recursive expand lists their subjects."""
        ds, rev = await memory_datastore(SCHEMA, ["doc:1#viewer@user:ann", "doc:1#banned@user:eve"])
        reader, engine = ds.snapshot_reader(rev), Engine()
        tree = await engine.expand(reader, ObjectRef("doc", "1"), "view")
        assert tree.operation is ExpandOperation.EXCLUSION
        assert [c.subjects for c in tree.children] == [
            (SubjectRef("doc", "1", "viewer"),), (SubjectRef("doc", "1", "banned"),)
        ]
        full = await engine.expand(reader, ObjectRef("doc", "1"), "view", recursive=True)
        assert [c.subjects for c in full.children] == [(SubjectRef("user", "ann"),), (SubjectRef("user", "eve"),)]
