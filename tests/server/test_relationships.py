"""RelationshipsService over a real channel: writes, deletes, reads, import, export, watch."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc import aio

from rebac.datastore.memory import MemoryDatastore
from rebac.tuples import UpdateOperation, rel
from rebac_server import convert
from rebac_server._gen.rebac.v1 import core_pb2, relationships_pb2
from tests.server.server_helpers import FULL, HAS, NO, check, serve, touch, updates


def _filter(resource_type: str = "document", **kwargs: object) -> core_pb2.RelationshipFilter:
    return core_pb2.RelationshipFilter(resource_type=resource_type, **kwargs)  # type: ignore[arg-type]


async def _read(
    served, flt: core_pb2.RelationshipFilter, **kwargs: object
) -> list[relationships_pb2.ReadRelationshipsResponse]:
    request = relationships_pb2.ReadRelationshipsRequest(consistency=FULL, relationship_filter=flt, **kwargs)  # type: ignore[arg-type]
    return [r async for r in served.relationships.ReadRelationships(request)]


def _texts(responses: list[relationships_pb2.ReadRelationshipsResponse]) -> list[str]:
    return [str(convert.relationship_from_proto(r.relationship, "r")) for r in responses]


class TestWriteRelationships:
    async def test_write_returns_a_token_that_reads_see(self, server):
        """A TOUCH returns written_at; a check at that token sees the write."""
        written = await server.relationships.WriteRelationships(touch("document:1#viewer@user:ann"))
        assert written.written_at.token
        fresh = core_pb2.Consistency(at_least_as_fresh=written.written_at)
        assert (
            await server.permissions.Check(check("document:1", "view", "user:ann", fresh))
        ).permissionship == HAS

    async def test_create_of_existing_is_already_exists_and_writes_nothing(self, server):
        """CREATE of a live relationship is ALREADY_EXISTS; the batch's other update is not applied."""
        await server.relationships.WriteRelationships(touch("document:1#viewer@user:ann"))
        with pytest.raises(aio.AioRpcError) as info:
            await server.relationships.WriteRelationships(
                updates(UpdateOperation.CREATE, "document:2#viewer@user:bob", "document:1#viewer@user:ann")
            )
        assert info.value.code() is grpc.StatusCode.ALREADY_EXISTS
        assert (await server.permissions.Check(check("document:2", "view", "user:bob"))).permissionship == NO

    async def test_schema_violation_is_failed_precondition(self, server):
        """A subject type the relation does not allow is FAILED_PRECONDITION."""
        with pytest.raises(aio.AioRpcError) as info:
            await server.relationships.WriteRelationships(touch("document:1#banned@group:eng#member"))
        assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION

    async def test_unspecified_operation_names_the_field(self, server):
        """An update without an operation is INVALID_ARGUMENT naming `updates[0].operation`."""
        request = touch("document:1#viewer@user:ann")
        request.updates[0].operation = core_pb2.RelationshipUpdate.OPERATION_UNSPECIFIED
        with pytest.raises(aio.AioRpcError) as info:
            await server.relationships.WriteRelationships(request)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "updates[0].operation" in info.value.details()

    async def test_failed_precondition_writes_nothing(self, server):
        """A MUST_MATCH precondition that matches nothing fails the write and writes nothing."""
        request = touch("document:1#viewer@user:ann")
        request.optional_preconditions.add(
            operation=core_pb2.Precondition.OPERATION_MUST_MATCH, filter=_filter(optional_resource_id="99")
        )
        with pytest.raises(aio.AioRpcError) as info:
            await server.relationships.WriteRelationships(request)
        assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert await _read(server, _filter()) == []

    async def test_too_many_updates_is_invalid_argument(self, tmp_path):
        """More updates than max_updates_per_write is INVALID_ARGUMENT."""
        async with MemoryDatastore() as ds, serve(ds, tmp_path, max_updates_per_write=2) as served:
            with pytest.raises(aio.AioRpcError) as info:
                await served.relationships.WriteRelationships(
                    touch(
                        "document:1#viewer@user:a1", "document:1#viewer@user:a2", "document:1#viewer@user:a3"
                    )
                )
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT


class TestDeleteRelationships:
    async def test_deletes_by_filter_and_counts(self, server):
        """Deleting document:1's viewers removes exactly those and reports the count."""
        await server.relationships.WriteRelationships(
            touch("document:1#viewer@user:ann", "document:1#viewer@user:bob", "document:2#viewer@user:ann")
        )
        response = await server.relationships.DeleteRelationships(
            relationships_pb2.DeleteRelationshipsRequest(
                relationship_filter=_filter(optional_resource_id="1", optional_relation="viewer")
            )
        )
        assert response.deleted_count == 2
        assert response.written_at.token
        assert _texts(await _read(server, _filter())) == ["document:2#viewer@user:ann"]

    async def test_filter_without_resource_type_is_refused(self, server):
        """A delete filter without resource_type is INVALID_ARGUMENT (no accidental wipe)."""
        with pytest.raises(aio.AioRpcError) as info:
            await server.relationships.DeleteRelationships(
                relationships_pb2.DeleteRelationshipsRequest(
                    relationship_filter=core_pb2.RelationshipFilter()
                )
            )
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT


