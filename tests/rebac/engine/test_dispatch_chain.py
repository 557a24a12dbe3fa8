"""The dispatcher chain: caching by revision, batching, pruning, bulk check, and query counts."""

from __future__ import annotations

from rebac.engine import Engine
from rebac.engine.requests import CheckRequest
from rebac.errors import UnknownRelationError
from rebac.testing import memory_datastore
from rebac.tuples import ObjectRef, RelationshipUpdate, SubjectRef, UpdateOperation, rel
from rebac.writes import write_relationships

SCHEMA = """
definition user {}
definition robot {}
definition group { relation member: user | group#member }
definition folder {
  relation parent: folder
  relation viewer: user | group#member
  permission view = viewer + parent->view
}
definition doc {
  relation parent: folder
  relation viewer: user | robot | group#member
  permission view = viewer + parent->view
}
"""


def _req(resource: str, subject: str, permission: str = "view") -> CheckRequest:
    return CheckRequest(ObjectRef.parse(resource), permission, SubjectRef.parse(subject))


class TestDispatchChain:
    async def test_cache_hit_and_revision_in_key(self) -> None:
        """A repeated check hits the cache with no queries; a new revision never reuses it."""
        ds, rev = await memory_datastore(SCHEMA, ["doc:1#viewer@user:ann"])
        engine = Engine()
        assert (await engine.check(ds.snapshot_reader(rev), _req("doc:1", "user:ann"))).allowed
        before = engine.stats.snapshot()
        assert (await engine.check(ds.snapshot_reader(rev), _req("doc:1", "user:ann"))).allowed
        delta = engine.stats.since(before)
        assert delta.datastore_queries == 0
        assert delta.cache_hits == 1
        new = await write_relationships(ds, [RelationshipUpdate(UpdateOperation.DELETE, rel("doc:1#viewer@user:ann"))])
        assert not (await engine.check(ds.snapshot_reader(new), _req("doc:1", "user:ann"))).allowed

    async def test_pruned_subject_type_reads_nothing(self) -> None:
        """A subject type that can never reach the permission costs no datastore query."""
        ds, rev = await memory_datastore(SCHEMA, ["doc:1#viewer@user:ann"])
        engine = Engine()
        before = engine.stats.snapshot()
        assert not (await engine.check(ds.snapshot_reader(rev), _req("folder:f", "robot:r2"))).allowed
        assert engine.stats.since(before).datastore_queries == 0

    async def test_nested_groups_query_count(self) -> None:
        """Nested groups 5 deep cost one statement: the document's relations with ann's group closure."""
        rels = ["doc:1#viewer@group:g0#member"] + [f"group:g{i}#member@group:g{i + 1}#member" for i in range(4)]
        ds, rev = await memory_datastore(SCHEMA, [*rels, "group:g4#member@user:ann"])
        engine = Engine()
        before = engine.stats.snapshot()
        assert (await engine.check(ds.snapshot_reader(rev), _req("doc:1", "user:ann"))).allowed
        assert engine.stats.since(before).datastore_queries == 1  # the walk from doc:1 with ann's closure

    async def test_folder_chain_query_count(self) -> None:
        """A folder chain 10 deep costs one walk for the whole chain (with ann's group closure)."""
        rels = ["doc:1#parent@folder:f0"] + [f"folder:f{i}#parent@folder:f{i + 1}" for i in range(9)]
        ds, rev = await memory_datastore(SCHEMA, [*rels, "folder:f9#viewer@user:ann"])
        engine = Engine()
        before = engine.stats.snapshot()
        assert (await engine.check(ds.snapshot_reader(rev), _req("doc:1", "user:ann"))).allowed
        assert engine.stats.since(before).datastore_queries == 1

    async def test_batching_siblings(self) -> None:
        """Twenty sibling groups are read with one batched query, not twenty."""
        rels = [f"doc:1#viewer@group:g{i}#member" for i in range(20)]
        ds, rev = await memory_datastore(SCHEMA, [*rels, "group:g19#member@user:ann"])
        engine = Engine()
        before = engine.stats.snapshot()
        assert (await engine.check(ds.snapshot_reader(rev), _req("doc:1", "user:ann"))).allowed
        assert engine.stats.since(before).datastore_queries <= 3

    async def test_check_bulk_errors_in_place(self) -> None:
        """Bulk check answers every item, placing a per-item error where it belongs."""
        ds, rev = await memory_datastore(SCHEMA, ["doc:1#viewer@user:ann"])
        engine = Engine()
        results = await engine.check_bulk(ds.snapshot_reader(rev), [
            _req("doc:1", "user:ann"), _req("doc:2", "user:ann"), _req("doc:1", "user:ann", "nope"),
        ])
        assert results[0].allowed  # type: ignore[union-attr]
        assert not results[1].allowed  # type: ignore[union-attr]
        assert isinstance(results[2], UnknownRelationError)
