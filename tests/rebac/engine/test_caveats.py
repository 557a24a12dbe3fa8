"""Caveats, expiration and contextual relationships through the engine (CEL evaluator).

The combination rules follow SpiceDB's documented semantics: union ORs caveats, intersection
ANDs them, exclusion leaves ``base AND NOT subtracted`` (a caveated subtracted branch does
not remove the subject unless its caveat holds), and ``.all`` ANDs every branch. An
undecided answer is CONDITIONAL with the parameters that would decide it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rebac.datastore.memory import MemoryDatastore
from rebac.engine import Engine
from rebac.engine.requests import CheckRequest, CheckResult, Permissionship
from rebac.errors import (
    CaveatEvaluationError,
    CaveatLimitExceededError,
    LimitExceededError,
    SchemaViolationError,
    UnknownRelationError,
)
from rebac.testing import memory_datastore
from rebac.tuples import ObjectRef, Relationship, SubjectRef

YES = Permissionship.HAS_PERMISSION
NO = Permissionship.NO_PERMISSION
MAYBE = Permissionship.CONDITIONAL

SCHEMA = """
use expiration

caveat weekday(day string) { day != "sat" && day != "sun" }
caveat on_network(ip ipaddress, cidr string) { ip.in_cidr(cidr) }
caveat big_enough(size int, minimum int) { size >= minimum }
caveat hostile(items list<int>) { items.all(x, items.all(y, items.all(z, x + y + z > 0))) }

definition user {}

definition folder {
  relation viewer: user | user with weekday
  relation auditor: user with on_network
  permission view = viewer
}

definition doc {
  relation parent: folder | folder with big_enough
  relation viewer: user | user with weekday | user:* with weekday
  relation approver: user | user with on_network
  relation banned: user | user with weekday
  relation admin: user with expiration | user
  relation checked: user with hostile
  permission view_any = viewer + approver
  permission view_both = viewer & approver
  permission view_unbanned = viewer - banned
  permission via_parent = parent->view
  permission via_all_parents = parent.all(view)
  permission manage = admin
  permission inspect = checked
}
"""

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


async def _world(*rels: str) -> tuple[MemoryDatastore, Any]:
    ds, revision = await memory_datastore(SCHEMA, rels)
    return ds, ds.snapshot_reader(revision)


async def _check(
    engine: Engine, reader: Any, resource: str, permission: str, subject: str, **kw: Any
) -> CheckResult:
    now = kw.pop("now", NOW)
    request = CheckRequest(ObjectRef.parse(resource), permission, SubjectRef.parse(subject), **kw)
    return await engine.check(reader, request, now=now)


class TestConditionalAnswers:
    async def test_missing_parameter_named(self) -> None:
        """A caveat without its parameter answers CONDITIONAL naming exactly that parameter."""
        _, reader = await _world("doc:1#viewer@user:ann[weekday]")
        result = await _check(Engine(), reader, "doc:1", "view_any", "user:ann")
        assert result == CheckResult(MAYBE, ("day",))

    async def test_context_decides(self) -> None:
        """Request context decides the caveat either way."""
        _, reader = await _world("doc:1#viewer@user:ann[weekday]")
        engine = Engine()
        assert (await _check(engine, reader, "doc:1", "view_any", "user:ann", context={"day": "mon"})).permissionship is YES
        assert (await _check(engine, reader, "doc:1", "view_any", "user:ann", context={"day": "sun"})).permissionship is NO

    async def test_relationship_context_overrides_request(self) -> None:
        """A value stored on the relationship wins over the request's value for the same parameter."""
        _, reader = await _world('doc:1#parent@folder:f[big_enough:{"minimum":10}]', "folder:f#viewer@user:ann")
        engine = Engine()
        assert (await _check(engine, reader, "doc:1", "via_parent", "user:ann", context={"size": 12, "minimum": 100})).permissionship is YES
        assert (await _check(engine, reader, "doc:1", "via_parent", "user:ann", context={"size": 5})).permissionship is NO
        assert await _check(engine, reader, "doc:1", "via_parent", "user:ann") == CheckResult(MAYBE, ("size",))

    async def test_only_deciding_parameters_missing(self) -> None:
        """Parameters already supplied are not reported missing; only those still needed are."""
        _, reader = await _world("doc:1#approver@user:ann[on_network]")
        result = await _check(Engine(), reader, "doc:1", "view_any", "user:ann", context={"cidr": "10.0.0.0/8"})
        assert result == CheckResult(MAYBE, ("ip",))

    async def test_wrong_context_type_is_an_error(self) -> None:
        """A context value of the wrong type raises CaveatEvaluationError, never an answer."""
        _, reader = await _world("doc:1#viewer@user:ann[weekday]")
        with pytest.raises(CaveatEvaluationError, match="caveat `weekday`: context parameter `day`"):
            await _check(Engine(), reader, "doc:1", "view_any", "user:ann", context={"day": 5})

    async def test_caveated_wildcard(self) -> None:
        """A caveated wildcard grants every user only when its caveat holds."""
        _, reader = await _world("doc:1#viewer@user:*[weekday]")
        engine = Engine()
        assert (await _check(engine, reader, "doc:1", "view_any", "user:zed", context={"day": "tue"})).permissionship is YES
        assert (await _check(engine, reader, "doc:1", "view_any", "user:zed", context={"day": "sat"})).permissionship is NO


