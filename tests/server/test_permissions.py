"""PermissionsService over a real channel: Check, CheckBulk, Expand and both lookups."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc import aio

from rebac.tuples import UpdateOperation
from rebac_server._gen.rebac.v1 import core_pb2, permissions_pb2, schema_pb2
from tests.server.server_helpers import FULL, HAS, NO, SCHEMA, check, obj, subj, touch, updates

WORLD = (
    "document:1#viewer@user:ann",
    "document:1#editor@group:eng#member",
    "group:eng#member@user:bob",
    "document:2#viewer@user:*",
    "document:2#banned@user:eve",
    "document:3#editor@user:bob",
)


@pytest.fixture
async def world(server):
    await server.relationships.WriteRelationships(touch(*WORLD))
    return server


class TestCheck:
    async def test_direct_and_nested_grants_are_allowed(self, world):
        """A direct viewer and a group member editor both may view; the token is returned."""
        for subject in ("user:ann", "user:bob"):
            response = await world.permissions.Check(check("document:1", "view", subject))
            assert response.permissionship == HAS
            assert response.checked_at.token

    async def test_other_users_document_is_denied(self, world):
        """ann cannot view bob's document 3: NO_PERMISSION, never an error."""
        response = await world.permissions.Check(check("document:3", "view", "user:ann"))
        assert response.permissionship == NO

    async def test_wildcard_minus_banned(self, world):
        """`user:*` grants everyone except the banned subject."""
        assert (await world.permissions.Check(check("document:2", "view", "user:zed"))).permissionship == HAS
        assert (await world.permissions.Check(check("document:2", "view", "user:eve"))).permissionship == NO

    async def test_unknown_permission_is_failed_precondition(self, world):
        """A permission the definition lacks is FAILED_PRECONDITION naming it."""
        with pytest.raises(aio.AioRpcError) as info:
            await world.permissions.Check(check("document:1", "delete", "user:ann"))
        assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "delete" in info.value.details()

    async def test_malformed_resource_id_names_the_field(self, world):
        """A bad object id is INVALID_ARGUMENT whose message names `resource.object_id`."""
        request = check("document:1", "view", "user:ann")
        request.resource.object_id = "bad id!"
        with pytest.raises(aio.AioRpcError) as info:
            await world.permissions.Check(request)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "resource.object_id" in info.value.details()

    async def test_missing_subject_names_the_field(self, world):
        """A request without a subject is INVALID_ARGUMENT naming `subject`."""
        request = permissions_pb2.CheckRequest(resource=obj("document:1"), permission="view")
        with pytest.raises(aio.AioRpcError) as info:
            await world.permissions.Check(request)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "subject" in info.value.details()

    async def test_token_from_a_revoke_never_sees_the_old_access(self, world):
        """New-enemy: a check at_least_as_fresh as the revoke's token is denied."""

        written = await world.relationships.WriteRelationships(
            updates(UpdateOperation.DELETE, "document:1#viewer@user:ann")
        )
        fresh = core_pb2.Consistency(at_least_as_fresh=written.written_at)
        assert (
            await world.permissions.Check(check("document:1", "view", "user:ann", fresh))
        ).permissionship == NO

    async def test_exact_snapshot_sees_the_past(self, world):
        """at_exact_snapshot with an old token answers as of that revision."""
        before = await world.permissions.Check(check("document:1", "view", "user:ann"))

        await world.relationships.WriteRelationships(
            updates(UpdateOperation.DELETE, "document:1#viewer@user:ann")
        )
        past = core_pb2.Consistency(at_exact_snapshot=before.checked_at)
        response = await world.permissions.Check(check("document:1", "view", "user:ann", past))
        assert response.permissionship == HAS
        assert response.checked_at.token == before.checked_at.token

    async def test_garbage_token_is_invalid_argument(self, world):
        """A malformed consistency token is INVALID_ARGUMENT, not a fallback read."""
        bad = core_pb2.Consistency(at_least_as_fresh=core_pb2.RevisionToken(token="not-a-token"))
        with pytest.raises(aio.AioRpcError) as info:
            await world.permissions.Check(check("document:1", "view", "user:ann", bad))
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT


