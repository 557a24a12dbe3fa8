"""Python client of the rebac gRPC API: `RebacClient` (asyncio) and `SyncRebacClient`.

    async with RebacClient("127.0.0.1:50051", token="secret") as client:
        token = await client.write_schema(SCHEMA)
        await client.touch("document:42#editor@user:ann")
        result = await client.check("document:42", "edit", "user:ann")
        assert result.allowed

Consistency: with `read_your_writes=True` (the default) the client remembers the token of
its last write and reads `at_least_as_fresh` of it, so it always sees its own writes; an
explicit `consistency=` wins. Unary calls are retried on UNAVAILABLE with exponential
backoff (writes too: UNAVAILABLE means the call did not reach a server that answered).
Server errors are raised as the matching `rebac.errors` class when the server sent a
rebac ErrorInfo reason, else as the original `grpc.aio.AioRpcError`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import grpc
from google.rpc import status_pb2
from grpc import aio

from rebac.datastore.filters import RelationshipFilter
from rebac.engine.cursor import cursor_encoder
from rebac.engine.requests import ExpandTree, FoundResource, FoundSubject, Permissionship
from rebac.errors import RebacError
from rebac.revision import AtLeastAsFresh, Consistency, MinimizeLatency
from rebac.tuples import ObjectRef, Relationship, RelationshipUpdate, SubjectRef, UpdateOperation
from rebac_server import convert
from rebac_server._gen.rebac.v1 import (
    core_pb2,
    permissions_pb2,
    permissions_pb2_grpc,
    relationships_pb2,
    relationships_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
)
from rebac_server.cursors import stream_cursor_prefix
from rebac_server.errors import error_from_status

__all__ = ["CheckResponse", "RebacClient", "SyncRebacClient"]

_T = TypeVar("_T")
_STATUS_DETAILS = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class CheckResponse:
    """A check's answer and the token of the revision it was evaluated at."""

    permissionship: Permissionship
    checked_at: str
    missing_context: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        """True only for HAS_PERMISSION (CONDITIONAL is not allowed: fail closed)."""
        return self.permissionship is Permissionship.HAS_PERMISSION


def _object(value: str | ObjectRef) -> ObjectRef:
    return value if isinstance(value, ObjectRef) else ObjectRef.parse(value)


def _subject(value: str | SubjectRef) -> SubjectRef:
    return value if isinstance(value, SubjectRef) else SubjectRef.parse(value)


def _relationship(value: str | Relationship) -> Relationship:
    return value if isinstance(value, Relationship) else Relationship.parse(value)


ContextualRelationships = Iterable[str | Relationship]
"""Relationships that count for one request only (text like ``doc:1#viewer@user:ann``)."""


def _contextual(values: ContextualRelationships) -> list[core_pb2.Relationship]:
    return [convert.relationship_to_proto(_relationship(v)) for v in values]


def _rebac_error(err: aio.AioRpcError) -> RebacError | None:
    metadata: Any = err.trailing_metadata() or ()
    for key, value in metadata:
        if key == _STATUS_DETAILS and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            return error_from_status(status)
    return None