class TestCombination:
    async def test_union_determined_branch_wins(self) -> None:
        """Union: an uncaveated branch decides YES even when the other branch is undecided."""
        _, reader = await _world("doc:1#viewer@user:ann[weekday]", "doc:1#approver@user:ann")
        assert (await _check(Engine(), reader, "doc:1", "view_any", "user:ann")).permissionship is YES

    async def test_union_of_two_caveats_ors_them(self) -> None:
        """Union of two undecided caveats is CONDITIONAL on the parameters of both; one true decides."""
        _, reader = await _world("doc:1#viewer@user:ann[weekday]", "doc:1#approver@user:ann[on_network]")
        engine = Engine()
        assert await _check(engine, reader, "doc:1", "view_any", "user:ann") == CheckResult(MAYBE, ("cidr", "day", "ip"))
        assert (await _check(engine, reader, "doc:1", "view_any", "user:ann", context={"day": "mon"})).permissionship is YES
        result = await _check(engine, reader, "doc:1", "view_any", "user:ann", context={"day": "sun"})
        assert result == CheckResult(MAYBE, ("cidr", "ip"))

    async def test_intersection_ands_caveats(self) -> None:
        """Intersection: one false caveat decides NO; all true decide YES; else CONDITIONAL."""
        _, reader = await _world("doc:1#viewer@user:ann[weekday]", "doc:1#approver@user:ann[on_network]")
        engine = Engine()
        net = {"ip": "10.1.2.3", "cidr": "10.0.0.0/8"}
        assert (await _check(engine, reader, "doc:1", "view_both", "user:ann", context={"day": "sun"})).permissionship is NO
        assert (await _check(engine, reader, "doc:1", "view_both", "user:ann", context={"day": "mon", **net})).permissionship is YES
        assert await _check(engine, reader, "doc:1", "view_both", "user:ann", context=net) == CheckResult(MAYBE, ("day",))

    async def test_exclusion_with_caveated_subtracted_branch(self) -> None:
        """Exclusion with a caveated ban: the ban removes only when its caveat holds; undecided is CONDITIONAL."""
        _, reader = await _world("doc:1#viewer@user:ann", "doc:1#banned@user:ann[weekday]")
        engine = Engine()
        assert (await _check(engine, reader, "doc:1", "view_unbanned", "user:ann", context={"day": "mon"})).permissionship is NO
        assert (await _check(engine, reader, "doc:1", "view_unbanned", "user:ann", context={"day": "sun"})).permissionship is YES
        assert await _check(engine, reader, "doc:1", "view_unbanned", "user:ann") == CheckResult(MAYBE, ("day",))

    async def test_exclusion_determined_ban_beats_caveated_base(self) -> None:
        """A determined ban removes the subject whatever the base's caveat."""
        _, reader = await _world("doc:1#viewer@user:ann[weekday]", "doc:1#banned@user:ann")
        assert (await _check(Engine(), reader, "doc:1", "view_unbanned", "user:ann")).permissionship is NO

    async def test_arrow_caveat_on_tupleset_and_target(self) -> None:
        """An arrow ANDs the caveat on the parent tuple with the caveat found at the parent."""
        _, reader = await _world("doc:1#parent@folder:f[big_enough]", "folder:f#viewer@user:ann[weekday]")
        engine = Engine()
        assert await _check(engine, reader, "doc:1", "via_parent", "user:ann") == CheckResult(MAYBE, ("day", "minimum", "size"))
        ctx = {"size": 5, "minimum": 1}
        assert await _check(engine, reader, "doc:1", "via_parent", "user:ann", context=ctx) == CheckResult(MAYBE, ("day",))
        assert (await _check(engine, reader, "doc:1", "via_parent", "user:ann", context={**ctx, "day": "mon"})).permissionship is YES
        assert (await _check(engine, reader, "doc:1", "via_parent", "user:ann", context={"size": 0, "minimum": 1})).permissionship is NO

    async def test_arrow_all_needs_every_branch(self) -> None:
        """`.all`: every parent must grant; one caveated parent leaves the answer on its caveat."""
        _, reader = await _world(
            "doc:1#parent@folder:f", "doc:1#parent@folder:g", "folder:f#viewer@user:ann", "folder:g#viewer@user:ann[weekday]"
        )
        engine = Engine()
        assert await _check(engine, reader, "doc:1", "via_all_parents", "user:ann") == CheckResult(MAYBE, ("day",))
        assert (await _check(engine, reader, "doc:1", "via_all_parents", "user:ann", context={"day": "sat"})).permissionship is NO
        assert (await _check(engine, reader, "doc:1", "via_all_parents", "user:ann", context={"day": "fri"})).permissionship is YES

    async def test_arrow_all_with_missing_branch_is_no(self) -> None:
        """`.all` with one parent that does not grant at all is NO, whatever the other's caveat."""
        _, reader = await _world("doc:1#parent@folder:f", "doc:1#parent@folder:g", "folder:g#viewer@user:ann[weekday]")
        assert (await _check(Engine(), reader, "doc:1", "via_all_parents", "user:ann")).permissionship is NO