class TestCheckBulk:
    async def test_items_answer_in_order_with_per_item_errors(self, world):
        """Each item answers in request order; a bad item gets its own error status."""
        items = [
            permissions_pb2.CheckBulkRequestItem(
                resource=obj("document:1"), permission="view", subject=subj("user:ann")
            ),
            permissions_pb2.CheckBulkRequestItem(
                resource=obj("document:3"), permission="view", subject=subj("user:ann")
            ),
            permissions_pb2.CheckBulkRequestItem(
                resource=obj("document:1"), permission="nope", subject=subj("user:ann")
            ),
            permissions_pb2.CheckBulkRequestItem(resource=obj("document:1"), permission="view"),
        ]
        response = await world.permissions.CheckBulk(
            permissions_pb2.CheckBulkRequest(consistency=FULL, items=items)
        )
        assert response.checked_at.token
        assert [p.WhichOneof("response") for p in response.pairs] == ["item", "item", "error", "error"]
        assert response.pairs[0].item.permissionship == HAS
        assert response.pairs[1].item.permissionship == NO
        assert response.pairs[2].error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
        assert response.pairs[3].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert "items[3].subject" in response.pairs[3].error.message


def _leaf_subjects(node: permissions_pb2.PermissionRelationshipTree) -> set[str]:
    if node.WhichOneof("tree_type") == "leaf":
        return {
            f"{s.object.object_type}:{s.object.object_id}"
            + (f"#{s.optional_relation}" if s.optional_relation else "")
            for s in node.leaf.subjects
        }
    return set().union(*(_leaf_subjects(child) for child in node.intermediate.children))


class TestExpand:
    async def test_one_level_names_the_usersets(self, world):
        """A one-level expand of document:1#view names the viewer and editor usersets."""
        response = await world.permissions.Expand(
            permissions_pb2.ExpandRequest(consistency=FULL, resource=obj("document:1"), permission="view")
        )
        assert response.expanded_at.token
        assert (
            response.tree_root.intermediate.operation
            == permissions_pb2.AlgebraicSubjectSet.OPERATION_EXCLUSION
        )
        assert {"document:1#viewer", "document:1#editor"} <= _leaf_subjects(response.tree_root)

    async def test_recursive_reaches_the_users(self, world):
        """A recursive expand reaches ann directly and bob through the eng group."""
        response = await world.permissions.Expand(
            permissions_pb2.ExpandRequest(
                consistency=FULL, resource=obj("document:1"), permission="view", recursive=True
            )
        )
        assert {"user:ann", "user:bob"} <= _leaf_subjects(response.tree_root)

    async def test_arrow_label_and_caveat_markers_cross_the_wire(self, server):
        """The arrow node carries `parent->viewer`; a caveated subject and the caveated row's subtree carry the caveat."""
        text = (
            SCHEMA.replace("definition document {", _CAVEATED_DOCUMENT)
            .replace(
                "relation viewer: user | user:* | group#member",
                "relation viewer: user | user with on_tue | user:* | group#member | group#member with on_tue",
            )
            .replace("(viewer + editor) - banned", "(viewer + editor + parent->viewer) - banned")
        )
        await server.schema.WriteSchema(schema_pb2.WriteSchemaRequest(schema=text))
        await server.relationships.WriteRelationships(
            touch(
                "document:9#parent@folder:f",
                "folder:f#viewer@user:ann",
                "document:9#viewer@user:tue[on_tue]",
                "document:9#viewer@group:g#member[on_tue]",
                "group:g#member@user:gil",
            )
        )
        response = await server.permissions.Expand(
            permissions_pb2.ExpandRequest(
                consistency=FULL, resource=obj("document:9"), permission="view", recursive=True
            )
        )
        nodes = list(_walk(response.tree_root))
        assert [n.label for n in nodes if n.label] == ["parent->viewer"]
        leaf = next(n for n in nodes if n.expanded_relation == "viewer" and n.HasField("leaf"))
        caveats = dict(zip((str_subject(s) for s in leaf.leaf.subjects), leaf.leaf.subject_caveats, strict=True))
        assert caveats == {"group:g#member": "on_tue", "user:tue": "on_tue"}
        group = next(n for n in nodes if n.expanded_object.object_type == "group")
        assert group.caveat == "on_tue"
        assert list(group.leaf.subject_caveats) == []
        folder = next(n for n in nodes if n.expanded_object.object_type == "folder")
        assert folder.caveat == ""


