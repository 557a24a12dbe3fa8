"""RelationshipsService: writes, deletes, reads, import, export and watch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from grpc import aio

from rebac.datastore.filters import RelationshipFilter
from rebac.datastore.protocol import Datastore
from rebac.errors import InvalidRequestError
from rebac.revision import AtExactSnapshot, Consistency, Revision, encode_token
from rebac.tuples import Relationship, RelationshipUpdate, validate_object_type
from rebac.writes import (
    Precondition,
    delete_relationships,
    import_relationships,
    validate_filter,
    write_relationships,
)
from rebac_server import convert
from rebac_server._gen.rebac.v1 import core_pb2, relationships_pb2, relationships_pb2_grpc
from rebac_server.audit import AuditLog
from rebac_server.consistency import resolve_revision, revision_from_token
from rebac_server.cursors import StreamCursor, decode_cursor, encode_cursor

__all__ = ["DEFAULT_EXPORT_BATCH", "RelationshipsServicer"]

DEFAULT_EXPORT_BATCH = 1000
"""Relationships per ExportRelationships message unless the request says otherwise."""

_MAX_EXPORT_BATCH = 10_000


def _audit_text(update: RelationshipUpdate) -> str:
    """An update for the audit log: the caveat's name but never its context."""
    rel = update.relationship
    text = f"{update.operation.value} {rel.resource}#{rel.relation}@{rel.subject}"
    return f"{text}[{rel.caveat.name}]" if rel.caveat is not None else text


def _preconditions(messages: list[core_pb2.Precondition]) -> tuple[Precondition, ...]:
    return tuple(
        Precondition(*convert.precondition_from_proto(p, f"optional_preconditions[{i}]"))
        for i, p in enumerate(messages)
    )


def _pinned(
    request: relationships_pb2.ReadRelationshipsRequest | relationships_pb2.ExportRelationshipsRequest,
) -> tuple[Consistency, Relationship | None]:
    """The request's consistency and resume point; a cursor pins its own revision."""
    if request.HasField("optional_cursor") and request.optional_cursor.token:
        cursor = decode_cursor(request.optional_cursor.token, field="optional_cursor.token")
        try:
            after = Relationship.parse(cursor.position)
        except InvalidRequestError:
            raise InvalidRequestError(
                "optional_cursor.token: malformed cursor", field="optional_cursor.token"
            ) from None
        return AtExactSnapshot(cursor.token), after
    return convert.consistency_from_proto(request.consistency), None