class TestLookupsConditional:
    async def test_lookup_resources_marks_conditional(self) -> None:
        """LookupResources returns caveated resources CONDITIONAL with their missing context."""
        _, reader = await _world("doc:1#viewer@user:ann[weekday]", "doc:2#viewer@user:ann", "doc:3#viewer@user:bob")
        engine = Engine()
        found = [f async for f in engine.lookup_resources(reader, "doc", "view_any", SubjectRef("user", "ann"), now=NOW)]
        assert [(f.resource_id, f.permissionship, f.missing_context) for f in found] == [
            ("1", MAYBE, ("day",)),
            ("2", YES, ()),
        ]
        decided = [
            f.resource_id
            async for f in engine.lookup_resources(
                reader, "doc", "view_any", SubjectRef("user", "ann"), context={"day": "sun"}, now=NOW
            )
        ]
        assert decided == ["2"]

    async def test_lookup_subjects_marks_conditional(self) -> None:
        """LookupSubjects returns caveated subjects CONDITIONAL with their missing context."""
        _, reader = await _world("doc:1#viewer@user:ann[weekday]", "doc:1#viewer@user:bob")
        engine = Engine()
        found = [f async for f in engine.lookup_subjects(reader, ObjectRef("doc", "1"), "view_any", "user", now=NOW)]
        assert [(f.subject.id, f.permissionship, f.missing_context) for f in found] == [
            ("ann", MAYBE, ("day",)),
            ("bob", YES, ()),
        ]


class TestBoundedEvaluation:
    async def test_hostile_caveat_cut_off_quickly(self) -> None:
        """A cubic comprehension over a large context list is refused with a clear error in well under a second."""
        _, reader = await _world("doc:1#checked@user:ann[hostile]")
        started = time.perf_counter()
        with pytest.raises(CaveatLimitExceededError, match=r"hostile.*over the limit"):
            await _check(Engine(), reader, "doc:1", "inspect", "user:ann", context={"items": list(range(3000))})
        assert time.perf_counter() - started < 1.0