_CAVEATED_DOCUMENT = """caveat on_tue(day string) {
    day == "tue"
}

definition folder {
    relation viewer: user
}

definition document {
    relation parent: folder"""


def _walk(node: permissions_pb2.PermissionRelationshipTree):
    yield node
    for child in node.intermediate.children:
        yield from _walk(child)


def str_subject(subject: core_pb2.SubjectReference) -> str:
    text = f"{subject.object.object_type}:{subject.object.object_id}"
    return f"{text}#{subject.optional_relation}" if subject.optional_relation else text


def _lr(**fields: object) -> permissions_pb2.LookupResourcesRequest:
    base: dict[str, object] = {
        "consistency": FULL,
        "resource_object_type": "document",
        "permission": "view",
        "subject": subj("user:bob"),
    }
    return permissions_pb2.LookupResourcesRequest(**(base | fields))


async def _messages(call: object) -> list:
    return [m async for m in call]  # type: ignore[attr-defined]


class TestLookupResources:
    async def test_streams_every_reachable_resource(self, world):
        """bob reaches documents 1 (through eng), 2 (the wildcard) and 3 (directly), in one message."""
        messages = await _messages(world.permissions.LookupResources(_lr()))
        assert len(messages) == 1
        assert [r.resource_object_id for r in messages[0].results] == ["1", "2", "3"]
        assert messages[0].looked_up_at.token
        assert messages[0].after_result_cursor.token

    async def test_other_users_documents_are_not_listed(self, world):
        """ann sees 1 and 2 but never bob's document 3."""
        messages = await _messages(world.permissions.LookupResources(_lr(subject=subj("user:ann"))))
        assert [r.resource_object_id for m in messages for r in m.results] == ["1", "2"]

    async def test_results_per_message_splits_the_stream(self, world):
        """With 2 results per message, 3 results come as [2, 1], one token, a cursor on each message."""
        messages = await _messages(world.permissions.LookupResources(_lr(optional_results_per_message=2)))
        assert [len(m.results) for m in messages] == [2, 1]
        assert len({m.looked_up_at.token for m in messages}) == 1
        assert all(m.after_result_cursor.token for m in messages)

    async def test_each_message_cursor_resumes_after_its_last_result(self, world):
        """Resuming from any message's cursor yields exactly the results after that message."""
        everything = ["1", "2", "3"]
        messages = await _messages(world.permissions.LookupResources(_lr(optional_results_per_message=1)))
        for i, message in enumerate(messages):
            rest = await _messages(world.permissions.LookupResources(_lr(optional_cursor=message.after_result_cursor)))
            assert [r.resource_object_id for m in rest for r in m.results] == everything[i + 1 :]

    async def test_limit_ending_mid_message_resumes_exactly(self, world):
        """limit 1 ends the stream inside the first batch; its cursor resumes with the rest."""
        first = await _messages(world.permissions.LookupResources(_lr(optional_limit=1, optional_results_per_message=2)))
        assert [[r.resource_object_id for r in m.results] for m in first] == [["1"]]
        rest = await _messages(world.permissions.LookupResources(_lr(optional_cursor=first[-1].after_result_cursor)))
        assert [r.resource_object_id for m in rest for r in m.results] == ["2", "3"]

    async def test_cursor_pins_the_revision(self, world):
        """A resumed stream reads at the cursor's revision: a later grant does not appear."""
        first = await _messages(world.permissions.LookupResources(_lr(optional_limit=1)))
        await world.relationships.WriteRelationships(touch("document:9#viewer@user:bob"))
        rest = await _messages(world.permissions.LookupResources(_lr(optional_cursor=first[-1].after_result_cursor)))
        assert [r.resource_object_id for m in rest for r in m.results] == ["2", "3"]
        assert {m.looked_up_at.token for m in rest} == {first[0].looked_up_at.token}

    async def test_garbage_cursor_is_invalid_argument(self, world):
        """A malformed cursor is INVALID_ARGUMENT naming the cursor."""
        for bad in ("%%%", "2.", "2.tok", "2.tok.lookup_resources.%%"):
            with pytest.raises(aio.AioRpcError) as info:
                await _messages(world.permissions.LookupResources(_lr(optional_cursor=core_pb2.Cursor(token=bad))))
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT, bad
            assert "cursor" in info.value.details(), bad

    async def test_subjects_cursor_is_refused_by_resources(self, world):
        """A LookupSubjects cursor given to LookupResources is INVALID_ARGUMENT, not a wrong page."""
        request = permissions_pb2.LookupSubjectsRequest(
            consistency=FULL, resource=obj("document:1"), permission="view", subject_object_type="user"
        )
        subjects = await _messages(world.permissions.LookupSubjects(request))
        with pytest.raises(aio.AioRpcError) as info:
            await _messages(world.permissions.LookupResources(_lr(optional_cursor=subjects[0].after_result_cursor)))
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    async def test_client_cancellation_leaves_the_server_serving(self, world):
        """Cancelling a stream mid-way does not disturb later calls."""
        call = world.permissions.LookupResources(_lr(optional_results_per_message=1))
        await call.read()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call.read()
        assert (await world.permissions.Check(check("document:3", "view", "user:bob"))).permissionship == HAS


