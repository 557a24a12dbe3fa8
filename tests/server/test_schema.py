"""SchemaService over a real channel."""

from __future__ import annotations

import grpc
import pytest
from grpc import aio

from rebac.datastore.memory import MemoryDatastore
from rebac_server._gen.rebac.v1 import core_pb2, schema_pb2
from tests.server.server_helpers import SCHEMA, serve, touch


class TestSchemaService:
    async def test_read_before_any_write_is_failed_precondition(self, tmp_path):
        """ReadSchema on an empty datastore is FAILED_PRECONDITION, not an empty schema."""
        async with MemoryDatastore() as ds, serve(ds, tmp_path, schema=None) as served:
            with pytest.raises(aio.AioRpcError) as info:
                await served.schema.ReadSchema(schema_pb2.ReadSchemaRequest())
            assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION

    async def test_write_then_read_round_trips(self, server):
        """A written schema reads back as written, at a token at least as fresh as the write."""
        text = SCHEMA + "\ndefinition folder {\n    relation owner: user\n}\n"
        written = await server.schema.WriteSchema(schema_pb2.WriteSchemaRequest(schema=text))
        read = await server.schema.ReadSchema(
            schema_pb2.ReadSchemaRequest(
                consistency=core_pb2.Consistency(at_least_as_fresh=written.written_at)
            )
        )
        assert read.schema_text == text
        assert read.read_at.token

    async def test_parse_error_carries_line_and_column(self, server):
        """A syntax error is INVALID_ARGUMENT whose message says line:column."""
        with pytest.raises(aio.AioRpcError) as info:
            await server.schema.WriteSchema(
                schema_pb2.WriteSchemaRequest(schema="definition user {\n  relation")
            )
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "2:" in info.value.details()

    async def test_orphaning_change_is_refused_and_keeps_the_old_schema(self, server):
        """Removing a relation still in use is FAILED_PRECONDITION; the old schema stays."""
        await server.relationships.WriteRelationships(touch("group:eng#member@user:ann"))
        with pytest.raises(aio.AioRpcError) as info:
            await server.schema.WriteSchema(
                schema_pb2.WriteSchemaRequest(schema="definition user {}\ndefinition group {}")
            )
        assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        read = await server.schema.ReadSchema(
            schema_pb2.ReadSchemaRequest(consistency=core_pb2.Consistency(fully_consistent=True))
        )
        assert read.schema_text == SCHEMA
