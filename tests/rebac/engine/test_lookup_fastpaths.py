"""The lookups' fast paths (definite members without Check) agree exactly with Check.

Every test builds a small world, runs LookupResources for each subject and LookupSubjects
for each resource, and compares them with a Check of every (resource, subject) pair at the
same revision, "now", context and contextual relationships. Where the walk may answer
without Check (union-only paths), a test also asserts that it did (no Check dispatches).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rebac.datastore.postgres import PostgresDatastore
from rebac.datastore.protocol import Reader
from rebac.engine import Engine
from rebac.engine.requests import CheckRequest, Permissionship
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
from rebac.writes import write_relationships, write_schema

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)

DRIVE = """
use expiration
definition user {}
caveat on_weekday(day string) { day != "sat" && day != "sun" }
definition group {
  relation member: user | user:* | group#member | user with on_weekday | user with expiration
}
definition folder {
  relation parent: folder
  relation viewer: user | group#member
  permission view = viewer + parent->view
}
definition doc {
  relation parent: folder
  relation viewer: user | user:* | group#member
  relation banned: user | group#member
  permission read = viewer + parent->view
  permission view = read - banned
}
"""

USERS = ("ann", "bob", "cat", "dan")

Outcome = tuple[Permissionship, tuple[str, ...]]


async def _checks(
    engine: Engine,
    reader: Reader,
    *,
    resource_type: str,
    ids: Sequence[str],
    permission: str,
    subject: SubjectRef,
    **kw: Any,
) -> dict[str, Outcome]:
    context = kw.get("context")
    contextual = tuple(kw.get("contextual_relationships", ()))
    out: dict[str, Outcome] = {}
    for rid in ids:
        request = CheckRequest(ObjectRef(resource_type, rid), permission, subject, context, contextual)
        result = await engine.check(reader, request, now=kw.get("now", NOW))
        if result.permissionship is not Permissionship.NO_PERMISSION:
            out[rid] = (result.permissionship, result.missing_context)
    return out


async def _assert_resources_agree(
    reader: Reader, resource_type: str, ids: Sequence[str], permission: str, **kw: Any
) -> dict[str, dict[str, Outcome]]:
    """LookupResources == Check for every user; returns the lookups' answers per user."""
    answers: dict[str, dict[str, Outcome]] = {}
    for user in USERS:
        subject = SubjectRef("user", user)
        found = [
            f
            async for f in Engine().lookup_resources(
                reader, resource_type, permission, subject, now=kw.get("now", NOW), **_lookup_kw(kw)
            )
        ]
        got = {f.resource_id: (f.permissionship, f.missing_context) for f in found}
        assert [f.resource_id for f in found] == sorted(got)
        want = await _checks(
            Engine(),
            reader,
            resource_type=resource_type,
            ids=ids,
            permission=permission,
            subject=subject,
            **kw,
        )
        assert got == want, f"user:{user}"
        answers[user] = got
    return answers


async def _assert_subjects_agree(
    reader: Reader, resource_type: str, ids: Sequence[str], permission: str, **kw: Any
) -> None:
    """LookupSubjects == Check for every resource and user (a wildcard covers the unlisted)."""
    for rid in ids:
        found = [
            f
            async for f in Engine().lookup_subjects(
                reader,
                ObjectRef(resource_type, rid),
                permission,
                "user",
                now=kw.get("now", NOW),
                **_lookup_kw(kw),
            )
        ]
        listed = {f.subject.id: (f.permissionship, f.missing_context) for f in found if f.subject.id != "*"}
        wildcard = next((f for f in found if f.subject.id == "*"), None)
        for user in USERS:
            subject = SubjectRef("user", user)
            want = await _checks(
                Engine(),
                reader,
                resource_type=resource_type,
                ids=[rid],
                permission=permission,
                subject=subject,
                **kw,
            )
            if user in listed:
                assert want == {rid: listed[user]}, f"{resource_type}:{rid} user:{user}"
            elif wildcard is not None and SubjectRef("user", user) not in wildcard.excluded:
                assert want == {rid: (wildcard.permissionship, wildcard.missing_context)}, f"user:{user}"
            else:
                assert want == {}, f"{resource_type}:{rid} user:{user} has access but is not listed"


