"""Check semantics: operators, wildcards, subject sets, cycles, depth, revisions, expiry, caveats."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rebac.engine import Engine
from rebac.engine.requests import CheckRequest, Permissionship
from rebac.errors import (
    CaveatEvaluationError,
    InvalidRequestError,
    MaxDepthExceededError,
    UnknownDefinitionError,
    UnknownRelationError,
)
from rebac.schema.definitions import CaveatDefinition
from rebac.testing import memory_datastore
from rebac.tuples import ObjectRef, RelationshipUpdate, SubjectRef, UpdateOperation, rel
from rebac.writes import write_relationships

SCHEMA = """
definition user {}
definition group {
  relation member: user | group#member
  relation banned: user
  permission allowed = member - banned
}
definition folder {
  relation parent: folder
  relation viewer: user | group#member
  permission view = viewer + parent->view
  permission all_view = parent.all(view)
}
definition doc {
  relation parent: folder
  relation owner: user
  relation viewer: user | user:* | group#member
  relation banned: user
  relation approved: user | user:*
  permission edit = owner
  permission view = (viewer + edit + parent->view) - banned
  permission both = viewer & approved
  permission nothing = nil
}
"""


async def _check(engine: Engine, reader: Any, resource: str, permission: str, subject: str, **kw: Any) -> Permissionship:
    result = await engine.check(reader, CheckRequest(ObjectRef.parse(resource), permission, SubjectRef.parse(subject), **kw))
    return result.permissionship


YES = Permissionship.HAS_PERMISSION
NO = Permissionship.NO_PERMISSION


class TestCheck:
    async def test_sibling_group_member_denied(self) -> None:
        """A member of group b does not get what only group a was granted."""
        ds, rev = await memory_datastore(SCHEMA, [
            "group:a#member@user:ann", "group:b#member@user:bob", "doc:1#viewer@group:a#member",
        ])
        reader, engine = ds.snapshot_reader(rev), Engine()
        assert await _check(engine, reader, "doc:1", "view", "user:ann") is YES
        assert await _check(engine, reader, "doc:1", "view", "user:bob") is NO

    async def test_nested_folders_and_owner(self) -> None:
        """Permissions flow through arrows up a folder chain and through computed usersets."""
        ds, rev = await memory_datastore(SCHEMA, [
            "folder:root#viewer@user:ann", "folder:mid#parent@folder:root", "doc:1#parent@folder:mid",
            "doc:1#owner@user:olga",
        ])
        reader, engine = ds.snapshot_reader(rev), Engine()
        assert await _check(engine, reader, "doc:1", "view", "user:ann") is YES
        assert await _check(engine, reader, "doc:1", "view", "user:olga") is YES
        assert await _check(engine, reader, "doc:1", "edit", "user:ann") is NO

    async def test_wildcard_with_banned_user(self) -> None:
        """`user:*` grants everyone except a banned user."""
        ds, rev = await memory_datastore(SCHEMA, ["doc:1#viewer@user:*", "doc:1#banned@user:eve"])
        reader, engine = ds.snapshot_reader(rev), Engine()
        assert await _check(engine, reader, "doc:1", "view", "user:anyone") is YES
        assert await _check(engine, reader, "doc:1", "view", "user:eve") is NO

    async def test_wildcard_never_matches_subject_set(self) -> None:
        """A wildcard grants users, never a subject set like `group:g#member`."""
        ds, rev = await memory_datastore(SCHEMA, ["doc:1#viewer@user:*"])
        reader, engine = ds.snapshot_reader(rev), Engine()
        assert await _check(engine, reader, "doc:1", "view", "group:g#member") is NO

    async def test_intersection_with_wildcard_is_base(self) -> None:
        """`viewer & approved` with approved = `user:*` equals viewer."""
        ds, rev = await memory_datastore(SCHEMA, ["doc:1#viewer@user:ann", "doc:1#approved@user:*"])
        reader, engine = ds.snapshot_reader(rev), Engine()
        assert await _check(engine, reader, "doc:1", "both", "user:ann") is YES
        assert await _check(engine, reader, "doc:1", "both", "user:bob") is NO

    async def test_nil_is_empty(self) -> None:
        """`nil` grants nobody."""
        ds, rev = await memory_datastore(SCHEMA, ["doc:1#viewer@user:ann"])
        assert await _check(Engine(), ds.snapshot_reader(rev), "doc:1", "nothing", "user:ann") is NO

    async def test_subject_set_matches_itself(self) -> None:
        """`group:a#member` has `member` on group:a, and reaches a doc through it."""
        ds, rev = await memory_datastore(SCHEMA, ["doc:1#viewer@group:a#member"])
        reader, engine = ds.snapshot_reader(rev), Engine()
        assert await _check(engine, reader, "group:a", "member", "group:a#member") is YES
        assert await _check(engine, reader, "doc:1", "view", "group:a#member") is YES
        assert await _check(engine, reader, "doc:1", "view", "group:b#member") is NO

    async def test_arrow_all(self) -> None:
        """`.all` needs every parent to grant, and is false with no parents."""
        ds, rev = await memory_datastore(SCHEMA, [
            "folder:x#parent@folder:p1", "folder:x#parent@folder:p2",
            "folder:p1#viewer@user:ann", "folder:p2#viewer@user:ann", "folder:p1#viewer@user:bob",
        ])
        reader, engine = ds.snapshot_reader(rev), Engine()
        assert await _check(engine, reader, "folder:x", "all_view", "user:ann") is YES
        assert await _check(engine, reader, "folder:x", "all_view", "user:bob") is NO
        assert await _check(engine, reader, "folder:p1", "all_view", "user:ann") is NO

    async def test_cycle_terminates(self) -> None:
        """Groups that contain each other terminate, granting members and denying strangers."""
        ds, rev = await memory_datastore(SCHEMA, [
            "group:a#member@group:b#member", "group:b#member@group:a#member",
            "group:b#member@user:ann", "group:a#banned@user:ann",
        ])
        reader, engine = ds.snapshot_reader(rev), Engine()
        assert await _check(engine, reader, "group:a", "member", "user:ann") is YES
        assert await _check(engine, reader, "group:a", "member", "user:zed") is NO
        assert await _check(engine, reader, "group:a", "allowed", "user:ann") is NO
        assert await _check(engine, reader, "group:a", "allowed", "user:zed") is NO

    async def test_depth_exceeded_raises(self) -> None:
        """A chain deeper than max_depth raises MaxDepthExceededError, never answers."""
        rels = [f"group:g{i}#member@group:g{i + 1}#member" for i in range(8)] + ["group:g8#member@user:ann"]
        ds, rev = await memory_datastore(SCHEMA, rels)
        reader = ds.snapshot_reader(rev)
        with pytest.raises(MaxDepthExceededError):
            await _check(Engine(max_depth=5), reader, "group:g0", "member", "user:ann")
        with pytest.raises(MaxDepthExceededError):
            await _check(Engine(max_depth=5), reader, "group:g0", "member", "user:nobody")
        assert await _check(Engine(max_depth=20), reader, "group:g0", "member", "user:ann") is YES

    async def test_deleted_relationship_by_revision(self) -> None:
        """A revoked grant is visible at the old revision and gone at the new one."""
        ds, old = await memory_datastore(SCHEMA, ["doc:1#viewer@user:ann"])
        new = await write_relationships(ds, [RelationshipUpdate(UpdateOperation.DELETE, rel("doc:1#viewer@user:ann"))])
        engine = Engine()
        assert await _check(engine, ds.snapshot_reader(old), "doc:1", "view", "user:ann") is YES
        assert await _check(engine, ds.snapshot_reader(new), "doc:1", "view", "user:ann") is NO
        assert await _check(engine, ds.snapshot_reader(old), "doc:1", "view", "user:ann") is YES

    async def test_unknown_names(self) -> None:
        """Unknown types and permissions raise the precise error; a wildcard subject is invalid."""
        ds, rev = await memory_datastore(SCHEMA, [])
        reader, engine = ds.snapshot_reader(rev), Engine()
        with pytest.raises(UnknownDefinitionError):
            await _check(engine, reader, "nope:1", "view", "user:ann")
        with pytest.raises(UnknownRelationError):
            await _check(engine, reader, "doc:1", "nope", "user:ann")
        with pytest.raises(UnknownDefinitionError):
            await _check(engine, reader, "doc:1", "view", "robot:r")
        with pytest.raises(InvalidRequestError):
            await _check(engine, reader, "doc:1", "view", "user:*")

    async def test_contextual_relationships_not_cached(self) -> None:
        """A contextual grant counts for its request only and never leaks into the cache."""
        ds, rev = await memory_datastore(SCHEMA, [])
        reader, engine = ds.snapshot_reader(rev), Engine()
        assert await _check(engine, reader, "doc:1", "view", "user:ann",
                            contextual_relationships=(rel("doc:1#viewer@user:ann"),)) is YES
        assert await _check(engine, reader, "doc:1", "view", "user:ann") is NO


EXPIRY_SCHEMA = """
use expiration
definition user {}
definition doc {
  relation viewer: user with expiration
  permission view = viewer
}
"""


class TestExpiration:
    async def test_expired_relationship_never_grants(self) -> None:
        """A grant counts before its expiration and not at or after it, even when cached."""
        ds, rev = await memory_datastore(EXPIRY_SCHEMA, ["doc:1#viewer@user:ann[expiration:2030-01-01T00:00:00Z]"])
        reader, engine = ds.snapshot_reader(rev), Engine()
        before = datetime(2029, 12, 31, tzinfo=UTC)
        at = datetime(2030, 1, 1, tzinfo=UTC)
        result = await engine.check(reader, CheckRequest(ObjectRef("doc", "1"), "view", SubjectRef("user", "ann")), now=before)
        assert result.allowed
        result = await engine.check(reader, CheckRequest(ObjectRef("doc", "1"), "view", SubjectRef("user", "ann")), now=at)
        assert not result.allowed
        result = await engine.check(reader, CheckRequest(ObjectRef("doc", "1"), "view", SubjectRef("user", "ann")), now=at + timedelta(days=1))
        assert not result.allowed


CAVEAT_SCHEMA = """
caveat on_tuesday(day string) { day == "tue" }
definition user {}
definition doc {
  relation viewer: user | user with on_tuesday
  relation banned: user | user with on_tuesday
  permission view = viewer
  permission safe = viewer - banned
}
"""


class _DayEvaluator:
    """A tiny evaluator for `day == "tue"` (the CEL one is tested in rebac/caveats)."""

    def evaluate(self, caveat: CaveatDefinition, context: Mapping[str, Any]) -> Any:
        class Verdict:
            def __init__(self, value: bool | None) -> None:
                self.is_true = value is True
                self.is_partial = value is None
                self.missing = ("day",) if value is None else ()

        if "day" not in context:
            return Verdict(None)
        return Verdict(context["day"] == "tue")


class _BrokenEvaluator:
    """An evaluator that always fails (as a buggy or overloaded one might)."""

    def evaluate(self, caveat: CaveatDefinition, context: Mapping[str, Any]) -> Any:
        raise RuntimeError("evaluator exploded")


class TestCaveats:
    async def test_failing_evaluator_fails_closed(self) -> None:
        """An evaluator that raises makes a check that needs the caveat raise CaveatEvaluationError."""
        ds, rev = await memory_datastore(CAVEAT_SCHEMA, ["doc:1#viewer@user:ann[on_tuesday]", "doc:1#viewer@user:bob"])
        reader, engine = ds.snapshot_reader(rev), Engine(caveat_evaluator=_BrokenEvaluator())
        with pytest.raises(CaveatEvaluationError, match=r"on_tuesday.*RuntimeError: evaluator exploded"):
            await _check(engine, reader, "doc:1", "view", "user:ann", context={"day": "tue"})
        assert await _check(engine, reader, "doc:1", "view", "user:bob") is YES

    async def test_conditional_and_decided(self) -> None:
        """Missing context gives CONDITIONAL naming it; supplied context decides."""
        ds, rev = await memory_datastore(CAVEAT_SCHEMA, ["doc:1#viewer@user:ann[on_tuesday]"])
        reader, engine = ds.snapshot_reader(rev), Engine(caveat_evaluator=_DayEvaluator())
        result = await engine.check(reader, CheckRequest(ObjectRef("doc", "1"), "view", SubjectRef("user", "ann")))
        assert result.permissionship is Permissionship.CONDITIONAL
        assert result.missing_context == ("day",)
        assert await _check(engine, reader, "doc:1", "view", "user:ann", context={"day": "tue"}) is YES
        assert await _check(engine, reader, "doc:1", "view", "user:ann", context={"day": "wed"}) is NO

    async def test_caveated_exclusion(self) -> None:
        """A caveated ban subtracts only when its caveat holds (AND NOT)."""
        ds, rev = await memory_datastore(CAVEAT_SCHEMA, ["doc:1#viewer@user:ann", "doc:1#banned@user:ann[on_tuesday]"])
        reader, engine = ds.snapshot_reader(rev), Engine(caveat_evaluator=_DayEvaluator())
        assert await _check(engine, reader, "doc:1", "safe", "user:ann", context={"day": "tue"}) is NO
        assert await _check(engine, reader, "doc:1", "safe", "user:ann", context={"day": "wed"}) is YES
        assert await _check(engine, reader, "doc:1", "safe", "user:ann") is Permissionship.CONDITIONAL
