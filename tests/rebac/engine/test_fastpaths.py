"""The fast paths (prefetch along arrows, nested-group closures) answer exactly like the walk.

Every test asks the same questions through a graph reader (fast paths on) and through the
same reader wrapped so it is not a graph reader (the step-by-step walk), and compares.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rebac.datastore.protocol import GraphReader, Reader
from rebac.engine import Engine
from rebac.engine.contextual import ContextualReader
from rebac.engine.requests import CheckRequest, CheckResult, Permissionship
from rebac.errors import MaxDepthExceededError
from rebac.testing import memory_datastore
from rebac.tuples import (
    ObjectRef,
    Relationship,
    RelationshipCaveat,
    RelationshipUpdate,
    SubjectRef,
    UpdateOperation,
    rel,
)
from rebac.writes import write_relationships

SCHEMA = """
use expiration
definition user {}
caveat on_weekday(day string) { day != "sat" && day != "sun" }
definition group {
  relation member: user | user:* | group#member | user with on_weekday | user with expiration
  relation banned: user | group#member
}
definition folder {
  relation parent: folder
  relation viewer: user | group#member
  relation blocked: user | group#member
  permission view = (viewer + parent->view) - blocked
}
definition doc {
  relation parent: folder
  relation viewer: user | group#member
  permission view = viewer + parent->view
}
"""

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def _walk(reader: Reader) -> Reader:
    """The same data through a reader without the graph walks (the fast paths stay off)."""
    plain = ContextualReader(reader, ())
    assert not isinstance(plain, GraphReader)
    return plain


async def _both(reader: Reader, resource: str, permission: str, subject: str, **kw: object) -> CheckResult:
    request = CheckRequest(ObjectRef.parse(resource), permission, SubjectRef.parse(subject), **kw)  # type: ignore[arg-type]
    assert isinstance(reader, GraphReader)
    fast = await Engine(cache_size=0).check(reader, request, now=NOW)
    slow = await Engine(cache_size=0).check(_walk(reader), request, now=NOW)
    assert fast == slow, f"{resource}#{permission}@{subject}: fast {fast} != walk {slow}"
    return fast


class TestFastPaths:
    async def test_cycle_in_groups(self) -> None:
        """A cycle of groups answers members and non-members like the walk does."""
        rels = [
            "group:a#member@group:b#member",
            "group:b#member@group:c#member",
            "group:c#member@group:a#member",
            "group:c#member@user:ann",
            "doc:1#viewer@group:a#member",
        ]
        ds, rev = await memory_datastore(SCHEMA, rels)
        reader = ds.snapshot_reader(rev)
        assert (await _both(reader, "doc:1", "view", "user:ann")).allowed
        assert not (await _both(reader, "doc:1", "view", "user:bob")).allowed
        for group in ("a", "b", "c"):
            assert (await _both(reader, f"group:{group}", "member", "user:ann")).allowed

    async def test_exclusion_above_recursive_relations(self) -> None:
        """A block on a folder removes access inherited through a parent chain and groups."""
        rels = [
            "folder:top#viewer@group:staff#member",
            "folder:mid#parent@folder:top",
            "folder:leaf#parent@folder:mid",
            "folder:leaf#blocked@group:interns#member",
            "group:staff#member@group:interns#member",
            "group:interns#member@user:ivy",
            "group:staff#member@user:sam",
            "doc:1#parent@folder:leaf",
        ]
        ds, rev = await memory_datastore(SCHEMA, rels)
        reader = ds.snapshot_reader(rev)
        assert (await _both(reader, "doc:1", "view", "user:sam")).allowed
        assert not (await _both(reader, "doc:1", "view", "user:ivy")).allowed
        assert (await _both(reader, "folder:mid", "view", "user:ivy")).allowed
        assert not (await _both(reader, "doc:1", "view", "user:nobody")).allowed

    async def test_caveated_membership_inside_a_closure(self) -> None:
        """A caveated membership deep in the groups keeps the answer CONDITIONAL or decided by context."""
        caveated = Relationship(
            ObjectRef("group", "inner"),
            "member",
            SubjectRef("user", "cat"),
            RelationshipCaveat.of("on_weekday"),
        )
        rels = ["group:outer#member@group:inner#member", "doc:1#viewer@group:outer#member", caveated]
        ds, rev = await memory_datastore(SCHEMA, rels)
        reader = ds.snapshot_reader(rev)
        assert (await _both(reader, "doc:1", "view", "user:cat")).permissionship is Permissionship.CONDITIONAL
        assert (await _both(reader, "doc:1", "view", "user:cat", context={"day": "mon"})).allowed
        assert not (await _both(reader, "doc:1", "view", "user:cat", context={"day": "sun"})).allowed

    async def test_expired_membership_inside_a_closure(self) -> None:
        """An expired membership grants nothing; one not yet expired still grants."""
        gone = Relationship(
            ObjectRef("group", "old"), "member", SubjectRef("user", "dan"), expiration=NOW - timedelta(days=1)
        )
        live = Relationship(
            ObjectRef("group", "new"), "member", SubjectRef("user", "eve"), expiration=NOW + timedelta(days=1)
        )
        rels = [
            "group:all#member@group:old#member",
            "group:all#member@group:new#member",
            "doc:1#viewer@group:all#member",
            gone,
            live,
        ]
        ds, rev = await memory_datastore(SCHEMA, rels)
        reader = ds.snapshot_reader(rev)
        assert not (await _both(reader, "doc:1", "view", "user:dan")).allowed
        assert (await _both(reader, "doc:1", "view", "user:eve")).allowed

    async def test_wildcard_member_inside_a_closure(self) -> None:
        """`user:*` in a nested group grants every user through the closure."""
        rels = [
            "group:everyone#member@user:*",
            "group:all#member@group:everyone#member",
            "doc:1#viewer@group:all#member",
        ]
        ds, rev = await memory_datastore(SCHEMA, rels)
        assert (await _both(ds.snapshot_reader(rev), "doc:1", "view", "user:anyone")).allowed

    async def test_deleted_membership_at_a_newer_revision(self) -> None:
        """A shared closure cache never answers a newer revision with an older closure."""
        rels = [
            "group:inner#member@user:fay",
            "group:outer#member@group:inner#member",
            "doc:1#viewer@group:outer#member",
        ]
        ds, old = await memory_datastore(SCHEMA, rels)
        new = await write_relationships(
            ds, [RelationshipUpdate(UpdateOperation.DELETE, rel("group:inner#member@user:fay"))]
        )
        engine = Engine()  # one engine: its per-revision caches are shared by both reads
        request = CheckRequest(ObjectRef("doc", "1"), "view", SubjectRef("user", "fay"))
        assert (await engine.check(ds.snapshot_reader(old), request)).allowed
        assert not (await engine.check(ds.snapshot_reader(new), request)).allowed
        assert (await engine.check(ds.snapshot_reader(old), request)).allowed

    async def test_contextual_relationships_bypass_the_closure_cache(self) -> None:
        """A contextual membership counts for its request only, even after closures were cached."""
        rels = ["group:outer#member@group:inner#member", "doc:1#viewer@group:outer#member"]
        ds, rev = await memory_datastore(SCHEMA, rels)
        reader = ds.snapshot_reader(rev)
        engine = Engine()
        plain = CheckRequest(ObjectRef("doc", "1"), "view", SubjectRef("user", "gus"))
        with_ctx = CheckRequest(
            ObjectRef("doc", "1"),
            "view",
            SubjectRef("user", "gus"),
            contextual_relationships=(rel("group:inner#member@user:gus"),),
        )
        assert not (await engine.check(reader, plain)).allowed
        assert (await engine.check(reader, with_ctx)).allowed
        assert not (await engine.check(reader, plain)).allowed

    async def test_depth_limit_through_the_closure(self) -> None:
        """A member deeper than the limit raises, as does a non-member above a too-deep chain."""
        rels = [f"group:g{i}#member@group:g{i + 1}#member" for i in range(8)] + ["group:g8#member@user:ann"]
        ds, rev = await memory_datastore(SCHEMA, rels)
        reader = ds.snapshot_reader(rev)
        request = CheckRequest(ObjectRef("group", "g0"), "member", SubjectRef("user", "ann"))
        with pytest.raises(MaxDepthExceededError):
            await Engine(max_depth=5).check(reader, request)
        with pytest.raises(MaxDepthExceededError):
            await Engine(max_depth=5).check(
                reader, CheckRequest(ObjectRef("group", "g0"), "member", SubjectRef("user", "nobody"))
            )
        assert (
            await Engine(max_depth=5).check(
                reader, CheckRequest(ObjectRef("group", "g6"), "member", SubjectRef("user", "ann"))
            )
        ).allowed

    async def test_fast_paths_cut_queries(self) -> None:
        """A check through a 10-folder chain and 5 nested groups costs one statement (walk and closure)."""
        rels = ["doc:1#parent@folder:f0"] + [f"folder:f{i}#parent@folder:f{i + 1}" for i in range(9)]
        rels += ["folder:f9#viewer@group:g0#member"] + [
            f"group:g{i}#member@group:g{i + 1}#member" for i in range(4)
        ]
        ds, rev = await memory_datastore(SCHEMA, [*rels, "group:g4#member@user:ann"])
        engine = Engine()
        before = engine.stats.snapshot()
        request = CheckRequest(ObjectRef("doc", "1"), "view", SubjectRef("user", "ann"))
        assert (await engine.check(ds.snapshot_reader(rev), request)).allowed
        work = engine.stats.since(before)
        assert (work.datastore_queries, work.prefetches, work.closure_loads) == (1, 1, 1)