def _lookup_kw(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if k in {"context", "contextual_relationships"}}


async def _lookup_dispatches(
    reader: Reader, resource_type: str, permission: str, user: str
) -> tuple[list[str], int]:
    engine = Engine()
    found = [
        f.resource_id
        async for f in engine.lookup_resources(
            reader, resource_type, permission, SubjectRef("user", user), now=NOW
        )
    ]
    return found, engine.stats.dispatches


class TestLookupResourcesFastPath:
    async def test_union_only_lookup_needs_no_check(self) -> None:
        """Through nested groups and a folder chain, `read` is answered by the walk alone (no Check)."""
        ds, rev = await memory_datastore(
            DRIVE,
            [
                "group:inner#member@user:ann",
                "group:outer#member@group:inner#member",
                "folder:root#viewer@group:outer#member",
                "folder:mid#parent@folder:root",
                "doc:1#parent@folder:mid",
                "doc:2#viewer@user:ann",
                "doc:3#viewer@user:bob",
            ],
        )
        found, dispatches = await _lookup_dispatches(ds.snapshot_reader(rev), "doc", "read", "ann")
        assert (found, dispatches) == (["1", "2"], 0)
        assert (await _lookup_dispatches(ds.snapshot_reader(rev), "doc", "read", "cat")) == ([], 0)

    async def test_nested_groups_come_from_one_closure_query(self) -> None:
        """Eight levels of nested groups cost one closure read, not a query per level."""
        rows = ["group:g0#member@user:ann", "doc:1#viewer@group:g8#member", "doc:2#viewer@group:g3#member"]
        rows += [f"group:g{i + 1}#member@group:g{i}#member" for i in range(8)]
        ds, rev = await memory_datastore(DRIVE, rows)
        engine = Engine()
        found = [
            f.resource_id
            async for f in engine.lookup_resources(
                ds.snapshot_reader(rev), "doc", "read", SubjectRef("user", "ann")
            )
        ]
        assert found == ["1", "2"]
        assert (engine.stats.closure_loads, engine.stats.dispatches) == (1, 0)
        assert engine.stats.datastore_queries <= 5

    async def test_group_and_folder_cycles_terminate_and_agree(self) -> None:
        """Cycles among groups and among folders end the walk and leave answers equal to Check."""
        ds, rev = await memory_datastore(
            DRIVE,
            [
                "group:a#member@group:b#member",
                "group:b#member@group:a#member",
                "group:a#member@user:ann",
                "folder:f1#parent@folder:f2",
                "folder:f2#parent@folder:f1",
                "folder:f2#viewer@group:b#member",
                "doc:1#parent@folder:f1",
                "doc:2#parent@folder:f2",
                "doc:3#viewer@user:bob",
            ],
        )
        reader = ds.snapshot_reader(rev)
        answers = await _assert_resources_agree(reader, "doc", ["1", "2", "3"], "read")
        assert sorted(answers["ann"]) == ["1", "2"]
        await _assert_subjects_agree(reader, "doc", ["1", "2", "3"], "read")
        await _assert_resources_agree(reader, "folder", ["f1", "f2"], "view")

    async def test_exclusion_above_a_recursive_relation(self) -> None:
        """`view = read - banned` over a folder chain: banned users (directly or by group) are left out."""
        ds, rev = await memory_datastore(
            DRIVE,
            [
                "folder:root#viewer@user:ann",
                "folder:root#viewer@user:bob",
                "folder:root#viewer@group:g#member",
                "group:g#member@user:cat",
                "folder:sub#parent@folder:root",
                "doc:1#parent@folder:sub",
                "doc:2#parent@folder:root",
                "doc:1#banned@user:bob",
                "doc:2#banned@group:g#member",
            ],
        )
        reader = ds.snapshot_reader(rev)
        answers = await _assert_resources_agree(reader, "doc", ["1", "2"], "view")
        assert sorted(answers["ann"]) == ["1", "2"]
        assert sorted(answers["bob"]) == ["2"]
        assert sorted(answers["cat"]) == ["1"]
        await _assert_subjects_agree(reader, "doc", ["1", "2"], "view")

    async def test_exclusion_inside_the_path_is_checked_there(self) -> None:
        """An exclusion on a non-recursive inner node is confirmed at that node; its members carry on."""
        schema = """
        definition user {}
        definition team {
          relation member: user
          relation suspended: user
          permission active = member - suspended
        }
        definition doc {
          relation owner: team
          relation viewer: user
          permission view = viewer + owner->active
        }
        """
        ds, rev = await memory_datastore(
            schema,
            [
                "team:t#member@user:ann",
                "team:t#member@user:bob",
                "team:t#suspended@user:bob",
                *(f"doc:{i}#owner@team:t" for i in range(4)),
                "doc:9#viewer@user:bob",
            ],
        )
        reader = ds.snapshot_reader(rev)
        ids = [*(str(i) for i in range(4)), "9"]
        answers = await _assert_resources_agree(reader, "doc", ids, "view")
        assert sorted(answers["ann"]) == ["0", "1", "2", "3"]
        assert sorted(answers["bob"]) == ["9"]
        await _assert_subjects_agree(reader, "doc", ids, "view")

    async def test_intersection_and_all_arrow_are_confirmed(self) -> None:
        """`&` and `.all(...)` keep only subjects that satisfy every side, exactly as Check does."""
        schema = """
        definition user {}
        definition org { relation member: user }
        definition doc {
          relation org: org
          relation viewer: user
          permission both = viewer & org->member
          permission every_org = org.all(member)
        }
        """
        ds, rev = await memory_datastore(
            schema,
            [
                "org:o1#member@user:ann",
                "org:o2#member@user:ann",
                "org:o1#member@user:bob",
                "doc:1#org@org:o1",
                "doc:1#org@org:o2",
                "doc:1#viewer@user:bob",
                "doc:2#org@org:o1",
                "doc:2#viewer@user:ann",
            ],
        )
        reader = ds.snapshot_reader(rev)
        both = await _assert_resources_agree(reader, "doc", ["1", "2"], "both")
        every = await _assert_resources_agree(reader, "doc", ["1", "2"], "every_org")
        assert (sorted(both["ann"]), sorted(both["bob"])) == (["2"], ["1"])
        assert (sorted(every["ann"]), sorted(every["bob"])) == (["1", "2"], ["2"])
        await _assert_subjects_agree(reader, "doc", ["1", "2"], "both")
        await _assert_subjects_agree(reader, "doc", ["1", "2"], "every_org")

    async def test_caveated_membership_is_conditional(self) -> None:
        """A caveated group membership makes the documents CONDITIONAL, or decided by the context."""
        caveated = Relationship(
            ObjectRef("group", "g"), "member", SubjectRef("user", "ann"), RelationshipCaveat.of("on_weekday")
        )
        ds, rev = await memory_datastore(
            DRIVE,
            [caveated, "folder:f#viewer@group:g#member", "doc:1#parent@folder:f", "doc:2#viewer@user:ann"],
        )
        reader = ds.snapshot_reader(rev)
        answers = await _assert_resources_agree(reader, "doc", ["1", "2"], "read")
        assert answers["ann"] == {
            "1": (Permissionship.CONDITIONAL, ("day",)),
            "2": (Permissionship.HAS_PERMISSION, ()),
        }
        for day, expected in (("mon", ["1", "2"]), ("sun", ["2"])):
            decided = await _assert_resources_agree(reader, "doc", ["1", "2"], "read", context={"day": day})
            assert sorted(decided["ann"]) == expected
        await _assert_subjects_agree(reader, "doc", ["1", "2"], "read")
        await _assert_subjects_agree(reader, "doc", ["1", "2"], "read", context={"day": "sat"})

    async def test_expired_membership_grants_nothing(self) -> None:
        """A membership expired at "now" grants nothing; one expiring later still grants."""
        rows = [
            Relationship(ObjectRef("group", "old"), "member", SubjectRef("user", "ann"), expiration=NOW),
            Relationship(
                ObjectRef("group", "new"),
                "member",
                SubjectRef("user", "bob"),
                expiration=NOW + timedelta(days=1),
            ),
            "doc:1#viewer@group:old#member",
            "doc:2#viewer@group:new#member",
        ]
        ds, rev = await memory_datastore(DRIVE, rows)
        reader = ds.snapshot_reader(rev)
        answers = await _assert_resources_agree(reader, "doc", ["1", "2"], "read")
        assert (answers["ann"], sorted(answers["bob"])) == ({}, ["2"])
        await _assert_subjects_agree(reader, "doc", ["1", "2"], "read")
        earlier = await _assert_resources_agree(
            reader, "doc", ["1", "2"], "read", now=NOW - timedelta(hours=1)
        )
        assert sorted(earlier["ann"]) == ["1"]

    async def test_deleted_relationship_counts_only_before_its_deletion(self) -> None:
        """A reader at the old revision still finds the document; one at the delete's revision does not."""
        ds, old = await memory_datastore(DRIVE, ["group:g#member@user:ann", "doc:1#viewer@group:g#member"])
        new = await write_relationships(
            ds, [RelationshipUpdate(UpdateOperation.DELETE, rel("group:g#member@user:ann"))]
        )
        assert (await _lookup_dispatches(ds.snapshot_reader(old), "doc", "read", "ann"))[0] == ["1"]
        assert (await _lookup_dispatches(ds.snapshot_reader(new), "doc", "read", "ann"))[0] == []
        await _assert_subjects_agree(ds.snapshot_reader(new), "doc", ["1"], "read")

    async def test_contextual_relationships_count_for_the_request(self) -> None:
        """A contextual membership grants through the walk, for this request only."""
        ds, rev = await memory_datastore(DRIVE, ["folder:f#viewer@group:g#member", "doc:1#parent@folder:f"])
        reader = ds.snapshot_reader(rev)
        extra = (rel("group:g#member@user:cat"),)
        answers = await _assert_resources_agree(reader, "doc", ["1"], "read", contextual_relationships=extra)
        assert sorted(answers["cat"]) == ["1"]
        await _assert_subjects_agree(reader, "doc", ["1"], "read", contextual_relationships=extra)
        assert (await _lookup_dispatches(reader, "doc", "read", "cat"))[0] == []

    async def test_cursor_resumes_across_pages_with_checked_and_walked_results(self) -> None:
        """Pages of 2 list every visible document once, in order, mixing walked and checked ones."""
        rows = [f"doc:d{i}#viewer@user:ann" for i in range(5)]
        rows += [f"doc:e{i}#viewer@group:g#member" for i in range(3)]
        rows += ["group:g#member@user:ann", "doc:d3#banned@user:ann", "doc:x#viewer@user:bob"]
        ds, rev = await memory_datastore(DRIVE, rows)
        reader, engine = ds.snapshot_reader(rev), Engine()
        for permission, expected in (
            ("read", ["d0", "d1", "d2", "d3", "d4", "e0", "e1", "e2"]),
            ("view", ["d0", "d1", "d2", "d4", "e0", "e1", "e2"]),
        ):
            seen: list[str] = []
            cursor = None
            while True:
                page = [
                    r.resource_id
                    async for r in engine.lookup_resources(
                        reader, "doc", permission, SubjectRef("user", "ann"), limit=2, cursor=cursor
                    )
                ]
                assert len(page) <= 2
                if not page:
                    break
                seen += page
                cursor = [
                    r.cursor
                    async for r in engine.lookup_resources(
                        reader, "doc", permission, SubjectRef("user", "ann"), limit=2, cursor=cursor
                    )
                ][-1]
            assert seen == expected

    async def test_depth_limit_is_never_a_silent_answer(self) -> None:
        """A member deeper than max_depth makes the lookup raise as Check does, never list it quietly."""
        rows = ["group:g0#member@user:ann", "doc:1#viewer@group:g9#member"]
        rows += [f"group:g{i + 1}#member@group:g{i}#member" for i in range(9)]
        ds, rev = await memory_datastore(DRIVE, rows)
        reader, engine = ds.snapshot_reader(rev), Engine(max_depth=5)
        request = CheckRequest(ObjectRef("doc", "1"), "read", SubjectRef("user", "ann"))
        with pytest.raises(MaxDepthExceededError):
            await engine.check(reader, request)
        with pytest.raises(MaxDepthExceededError):
            _ = [r async for r in engine.lookup_resources(reader, "doc", "read", SubjectRef("user", "ann"))]
        deep_enough = Engine(max_depth=50)
        found = [
            r.resource_id
            async for r in deep_enough.lookup_resources(reader, "doc", "read", SubjectRef("user", "ann"))
        ]
        assert found == ["1"]