class TestExpiration:
    async def test_expired_admin_denied_the_instant_after(self) -> None:
        """An expiring admin is allowed the instant before expiry and denied at and after it."""
        at = datetime(2030, 1, 1, tzinfo=UTC)
        _, reader = await _world("doc:1#admin@user:ann[expiration:2030-01-01T00:00:00Z]")
        engine = Engine()
        tick = timedelta(microseconds=1)
        assert (await _check(engine, reader, "doc:1", "manage", "user:ann", now=at - tick)).permissionship is YES
        assert (await _check(engine, reader, "doc:1", "manage", "user:ann", now=at)).permissionship is NO
        assert (await _check(engine, reader, "doc:1", "manage", "user:ann", now=at + tick)).permissionship is NO
        # The cached answer from before expiry is not reused after it (and vice versa).
        assert (await _check(engine, reader, "doc:1", "manage", "user:ann", now=at - tick)).permissionship is YES

    async def test_expired_not_in_lookups(self) -> None:
        """Lookups at a "now" after expiry do not return the expired grant."""
        _, reader = await _world("doc:1#admin@user:ann[expiration:2030-01-01T00:00:00Z]", "doc:2#admin@user:ann")
        engine = Engine()
        after = datetime(2030, 1, 2, tzinfo=UTC)
        found = [f.resource_id async for f in engine.lookup_resources(reader, "doc", "manage", SubjectRef("user", "ann"), now=after)]
        assert found == ["2"]
        subjects = [f.subject.id async for f in engine.lookup_subjects(reader, ObjectRef("doc", "1"), "manage", "user", now=after)]
        assert subjects == []

    async def test_gc_removes_expired_after_window(self) -> None:
        """collect_garbage drops a relationship once it expired longer than the GC window ago, not before."""
        ds, _ = await _world("doc:1#admin@user:ann[expiration:2030-01-01T00:00:00Z]", "doc:1#admin@user:bob")
        window = ds._gc_window
        assert await ds.collect_garbage(now=datetime(2030, 1, 1, tzinfo=UTC) + window - timedelta(seconds=1)) == 0
        assert await ds.collect_garbage(now=datetime(2030, 1, 1, tzinfo=UTC) + window + timedelta(seconds=1)) == 1
        reader = ds.snapshot_reader(await ds.head_revision())
        from rebac.datastore.filters import RelationshipFilter  # noqa: PLC0415

        left = [str(r) async for r in reader.query_relationships(RelationshipFilter(resource_type="doc"))]
        assert left == ["doc:1#admin@user:bob"]