class RebacClient:
    """An asyncio client over one grpc.aio channel; use as ``async with`` or call `close()`.

    `token` is the bearer key; `tls=True` uses TLS (with `root_certificates`, and a
    client certificate for mTLS). `timeout` is the per-call deadline in seconds.
    """

    def __init__(
        self,
        endpoint: str = "127.0.0.1:50051",
        *,
        token: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        read_your_writes: bool = True,
        max_retries: int = 4,
        initial_backoff: float = 0.05,
        timeout: float | None = 30.0,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if tls:
            credentials = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
            self._channel = aio.secure_channel(endpoint, credentials, options=list(options))
        else:
            self._channel = aio.insecure_channel(endpoint, options=list(options))
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"bearer {token}"),) if token else ()
        self._read_your_writes = read_your_writes
        self._max_retries = max_retries
        self._initial_backoff = initial_backoff
        self._timeout = timeout
        self.last_written_token: str | None = None
        """The `written_at` token of this client's latest write."""
        # The generated stubs are untyped; their calls are typed through the *_pb2 messages.
        self._permissions: Any = permissions_pb2_grpc.PermissionsServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._relationships: Any = relationships_pb2_grpc.RelationshipsServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._schema: Any = schema_pb2_grpc.SchemaServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel (in-flight calls are cancelled)."""
        await self._channel.close(None)

    def _consistency(self, consistency: Consistency | None) -> core_pb2.Consistency:
        if consistency is None:
            if self._read_your_writes and self.last_written_token:
                consistency = AtLeastAsFresh(self.last_written_token)
            else:
                consistency = MinimizeLatency()
        return convert.consistency_to_proto(consistency)

    def _written(self, token: str) -> str:
        self.last_written_token = token
        return token

    async def _unary(self, call: Callable[..., Awaitable[_T]], request: Any) -> _T:
        delay = self._initial_backoff
        for attempt in range(self._max_retries + 1):
            try:
                return await call(request, metadata=self._metadata, timeout=self._timeout)
            except aio.AioRpcError as err:
                if err.code() is grpc.StatusCode.UNAVAILABLE and attempt < self._max_retries:
                    await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not crypto
                    delay *= 2
                    continue
                mapped = _rebac_error(err)
                if mapped is not None:
                    raise mapped from err
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _stream(self, call: Callable[..., Any], request: Any) -> AsyncIterator[Any]:
        stream = call(request, metadata=self._metadata, timeout=self._timeout)
        try:
            async for message in stream:
                yield message
        except aio.AioRpcError as err:
            mapped = _rebac_error(err)
            if mapped is not None:
                raise mapped from err
            raise
        finally:
            stream.cancel()

    # Permissions

    async def check(
        self,
        resource: str | ObjectRef,
        permission: str,
        subject: str | SubjectRef,
        *,
        context: dict[str, Any] | None = None,
        contextual: ContextualRelationships = (),
        consistency: Consistency | None = None,
    ) -> CheckResponse:
        """May `subject` have `permission` on `resource`? (``"document:42", "edit", "user:ann"``).

        `context` is the caveat context; `contextual` relationships count for this request
        only. A caveat the context does not decide gives CONDITIONAL (`allowed` is False).
        """
        request = permissions_pb2.CheckRequest(
            consistency=self._consistency(consistency),
            resource=convert.object_to_proto(_object(resource)),
            permission=permission,
            subject=convert.subject_to_proto(_subject(subject)),
            contextual_relationships=_contextual(contextual),
        )
        if context is not None:
            request.context.CopyFrom(convert.context_to_proto(context))
        response = await self._unary(self._permissions.Check, request)
        return CheckResponse(
            convert.permissionship_from_proto(response.permissionship),
            response.checked_at.token,
            tuple(response.missing_context),
        )

    async def check_bulk(
        self,
        items: Iterable[tuple[str | ObjectRef, str, str | SubjectRef]],
        *,
        context: dict[str, Any] | None = None,
        contextual: ContextualRelationships = (),
        consistency: Consistency | None = None,
    ) -> list[CheckResponse | RebacError]:
        """Many checks at one revision; each item answers or carries its own error.

        `context` applies to every item; `contextual` relationships count for this call only.
        """
        request = permissions_pb2.CheckBulkRequest(
            consistency=self._consistency(consistency), contextual_relationships=_contextual(contextual)
        )
        for resource, permission, subject in items:
            item = request.items.add(
                resource=convert.object_to_proto(_object(resource)),
                permission=permission,
                subject=convert.subject_to_proto(_subject(subject)),
            )
            if context is not None:
                item.context.CopyFrom(convert.context_to_proto(context))
        response = await self._unary(self._permissions.CheckBulk, request)
        results: list[CheckResponse | RebacError] = []
        for pair in response.pairs:
            if pair.WhichOneof("response") == "item":
                results.append(
                    CheckResponse(
                        convert.permissionship_from_proto(pair.item.permissionship),
                        response.checked_at.token,
                        tuple(pair.item.missing_context),
                    )
                )
            else:
                results.append(error_from_status(pair.error) or RebacError(pair.error.message))
        return results

    async def expand(
        self,
        resource: str | ObjectRef,
        permission: str,
        *,
        recursive: bool = False,
        consistency: Consistency | None = None,
    ) -> ExpandTree:
        """The userset tree behind `resource#permission`."""
        request = permissions_pb2.ExpandRequest(
            consistency=self._consistency(consistency),
            resource=convert.object_to_proto(_object(resource)),
            permission=permission,
            recursive=recursive,
        )
        response = await self._unary(self._permissions.Expand, request)
        return convert.expand_tree_from_proto(response.tree_root)

    async def lookup_resources(
        self,
        resource_type: str,
        permission: str,
        subject: str | SubjectRef,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        context: dict[str, Any] | None = None,
        contextual: ContextualRelationships = (),
        consistency: Consistency | None = None,
        results_per_message: int | None = None,
    ) -> AsyncIterator[str]:
        """Ids of the resources of `resource_type` on which `subject` has `permission`.

        Only definite grants: a CONDITIONAL result (a caveat `context` does not decide) is
        left out, since an id alone cannot say "maybe"; `lookup_resources_found` returns
        them marked. `limit` counts the server's results, conditional ones included.
        `results_per_message` asks the server for smaller stream messages (default and
        cap: the server's, 1,000); it changes no answer.
        """
        request = self._lookup_resources_request(
            resource_type,
            permission,
            subject,
            limit=limit,
            cursor=cursor,
            context=context,
            contextual=contextual,
            consistency=consistency,
            results_per_message=results_per_message,
        )
        has = convert.permissionship_to_proto(Permissionship.HAS_PERMISSION)
        async for message in self._stream(self._permissions.LookupResources, request):
            for result in message.results:
                if result.permissionship == has:
                    yield result.resource_object_id

    async def lookup_resources_found(
        self,
        resource_type: str,
        permission: str,
        subject: str | SubjectRef,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        context: dict[str, Any] | None = None,
        contextual: ContextualRelationships = (),
        consistency: Consistency | None = None,
        results_per_message: int | None = None,
    ) -> AsyncIterator[FoundResource]:
        """Like `lookup_resources`, with each result's permissionship, missing context and cursor.

        `cursor` is a result's `cursor`: the stream resumes after that result, at the
        revision the cursor pins. Every result has one, although the server sends one per
        message (results arrive in batches): the others are minted here exactly as the
        server mints its own.
        """
        request = self._lookup_resources_request(
            resource_type,
            permission,
            subject,
            limit=limit,
            cursor=cursor,
            context=context,
            contextual=contextual,
            consistency=consistency,
            results_per_message=results_per_message,
        )
        async for message in self._stream(self._permissions.LookupResources, request):
            results = message.results
            mint = cursor_encoder("lookup_resources", prefix=stream_cursor_prefix(message.looked_up_at.token))
            last = len(results) - 1
            for i, result in enumerate(results):
                # The server sends one cursor per message (after its last result); the
                # others are minted the way the server mints that one.
                after = message.after_result_cursor.token if i == last else mint(result.resource_object_id)
                yield convert.found_resource_from_proto(result, after)

    def _lookup_resources_request(
        self,
        resource_type: str,
        permission: str,
        subject: str | SubjectRef,
        *,
        limit: int | None,
        cursor: str | None,
        context: dict[str, Any] | None,
        contextual: ContextualRelationships,
        consistency: Consistency | None,
        results_per_message: int | None,
    ) -> permissions_pb2.LookupResourcesRequest:
        request = permissions_pb2.LookupResourcesRequest(
            consistency=self._consistency(consistency),
            resource_object_type=resource_type,
            permission=permission,
            subject=convert.subject_to_proto(_subject(subject)),
            optional_limit=limit or 0,
            contextual_relationships=_contextual(contextual),
            optional_results_per_message=results_per_message or 0,
        )
        if cursor:
            request.optional_cursor.CopyFrom(core_pb2.Cursor(token=cursor))
        if context is not None:
            request.context.CopyFrom(convert.context_to_proto(context))
        return request

    async def lookup_subjects(
        self,
        resource: str | ObjectRef,
        permission: str,
        subject_type: str,
        *,
        subject_relation: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        context: dict[str, Any] | None = None,
        contextual: ContextualRelationships = (),
        consistency: Consistency | None = None,
        results_per_message: int | None = None,
    ) -> AsyncIterator[FoundSubject]:
        """The subjects of `subject_type` that have `permission` on `resource`.

        Caveated results come back CONDITIONAL with their missing context (check
        `permissionship`); `contextual` relationships count for this request only.
        `cursor` (a result's `cursor`) resumes after that result.
        """
        request = permissions_pb2.LookupSubjectsRequest(
            consistency=self._consistency(consistency),
            resource=convert.object_to_proto(_object(resource)),
            permission=permission,
            subject_object_type=subject_type,
            optional_subject_relation=subject_relation or "",
            optional_limit=limit or 0,
            contextual_relationships=_contextual(contextual),
            optional_results_per_message=results_per_message or 0,
        )
        if cursor:
            request.optional_cursor.CopyFrom(core_pb2.Cursor(token=cursor))
        if context is not None:
            request.context.CopyFrom(convert.context_to_proto(context))
        async for message in self._stream(self._permissions.LookupSubjects, request):
            results = message.results
            mint = cursor_encoder("lookup_subjects", prefix=stream_cursor_prefix(message.looked_up_at.token))
            last = len(results) - 1
            for i, result in enumerate(results):
                subject_id = result.subject.object.object_id
                after = message.after_result_cursor.token if i == last else mint(subject_id)
                yield convert.found_subject_from_proto(result, after)

    # Relationships

    async def write(
        self,
        updates: Iterable[RelationshipUpdate],
        *,
        preconditions: Iterable[tuple[RelationshipFilter, bool]] = (),
    ) -> str:
        """Apply updates atomically; preconditions are (filter, must_match); the written_at token."""
        request = relationships_pb2.WriteRelationshipsRequest(
            updates=[convert.update_to_proto(u) for u in updates]
        )
        for flt, must_match in preconditions:
            request.optional_preconditions.add(
                operation=core_pb2.Precondition.OPERATION_MUST_MATCH
                if must_match
                else core_pb2.Precondition.OPERATION_MUST_NOT_MATCH,
                filter=convert.filter_to_proto(flt),
            )
        response = await self._unary(self._relationships.WriteRelationships, request)
        return self._written(response.written_at.token)

    async def create(self, *relationships: str | Relationship) -> str:
        """CREATE each relationship (ALREADY_EXISTS → RelationshipExistsError)."""
        return await self.write(
            RelationshipUpdate(UpdateOperation.CREATE, _relationship(r)) for r in relationships
        )

    async def touch(self, *relationships: str | Relationship) -> str:
        """TOUCH (create or replace) each relationship."""
        return await self.write(
            RelationshipUpdate(UpdateOperation.TOUCH, _relationship(r)) for r in relationships
        )

    async def delete(self, *relationships: str | Relationship) -> str:
        """DELETE each relationship (missing ones are fine)."""
        return await self.write(
            RelationshipUpdate(UpdateOperation.DELETE, _relationship(r)) for r in relationships
        )

    async def delete_where(self, flt: RelationshipFilter, *, limit: int | None = None) -> tuple[str, int]:
        """Delete every relationship matching `flt`; (written_at token, count)."""
        request = relationships_pb2.DeleteRelationshipsRequest(
            relationship_filter=convert.filter_to_proto(flt), optional_limit=limit or 0
        )
        response = await self._unary(self._relationships.DeleteRelationships, request)
        return self._written(response.written_at.token), response.deleted_count

    async def read(
        self, flt: RelationshipFilter, *, limit: int | None = None, consistency: Consistency | None = None
    ) -> AsyncIterator[Relationship]:
        """Relationships matching `flt`, in key order."""
        request = relationships_pb2.ReadRelationshipsRequest(
            consistency=self._consistency(consistency),
            relationship_filter=convert.filter_to_proto(flt),
            optional_limit=limit or 0,
        )
        async for message in self._stream(self._relationships.ReadRelationships, request):
            yield convert.relationship_from_proto(message.relationship, "relationship")

    async def import_relationships(
        self,
        relationships: Iterable[str | Relationship] | AsyncIterable[str | Relationship],
        *,
        batch_size: int = 500,
    ) -> tuple[int, str]:
        """Stream relationships to ImportRelationships; (count loaded, written_at token)."""

        async def batches() -> AsyncIterator[relationships_pb2.ImportRelationshipsRequest]:
            batch: list[core_pb2.Relationship] = []
            if isinstance(relationships, AsyncIterable):
                source: AsyncIterator[str | Relationship] = aiter(relationships)
            else:
                source = _aiter(relationships)
            async for item in source:
                batch.append(convert.relationship_to_proto(_relationship(item)))
                if len(batch) >= batch_size:
                    yield relationships_pb2.ImportRelationshipsRequest(relationships=batch)
                    batch = []
            if batch:
                yield relationships_pb2.ImportRelationshipsRequest(relationships=batch)

        try:
            response = await self._relationships.ImportRelationships(
                batches(), metadata=self._metadata, timeout=self._timeout
            )
        except aio.AioRpcError as err:
            mapped = _rebac_error(err)
            if mapped is not None:
                raise mapped from err
            raise
        return response.num_loaded, self._written(response.written_at.token)

    async def export(self, *, consistency: Consistency | None = None) -> AsyncIterator[Relationship]:
        """Every relationship at one revision."""
        request = relationships_pb2.ExportRelationshipsRequest(consistency=self._consistency(consistency))
        async for message in self._stream(self._relationships.ExportRelationships, request):
            for rel in message.relationships:
                yield convert.relationship_from_proto(rel, "relationships")

    # Schema

    async def write_schema(self, schema: str) -> str:
        """Store a schema; the written_at token."""
        response = await self._unary(self._schema.WriteSchema, schema_pb2.WriteSchemaRequest(schema=schema))
        return self._written(response.written_at.token)

    async def read_schema(self, *, consistency: Consistency | None = None) -> str:
        """The stored schema text."""
        response = await self._unary(
            self._schema.ReadSchema, schema_pb2.ReadSchemaRequest(consistency=self._consistency(consistency))
        )
        text: str = response.schema_text
        return text


async def _aiter(items: Iterable[_T]) -> AsyncIterator[_T]:
    for item in items:
        yield item


class SyncRebacClient:
    """A blocking client: the same methods as `RebacClient`, streams returned as lists.

    It runs its own event loop; do not use it from inside a running event loop.
    """

    def __init__(self, endpoint: str = "127.0.0.1:50051", **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = self._loop.run_until_complete(self._make(endpoint, kwargs))

    @staticmethod
    async def _make(endpoint: str, kwargs: dict[str, Any]) -> RebacClient:
        return RebacClient(endpoint, **kwargs)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel and the loop; idempotent."""
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.close())
            self._loop.close()

    @property
    def last_written_token(self) -> str | None:
        """The `written_at` token of this client's latest write."""
        return self._client.last_written_token

    def _run(self, awaitable: Awaitable[_T]) -> _T:
        return self._loop.run_until_complete(awaitable)

    def _collect(self, stream: AsyncIterator[_T]) -> list[_T]:
        async def collect() -> list[_T]:
            return [item async for item in stream]

        return self._run(collect())

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)
        if not callable(method) or name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if isinstance(result, AsyncIterator):
                return self._collect(result)
            return self._run(result)

        call.__name__ = name
        call.__doc__ = method.__doc__
        return call