class TestLookupSubjectsFastPath:
    async def test_union_only_subjects_need_no_check(self) -> None:
        """Direct, group and folder-inherited viewers are listed by the walk alone (no Check)."""
        ds, rev = await memory_datastore(
            DRIVE,
            [
                "group:g#member@user:ann",
                "folder:f#viewer@group:g#member",
                "doc:1#parent@folder:f",
                "doc:1#viewer@user:bob",
            ],
        )
        engine = Engine()
        found = [
            f.subject.id
            async for f in engine.lookup_subjects(
                ds.snapshot_reader(rev), ObjectRef("doc", "1"), "read", "user"
            )
        ]
        assert (found, engine.stats.dispatches) == (["ann", "bob"], 0)

    async def test_wildcard_with_banned_users(self) -> None:
        """A public document lists the wildcard with banned users (direct and by group) excluded."""
        ds, rev = await memory_datastore(
            DRIVE,
            [
                "doc:1#viewer@user:*",
                "doc:1#viewer@user:ann",
                "doc:1#banned@user:bob",
                "doc:1#banned@group:g#member",
                "group:g#member@user:cat",
                "doc:2#viewer@user:*",
            ],
        )
        reader = ds.snapshot_reader(rev)
        found = [f async for f in Engine().lookup_subjects(reader, ObjectRef("doc", "1"), "view", "user")]
        assert [str(f.subject) for f in found] == ["user:*", "user:ann"]
        assert set(found[0].excluded) == {SubjectRef("user", "bob"), SubjectRef("user", "cat")}
        await _assert_subjects_agree(reader, "doc", ["1", "2"], "view")
        await _assert_resources_agree(reader, "doc", ["1", "2"], "view")
        engine = Engine()
        public = [f async for f in engine.lookup_subjects(reader, ObjectRef("doc", "2"), "read", "user")]
        assert ([str(f.subject) for f in public], public[0].excluded, engine.stats.dispatches) == (
            ["user:*"],
            (),
            0,
        )

    async def test_wildcard_membership_through_a_group(self) -> None:
        """`group:g#member@user:*` makes every user a reader of the group's documents."""
        ds, rev = await memory_datastore(DRIVE, ["group:g#member@user:*", "doc:1#viewer@group:g#member"])
        reader = ds.snapshot_reader(rev)
        await _assert_subjects_agree(reader, "doc", ["1"], "read")
        answers = await _assert_resources_agree(reader, "doc", ["1"], "read")
        assert all(sorted(a) == ["1"] for a in answers.values())

    async def test_subject_set_lookup_lists_groups(self) -> None:
        """Looking up `group#member` subjects lists nested groups, each agreeing with Check."""
        ds, rev = await memory_datastore(
            DRIVE,
            ["group:a#member@group:b#member", "doc:1#viewer@group:a#member", "doc:1#banned@group:b#member"],
        )
        reader = ds.snapshot_reader(rev)
        engine = Engine()
        for permission in ("read", "view"):
            found = [
                f
                async for f in engine.lookup_subjects(
                    reader, ObjectRef("doc", "1"), permission, "group", subject_relation="member"
                )
            ]
            for group in ("a", "b", "c"):
                subject = SubjectRef("group", group, "member")
                want = await _checks(
                    Engine(), reader, resource_type="doc", ids=["1"], permission=permission, subject=subject
                )
                listed = {f.subject.id for f in found}
                assert (group in listed) == bool(want), f"{permission} group:{group}"