class TestContextualRelationships:
    async def test_counts_for_request_only(self) -> None:
        """A contextual grant answers its own request and does not leak into the next one or the cache."""
        _, reader = await _world()
        engine = Engine()
        grant = (Relationship.parse("doc:1#viewer@user:ann"),)
        assert (await _check(engine, reader, "doc:1", "view_any", "user:ann", contextual_relationships=grant)).permissionship is YES
        assert (await _check(engine, reader, "doc:1", "view_any", "user:ann")).permissionship is NO
        # Repeat in the other order: a cached "no" does not hide the contextual grant.
        assert (await _check(engine, reader, "doc:1", "view_any", "user:ann", contextual_relationships=grant)).permissionship is YES

    async def test_cache_holds_no_contextual_answer(self) -> None:
        """Answers computed with contextual relationships are never stored in the shared cache."""
        _, reader = await _world()
        engine = Engine()
        grant = (Relationship.parse("doc:1#viewer@user:ann"),)
        for _ in range(3):
            await _check(engine, reader, "doc:1", "view_any", "user:ann", contextual_relationships=grant)
        assert len(engine._cache) == 0

    async def test_caveated_contextual_relationship(self) -> None:
        """A contextual relationship may carry a caveat, evaluated like a stored one."""
        _, reader = await _world()
        grant = (Relationship.parse("doc:1#viewer@user:ann[weekday]"),)
        result = await _check(Engine(), reader, "doc:1", "view_any", "user:ann", contextual_relationships=grant)
        assert result == CheckResult(MAYBE, ("day",))

    async def test_validated_against_schema(self) -> None:
        """A contextual relationship the schema does not allow is rejected, naming it."""
        _, reader = await _world()
        engine = Engine()
        with pytest.raises(SchemaViolationError, match="doc:1#admin@folder:f"):
            await _check(engine, reader, "doc:1", "manage", "user:ann", contextual_relationships=(Relationship.parse("doc:1#admin@folder:f"),))
        with pytest.raises(UnknownRelationError):
            await _check(engine, reader, "doc:1", "manage", "user:ann", contextual_relationships=(Relationship.parse("doc:1#nope@user:ann"),))
        with pytest.raises(SchemaViolationError, match=r"caveat|weekday|allowed"):
            await _check(engine, reader, "doc:1", "manage", "user:ann", contextual_relationships=(Relationship.parse("doc:1#admin@user:ann[weekday]"),))

    async def test_limit(self) -> None:
        """More contextual relationships than the engine's limit raise LimitExceededError; the limit itself is fine."""
        _, reader = await _world()
        engine = Engine(max_contextual_relationships=3)
        rels = tuple(Relationship.parse(f"doc:1#viewer@user:u{i}") for i in range(4))
        with pytest.raises(LimitExceededError, match="4 contextual relationships exceed the limit of 3"):
            await _check(engine, reader, "doc:1", "view_any", "user:u0", contextual_relationships=rels)
        assert (await _check(engine, reader, "doc:1", "view_any", "user:u0", contextual_relationships=rels[:3])).permissionship is YES

    async def test_default_limit_is_100(self) -> None:
        """The default engine accepts 100 contextual relationships and refuses 101."""
        _, reader = await _world()
        engine = Engine()
        rels = tuple(Relationship.parse(f"doc:1#viewer@user:u{i}") for i in range(101))
        with pytest.raises(LimitExceededError):
            await _check(engine, reader, "doc:1", "view_any", "user:u0", contextual_relationships=rels)
        assert (await _check(engine, reader, "doc:1", "view_any", "user:u0", contextual_relationships=rels[:100])).permissionship is YES

    async def test_check_bulk_keyword(self) -> None:
        """check_bulk's contextual_relationships apply to every item of that call and no later call."""
        _, reader = await _world()
        engine = Engine()
        requests = [CheckRequest(ObjectRef("doc", i), "view_any", SubjectRef("user", "ann")) for i in ("1", "2")]
        grant = (Relationship.parse("doc:1#viewer@user:ann"),)
        got = await engine.check_bulk(reader, requests, now=NOW, contextual_relationships=grant)
        assert [r.permissionship for r in got if isinstance(r, CheckResult)] == [YES, NO]
        again = await engine.check_bulk(reader, requests, now=NOW)
        assert [r.permissionship for r in again if isinstance(r, CheckResult)] == [NO, NO]

    async def test_check_bulk_invalid_contextual_fails_every_item(self) -> None:
        """An invalid shared contextual relationship makes every bulk item an error, none an answer."""
        _, reader = await _world()
        requests = [CheckRequest(ObjectRef("doc", "1"), "view_any", SubjectRef("user", "ann"))]
        got = await Engine().check_bulk(reader, requests, contextual_relationships=(Relationship.parse("doc:1#admin@folder:f"),))
        assert isinstance(got[0], SchemaViolationError)

    async def test_lookups_keyword(self) -> None:
        """Lookups see contextual relationships for that call only."""
        _, reader = await _world("doc:2#viewer@user:ann")
        engine = Engine()
        grant = (Relationship.parse("doc:1#viewer@user:ann"), Relationship.parse("doc:1#viewer@user:bob"))
        ann = SubjectRef("user", "ann")
        with_ctx = [f.resource_id async for f in engine.lookup_resources(reader, "doc", "view_any", ann, contextual_relationships=grant)]
        assert with_ctx == ["1", "2"]
        assert [f.resource_id async for f in engine.lookup_resources(reader, "doc", "view_any", ann)] == ["2"]
        subjects = [f.subject.id async for f in engine.lookup_subjects(reader, ObjectRef("doc", "1"), "view_any", "user", contextual_relationships=grant)]
        assert subjects == ["ann", "bob"]
        assert [f async for f in engine.lookup_subjects(reader, ObjectRef("doc", "1"), "view_any", "user")] == []