class TestLookupSubjects:
    async def test_lists_subjects_and_wildcard_exclusions(self, world):
        """document:2's viewers are the wildcard minus eve; document:1's are ann and bob."""
        request = permissions_pb2.LookupSubjectsRequest(
            consistency=FULL, resource=obj("document:2"), permission="view", subject_object_type="user"
        )
        found = [r for m in await _messages(world.permissions.LookupSubjects(request)) for r in m.results]
        wildcard = [r for r in found if r.subject.object.object_id == "*"]
        assert len(wildcard) == 1
        assert [s.object.object_id for s in wildcard[0].excluded_subjects] == ["eve"]
        request.resource.object_id = "1"
        ids = [r.subject.object.object_id for m in await _messages(world.permissions.LookupSubjects(request)) for r in m.results]
        assert ids == ["ann", "bob"]

    async def test_resume_across_messages_keeps_the_wildcard_exclusions(self, world):
        """One result per message: the wildcard (with its exclusions) comes first, then resumes exactly."""
        await world.relationships.WriteRelationships(touch("document:2#viewer@user:ann", "document:2#viewer@user:eve"))
        request = permissions_pb2.LookupSubjectsRequest(
            consistency=FULL,
            resource=obj("document:2"),
            permission="view",
            subject_object_type="user",
            optional_results_per_message=1,
        )
        messages = await _messages(world.permissions.LookupSubjects(request))
        assert [[r.subject.object.object_id for r in m.results] for m in messages] == [["*"], ["ann"]]
        assert [s.object.object_id for s in messages[0].results[0].excluded_subjects] == ["eve"]
        request.optional_cursor.CopyFrom(messages[0].after_result_cursor)
        rest = await _messages(world.permissions.LookupSubjects(request))
        assert [r.subject.object.object_id for m in rest for r in m.results] == ["ann"]