class TestLookupsOnPostgres:
    async def test_mixed_world_agrees_with_check(self, postgres_datastore: PostgresDatastore) -> None:
        """On Postgres, cycles, exclusions, caveats, expirations and wildcards all agree with Check."""
        ds = postgres_datastore
        await write_schema(ds, DRIVE)
        rows: list[str | Relationship] = [
            "group:a#member@group:b#member",
            "group:b#member@group:a#member",
            "group:a#member@user:ann",
            "folder:f1#parent@folder:f2",
            "folder:f2#parent@folder:f1",
            "folder:f2#viewer@group:b#member",
            "doc:1#parent@folder:f1",
            "doc:1#banned@user:bob",
            "doc:2#viewer@user:*",
            "doc:2#banned@group:a#member",
            "doc:3#viewer@group:c#member",
            Relationship(
                ObjectRef("group", "c"),
                "member",
                SubjectRef("user", "cat"),
                RelationshipCaveat.of("on_weekday"),
            ),
            Relationship(ObjectRef("group", "c"), "member", SubjectRef("user", "dan"), expiration=NOW),
            "folder:f1#viewer@user:bob",
        ]
        rev = await write_relationships(
            ds,
            [
                RelationshipUpdate(UpdateOperation.TOUCH, r if isinstance(r, Relationship) else rel(r))
                for r in rows
            ],
        )
        reader = ds.snapshot_reader(rev)
        for permission in ("read", "view"):
            await _assert_resources_agree(reader, "doc", ["1", "2", "3"], permission)
            await _assert_subjects_agree(reader, "doc", ["1", "2", "3"], permission)
        answers = await _assert_resources_agree(
            reader, "doc", ["1", "2", "3"], "view", context={"day": "mon"}
        )
        assert (sorted(answers["ann"]), sorted(answers["bob"]), sorted(answers["cat"])) == (
            ["1"],
            ["2"],
            ["2", "3"],
        )

    async def test_arrows_sharing_a_tupleset_agree_with_memory_and_check(
        self, postgres_datastore: PostgresDatastore
    ) -> None:
        """Folders and docs under `parent` are read by one query; caveated, expired and foreign rows count right.

        The Postgres walk reads `reverse_edges` (one query for both resource types, restricted
        to them: a `note` under the same folders is not on the way); the memory walk reads
        relationships. Both agree with Check, and a caveated `parent` row is never definite.
        """
        schema = """
        use expiration
        definition user {}
        caveat on_weekday(day string) { day != "sat" && day != "sun" }
        definition folder {
          relation parent: folder | folder with on_weekday | folder with expiration
          relation viewer: user
          permission view = viewer + parent->view
        }
        definition doc {
          relation parent: folder | folder with on_weekday | folder with expiration
          relation viewer: user
          permission read = viewer + parent->view
        }
        definition note { relation parent: folder }
        """
        rows = [
            "folder:root#viewer@user:ann",
            "folder:mid#parent@folder:root",
            "folder:weekday#parent@folder:root[on_weekday]",
            "folder:gone#parent@folder:root[expiration:2025-06-02T12:00:00Z]",
            "folder:later#parent@folder:root[expiration:2025-06-02T12:00:01Z]",
            "doc:1#parent@folder:mid",
            "doc:2#parent@folder:weekday",
            "doc:3#parent@folder:gone",
            "doc:4#parent@folder:later",
            "doc:5#parent@folder:root[on_weekday]",
            "doc:5#parent@folder:mid",
            "doc:6#parent@folder:root[on_weekday]",
            "doc:7#viewer@user:bob",
            "note:1#parent@folder:root",
            "note:2#parent@folder:mid",
        ]
        ds = postgres_datastore
        await write_schema(ds, schema)
        rev = await write_relationships(ds, [RelationshipUpdate(UpdateOperation.TOUCH, rel(r)) for r in rows])
        memory, memory_rev = await memory_datastore(schema, rows)
        ids = [str(i) for i in range(1, 8)]
        for context in (None, {"day": "mon"}, {"day": "sun"}):
            kw: dict[str, Any] = {} if context is None else {"context": context}
            on_postgres = await _assert_resources_agree(ds.snapshot_reader(rev), "doc", ids, "read", **kw)
            in_memory = await _assert_resources_agree(
                memory.snapshot_reader(memory_rev), "doc", ids, "read", **kw
            )
            assert on_postgres == in_memory
        maybe = (Permissionship.CONDITIONAL, ("day",))
        assert on_postgres["ann"] == {
            "1": (Permissionship.HAS_PERMISSION, ()),
            "4": (Permissionship.HAS_PERMISSION, ()),
            "5": (Permissionship.HAS_PERMISSION, ()),
        }
        answers = await _assert_resources_agree(ds.snapshot_reader(rev), "doc", ids, "read")
        assert {rid: answers["ann"][rid] for rid in ("2", "6")} == {"2": maybe, "6": maybe}
