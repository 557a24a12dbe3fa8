"""SchemaService: WriteSchema and ReadSchema."""

from __future__ import annotations

import hashlib
from typing import Any

from grpc import aio

from rebac.datastore.protocol import Datastore
from rebac.errors import SchemaMissingError
from rebac.revision import encode_token
from rebac.writes import write_schema
from rebac_server import convert
from rebac_server._gen.rebac.v1 import core_pb2, schema_pb2, schema_pb2_grpc
from rebac_server.audit import AuditLog
from rebac_server.consistency import resolve_revision

__all__ = ["SchemaServicer"]


class SchemaServicer(schema_pb2_grpc.SchemaServiceServicer):
    """Stores schemas through `rebac.writes.write_schema` and reads them back as written."""

    def __init__(self, datastore: Datastore, audit: AuditLog) -> None:
        self._datastore = datastore
        self._audit = audit

    async def WriteSchema(  # noqa: N802 - gRPC method name
        self, request: schema_pb2.WriteSchemaRequest, _context: aio.ServicerContext[Any, Any]
    ) -> schema_pb2.WriteSchemaResponse:
        """Compile, validate and store; the response carries `written_at`."""
        revision = await write_schema(self._datastore, request.schema)
        token = encode_token(revision)
        digest = hashlib.sha256(request.schema.encode()).hexdigest()[:16]
        self._audit.record(result="schema_written", revision=token, schema_sha256=digest)
        return schema_pb2.WriteSchemaResponse(written_at=core_pb2.RevisionToken(token=token))

    async def ReadSchema(  # noqa: N802 - gRPC method name
        self, request: schema_pb2.ReadSchemaRequest, _context: aio.ServicerContext[Any, Any]
    ) -> schema_pb2.ReadSchemaResponse:
        """The schema text at the resolved revision; FAILED_PRECONDITION if none was written."""
        revision = await resolve_revision(
            convert.consistency_from_proto(request.consistency), self._datastore
        )
        text = await self._datastore.snapshot_reader(revision).read_schema_text()
        if text is None:
            raise SchemaMissingError("no schema has been written yet")
        return schema_pb2.ReadSchemaResponse(
            schema_text=text, read_at=core_pb2.RevisionToken(token=encode_token(revision))
        )