class RelationshipsServicer(relationships_pb2_grpc.RelationshipsServiceServicer):
    """Writes through `rebac.writes` (validated in the write's transaction); reads at one revision."""

    def __init__(self, datastore: Datastore, audit: AuditLog, *, max_updates: int = 1000) -> None:
        self._datastore = datastore
        self._audit = audit
        self._max_updates = max_updates

    async def _revision(self, consistency: Consistency) -> tuple[Revision, str]:
        revision = await resolve_revision(consistency, self._datastore)
        return revision, encode_token(revision)

    async def WriteRelationships(  # noqa: N802 - gRPC method name
        self, request: relationships_pb2.WriteRelationshipsRequest, _context: aio.ServicerContext[Any, Any]
    ) -> relationships_pb2.WriteRelationshipsResponse:
        """Apply the updates atomically; the response carries `written_at`."""
        updates = [convert.update_from_proto(u, f"updates[{i}]") for i, u in enumerate(request.updates)]
        preconditions = _preconditions(list(request.optional_preconditions))
        revision = await write_relationships(
            self._datastore, updates, preconditions=preconditions, max_updates=self._max_updates
        )
        token = encode_token(revision)
        self._audit.record(
            result="written", revision=token, count=len(updates), updates=[_audit_text(u) for u in updates]
        )
        return relationships_pb2.WriteRelationshipsResponse(written_at=core_pb2.RevisionToken(token=token))

    async def DeleteRelationships(  # noqa: N802 - gRPC method name
        self, request: relationships_pb2.DeleteRelationshipsRequest, _context: aio.ServicerContext[Any, Any]
    ) -> relationships_pb2.DeleteRelationshipsResponse:
        """Delete by filter; the response carries `written_at` and the count."""
        convert.require_field(request, "relationship_filter", "relationship_filter")
        flt = convert.filter_from_proto(request.relationship_filter, "relationship_filter")
        if flt.resource_type is None:
            raise InvalidRequestError(
                "relationship_filter.resource_type is required", field="relationship_filter.resource_type"
            )
        revision, count = await delete_relationships(
            self._datastore,
            flt,
            preconditions=_preconditions(list(request.optional_preconditions)),
            limit=request.optional_limit or None,
        )
        token = encode_token(revision)
        self._audit.record(
            result="deleted", resource=flt.resource_type, permission=flt.relation, revision=token, count=count
        )
        return relationships_pb2.DeleteRelationshipsResponse(
            written_at=core_pb2.RevisionToken(token=token), deleted_count=count
        )

    async def ReadRelationships(  # noqa: N802 - gRPC method name
        self, request: relationships_pb2.ReadRelationshipsRequest, _context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[relationships_pb2.ReadRelationshipsResponse]:
        """Stream matching relationships in key order; each carries `read_at` and a cursor."""
        convert.require_field(request, "relationship_filter", "relationship_filter")
        flt = convert.filter_from_proto(request.relationship_filter, "relationship_filter")
        if flt.resource_type is None and flt.subject is None:
            raise InvalidRequestError(
                "relationship_filter needs resource_type or optional_subject_filter",
                field="relationship_filter.resource_type",
            )
        consistency, after = _pinned(request)
        revision, token = await self._revision(consistency)
        reader = self._datastore.snapshot_reader(revision)
        validate_filter(await reader.read_schema(), flt)
        limit = request.optional_limit or None
        rows = (
            reader.query_relationships(flt, limit=limit, after=after)
            if flt.resource_type is not None
            else reader.reverse_query_relationships(flt, limit=limit, after=after)
        )
        revision_token = core_pb2.RevisionToken(token=token)
        async for rel in rows:
            yield relationships_pb2.ReadRelationshipsResponse(
                read_at=revision_token,
                relationship=convert.relationship_to_proto(rel),
                after_result_cursor=core_pb2.Cursor(token=encode_cursor(StreamCursor(token, str(rel)))),
            )

    async def ImportRelationships(  # noqa: N802 - gRPC method name
        self,
        request_iterator: AsyncIterator[relationships_pb2.ImportRelationshipsRequest],
        _context: aio.ServicerContext[Any, Any],
    ) -> relationships_pb2.ImportRelationshipsResponse:
        """Load the streamed relationships (validated, in transactions of 1000)."""

        async def relationships() -> AsyncIterator[Relationship]:
            index = 0
            async for batch in request_iterator:
                for message in batch.relationships:
                    yield convert.relationship_from_proto(message, f"relationships[{index}]")
                    index += 1

        result = await import_relationships(self._datastore, relationships())
        token = encode_token(result.revision)
        self._audit.record(result="imported", revision=token, count=result.count)
        return relationships_pb2.ImportRelationshipsResponse(
            num_loaded=result.count, written_at=core_pb2.RevisionToken(token=token)
        )

    async def ExportRelationships(  # noqa: N802 - gRPC method name
        self, request: relationships_pb2.ExportRelationshipsRequest, _context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[relationships_pb2.ExportRelationshipsResponse]:
        """Stream every relationship at one revision in batches, each with a cursor."""
        batch_size = min(request.optional_batch_size or DEFAULT_EXPORT_BATCH, _MAX_EXPORT_BATCH)
        consistency, after = _pinned(request)
        revision, token = await self._revision(consistency)
        revision_token = core_pb2.RevisionToken(token=token)
        batch: list[Relationship] = []

        def message() -> relationships_pb2.ExportRelationshipsResponse:
            cursor = encode_cursor(StreamCursor(token, str(batch[-1])))
            return relationships_pb2.ExportRelationshipsResponse(
                read_at=revision_token,
                relationships=[convert.relationship_to_proto(r) for r in batch],
                after_result_cursor=core_pb2.Cursor(token=cursor),
            )

        async for rel in self._datastore.snapshot_reader(revision).query_relationships(
            RelationshipFilter(), after=after
        ):
            batch.append(rel)
            if len(batch) >= batch_size:
                yield message()
                batch = []
        if batch:
            yield message()

    async def Watch(  # noqa: N802 - gRPC method name
        self, request: relationships_pb2.WatchRequest, _context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[relationships_pb2.WatchResponse]:
        """Stream committed changes after the start revision until the client cancels."""
        types = frozenset(
            validate_object_type(t, field_name=f"optional_object_types[{i}]")
            for i, t in enumerate(request.optional_object_types)
        )
        if request.HasField("optional_start_cursor") and request.optional_start_cursor.token:
            start = revision_from_token(request.optional_start_cursor.token, self._datastore)
            await self._datastore.check_revision(start)
        else:
            start = await self._datastore.head_revision()
        async for changes in self._datastore.watch(start):
            updates = [u for u in changes.updates if not types or u.relationship.resource.type in types]
            if updates:
                yield relationships_pb2.WatchResponse(
                    updates=[convert.update_to_proto(u) for u in updates],
                    changes_through=core_pb2.RevisionToken(token=encode_token(changes.revision)),
                )