class TestReadRelationships:
    async def test_reads_in_key_order_with_cursors(self, server):
        """limit + cursor page through the relationships in key order without repeats."""
        texts = [f"document:{i}#viewer@user:u{i}" for i in range(5)]
        await server.relationships.WriteRelationships(touch(*texts))
        first = await _read(server, _filter(), optional_limit=2)
        assert _texts(first) == texts[:2]
        rest = await _read(server, _filter(), optional_cursor=first[-1].after_result_cursor)
        assert _texts(rest) == texts[2:]
        assert {r.read_at.token for r in first + rest} == {first[0].read_at.token}

    async def test_cursor_pins_its_revision(self, server):
        """Resuming with a cursor reads at the cursor's revision, not newer writes."""
        await server.relationships.WriteRelationships(
            touch("document:1#viewer@user:a", "document:2#viewer@user:b")
        )
        first = await _read(server, _filter(), optional_limit=1)
        await server.relationships.WriteRelationships(touch("document:3#viewer@user:c"))
        rest = await _read(server, _filter(), optional_cursor=first[-1].after_result_cursor)
        assert _texts(rest) == ["document:2#viewer@user:b"]

    async def test_reads_by_subject(self, server):
        """A filter with only a subject filter uses the reverse index."""
        await server.relationships.WriteRelationships(
            touch("document:1#viewer@user:ann", "document:2#viewer@user:bob")
        )
        flt = core_pb2.RelationshipFilter(
            optional_subject_filter=core_pb2.SubjectFilter(subject_type="user", optional_subject_id="bob")
        )
        assert _texts(await _read(server, flt)) == ["document:2#viewer@user:bob"]

    async def test_unknown_type_or_relation_is_an_error_not_an_empty_answer(self, server):
        """A filter naming a type or relation the schema lacks is FAILED_PRECONDITION, not silence."""
        for flt in (
            core_pb2.RelationshipFilter(resource_type="foo"),
            core_pb2.RelationshipFilter(resource_type="document", optional_relation="readr"),
        ):
            with pytest.raises(aio.AioRpcError) as info:
                await _read(server, flt)
            assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert "not found" in info.value.details()

    async def test_empty_filter_is_refused(self, server):
        """A read filter with neither resource_type nor subject is INVALID_ARGUMENT naming the field."""
        with pytest.raises(aio.AioRpcError) as info:
            await _read(server, core_pb2.RelationshipFilter())
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "relationship_filter" in info.value.details()


class TestImportExport:
    async def test_import_stream_then_export_everything(self, server):
        """A client stream of batches imports every relationship; export returns them all."""
        texts = [f"document:{i}#viewer@user:u{i}" for i in range(25)]

        async def batches():
            for start in range(0, len(texts), 10):
                yield relationships_pb2.ImportRelationshipsRequest(
                    relationships=[convert.relationship_to_proto(rel(t)) for t in texts[start : start + 10]]
                )

        imported = await server.relationships.ImportRelationships(batches())
        assert imported.num_loaded == 25
        assert imported.written_at.token
        request = relationships_pb2.ExportRelationshipsRequest(consistency=FULL, optional_batch_size=10)
        pages = [p async for p in server.relationships.ExportRelationships(request)]
        assert [len(p.relationships) for p in pages] == [10, 10, 5]
        exported = sorted(
            str(convert.relationship_from_proto(r, "r")) for p in pages for r in p.relationships
        )
        assert exported == sorted(texts)
        resumed = relationships_pb2.ExportRelationshipsRequest(optional_cursor=pages[0].after_result_cursor)
        assert (
            sum([len(p.relationships) async for p in server.relationships.ExportRelationships(resumed)]) == 15
        )

    async def test_import_of_invalid_relationship_names_it(self, server):
        """A malformed relationship in the stream is INVALID_ARGUMENT naming its index."""
        bad = convert.relationship_to_proto(rel("document:1#viewer@user:ann"))
        bad.relation = "Not Valid"

        async def batches():
            yield relationships_pb2.ImportRelationshipsRequest(relationships=[bad])

        with pytest.raises(aio.AioRpcError) as info:
            await server.relationships.ImportRelationships(batches())
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "relationships[0].relation" in info.value.details()


class TestWatch:
    async def test_streams_later_writes_filtered_by_type(self, server):
        """Watch delivers a later document write and skips the group write."""
        start = await server.relationships.WriteRelationships(touch("document:0#viewer@user:zed"))
        call = server.relationships.Watch(
            relationships_pb2.WatchRequest(
                optional_start_cursor=start.written_at, optional_object_types=["document"]
            )
        )
        await server.relationships.WriteRelationships(touch("group:eng#member@user:ann"))
        await server.relationships.WriteRelationships(touch("document:1#viewer@user:ann"))
        message = await asyncio.wait_for(call.read(), timeout=5)
        assert [str(convert.update_from_proto(u, "u").relationship) for u in message.updates] == [
            "document:1#viewer@user:ann"
        ]
        assert message.changes_through.token
        call.cancel()
