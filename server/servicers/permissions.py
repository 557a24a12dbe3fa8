"""PermissionsService: Check, CheckBulk, Expand, LookupResources, LookupSubjects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from grpc import aio

from rebac.datastore.protocol import Datastore
from rebac.engine import Engine
from rebac.engine.requests import CheckRequest, CheckResult, FoundSubject
from rebac.errors import RebacError
from rebac.revision import AtExactSnapshot, Consistency, Revision, encode_token
from rebac.tuples import validate_object_type
from rebac_server import convert
from rebac_server._gen.rebac.v1 import core_pb2, permissions_pb2, permissions_pb2_grpc
from rebac_server.audit import AuditLog
from rebac_server.consistency import RevisionResolver
from rebac_server.cursors import decode_cursor, stream_cursor_prefix
from rebac_server.errors import to_rpc_status
from rebac_server.request_context import current_request

__all__ = ["MAX_RESULTS_PER_MESSAGE", "PermissionsServicer"]

MAX_RESULTS_PER_MESSAGE = 1000
"""Lookup results per stream message, unless a request asks for fewer.

A stream message costs tens of microseconds in gRPC on each side, a result in it about
one: batching is what makes a 30,000-result lookup cheap (see permissions.proto).
"""


def _results_per_message(requested: int) -> int:
    return min(requested, MAX_RESULTS_PER_MESSAGE) if requested else MAX_RESULTS_PER_MESSAGE


def _caveat_context(msg: Any, name: str = "context") -> dict[str, Any] | None:
    return convert.context_from_proto(getattr(msg, name)) if msg.HasField(name) else None


def _pinned(request: Any) -> tuple[Consistency, str | None]:
    """The request's consistency, or the cursor's revision when it carries a cursor."""
    if request.HasField("optional_cursor") and request.optional_cursor.token:
        cursor = decode_cursor(request.optional_cursor.token, field="optional_cursor.token")
        return AtExactSnapshot(cursor.token), cursor.position or None
    return convert.consistency_from_proto(request.consistency), None


def _check_request(
    resource: core_pb2.ObjectReference,
    permission: str,
    subject: core_pb2.SubjectReference,
    context: dict[str, Any] | None,
    path: str = "",
) -> CheckRequest:
    return CheckRequest(
        resource=convert.object_from_proto(resource, f"{path}resource"),
        permission=convert.relation_from_proto(permission, f"{path}permission"),
        subject=convert.subject_from_proto(subject, f"{path}subject"),
        context=context,
    )


class PermissionsServicer(permissions_pb2_grpc.PermissionsServiceServicer):
    """Answers permission questions at one resolved revision per request.

    Per process it shares head-revision reads between concurrent requests (`RevisionResolver`).
    """

    def __init__(self, datastore: Datastore, engine: Engine, audit: AuditLog) -> None:
        self._datastore = datastore
        self._engine = engine
        self._audit = audit
        self._resolver = RevisionResolver(datastore)

    async def _revision(self, consistency: Consistency) -> tuple[Revision, str]:
        revision = await self._resolver.resolve(consistency)
        return revision, encode_token(revision)

    async def Check(  # noqa: N802 - gRPC method name
        self, request: permissions_pb2.CheckRequest, _context: aio.ServicerContext[Any, Any]
    ) -> permissions_pb2.CheckResponse:
        """One check; the response carries `checked_at`."""
        convert.require_field(request, "resource", "resource")
        convert.require_field(request, "subject", "subject")
        check = _check_request(
            request.resource, request.permission, request.subject, _caveat_context(request)
        )
        if request.contextual_relationships:
            check = CheckRequest(
                check.resource,
                check.permission,
                check.subject,
                check.context,
                convert.contextual_relationships_from_proto(request.contextual_relationships),
            )
        revision, token = await self._revision(convert.consistency_from_proto(request.consistency))
        result = await self._engine.check(self._datastore.snapshot_reader(revision), check)
        if self._audit.enabled:  # building the record's strings costs per call, even when discarded
            self._audit.record(
                result=result.permissionship.value,
                resource=str(check.resource),
                permission=check.permission,
                subject=str(check.subject),
                revision=token,
            )
        return permissions_pb2.CheckResponse(
            checked_at=core_pb2.RevisionToken(token=token),
            permissionship=convert.permissionship_to_proto(result.permissionship),
            missing_context=result.missing_context,
        )

    async def CheckBulk(  # noqa: N802 - gRPC method name
        self, request: permissions_pb2.CheckBulkRequest, _context: aio.ServicerContext[Any, Any]
    ) -> permissions_pb2.CheckBulkResponse:
        """Many checks at one revision; an invalid item gets its own error, not the call's."""
        info = current_request()
        request_id = info.request_id if info else ""
        outcomes: list[CheckResult | RebacError | None] = [None] * len(request.items)
        checks: list[CheckRequest | None] = [None] * len(request.items)
        valid: list[tuple[int, CheckRequest]] = []
        # Shared by every item: a malformed one fails the whole call (INVALID_ARGUMENT).
        contextual = convert.contextual_relationships_from_proto(request.contextual_relationships)
        for i, item in enumerate(request.items):
            try:
                convert.require_field(item, "resource", f"items[{i}].resource")
                convert.require_field(item, "subject", f"items[{i}].subject")
                checks[i] = _check_request(
                    item.resource, item.permission, item.subject, _caveat_context(item), f"items[{i}]."
                )
            except RebacError as err:
                outcomes[i] = err
            else:
                valid.append((i, checks[i]))  # type: ignore[arg-type]
        revision, token = await self._revision(convert.consistency_from_proto(request.consistency))
        if valid:
            results = await self._engine.check_bulk(
                self._datastore.snapshot_reader(revision),
                [check for _, check in valid],
                contextual_relationships=contextual,
            )
            for (i, _), answer in zip(valid, results, strict=True):
                outcomes[i] = answer
        response = permissions_pb2.CheckBulkResponse(checked_at=core_pb2.RevisionToken(token=token))
        for item, check, outcome in zip(request.items, checks, outcomes, strict=True):
            pair = response.pairs.add()
            pair.request.CopyFrom(item)
            if isinstance(outcome, CheckResult):
                pair.item.permissionship = convert.permissionship_to_proto(outcome.permissionship)
                pair.item.missing_context.extend(outcome.missing_context)
                result = outcome.permissionship.value
            else:
                assert outcome is not None  # noqa: S101 - every index was filled above
                pair.error.CopyFrom(to_rpc_status(outcome, request_id=request_id))
                result = "error"
            if self._audit.enabled:
                self._audit.record(
                    result=result,
                    resource=str(check.resource) if check else None,
                    permission=check.permission if check else None,
                    subject=str(check.subject) if check else None,
                    revision=token,
                )
        return response

    async def Expand(  # noqa: N802 - gRPC method name
        self, request: permissions_pb2.ExpandRequest, _context: aio.ServicerContext[Any, Any]
    ) -> permissions_pb2.ExpandResponse:
        """The userset tree; the response carries `expanded_at`."""
        convert.require_field(request, "resource", "resource")
        resource = convert.object_from_proto(request.resource, "resource")
        permission = convert.relation_from_proto(request.permission, "permission")
        revision, token = await self._revision(convert.consistency_from_proto(request.consistency))
        tree = await self._engine.expand(
            self._datastore.snapshot_reader(revision), resource, permission, recursive=request.recursive
        )
        self._audit.record(result="expanded", resource=str(resource), permission=permission, revision=token)
        return permissions_pb2.ExpandResponse(
            expanded_at=core_pb2.RevisionToken(token=token), tree_root=convert.expand_tree_to_proto(tree)
        )

    async def LookupResources(  # noqa: N802 - gRPC method name
        self, request: permissions_pb2.LookupResourcesRequest, _context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[permissions_pb2.LookupResourcesResponse]:
        """Stream the resources the subject can reach, a page per message, each message with a cursor."""
        convert.require_field(request, "subject", "subject")
        resource_type = validate_object_type(request.resource_object_type, field_name="resource_object_type")
        permission = convert.relation_from_proto(request.permission, "permission")
        subject = convert.subject_from_proto(request.subject, "subject")
        contextual = convert.contextual_relationships_from_proto(request.contextual_relationships)
        per_message = _results_per_message(request.optional_results_per_message)
        consistency, engine_cursor = _pinned(request)
        revision, token = await self._revision(consistency)
        revision_token = core_pb2.RevisionToken(token=token)
        prefix = stream_cursor_prefix(token)
        count = 0
        async for page in self._engine.lookup_resource_pages(
            self._datastore.snapshot_reader(revision),
            resource_type,
            permission,
            subject,
            page_size=per_message,
            limit=request.optional_limit or None,
            cursor=engine_cursor,
            context=_caveat_context(request),
            contextual_relationships=contextual,
        ):
            response = permissions_pb2.LookupResourcesResponse(looked_up_at=revision_token)
            convert.add_resource_page(response.results, page)
            response.after_result_cursor.token = prefix + page.cursor
            count += len(page.ids)
            yield response
        self._audit.record(
            result="looked_up",
            resource=resource_type,
            permission=permission,
            subject=str(subject),
            revision=token,
            count=count,
        )

    async def LookupSubjects(  # noqa: N802 - gRPC method name
        self, request: permissions_pb2.LookupSubjectsRequest, _context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[permissions_pb2.LookupSubjectsResponse]:
        """Stream the subjects that have the permission, many per message, each message with a cursor."""
        convert.require_field(request, "resource", "resource")
        resource = convert.object_from_proto(request.resource, "resource")
        permission = convert.relation_from_proto(request.permission, "permission")
        subject_type = validate_object_type(request.subject_object_type, field_name="subject_object_type")
        subject_relation = (
            convert.relation_from_proto(request.optional_subject_relation, "optional_subject_relation")
            if request.optional_subject_relation
            else None
        )
        contextual = convert.contextual_relationships_from_proto(request.contextual_relationships)
        per_message = _results_per_message(request.optional_results_per_message)
        consistency, engine_cursor = _pinned(request)
        revision, token = await self._revision(consistency)
        revision_token = core_pb2.RevisionToken(token=token)
        count = 0
        found = self._engine.lookup_subjects(
            self._datastore.snapshot_reader(revision),
            resource,
            permission,
            subject_type,
            subject_relation=subject_relation,
            limit=request.optional_limit or None,
            cursor=engine_cursor,
            context=_caveat_context(request),
            contextual_relationships=contextual,
        )
        async for response in _subject_messages(
            found,
            lambda: permissions_pb2.LookupSubjectsResponse(looked_up_at=revision_token),
            per_message=per_message,
            cursor_prefix=stream_cursor_prefix(token),
        ):
            count += len(response.results)
            yield response
        self._audit.record(
            result="looked_up",
            resource=str(resource),
            permission=permission,
            subject=subject_type,
            revision=token,
            count=count,
        )


async def _subject_messages(
    found: AsyncIterator[FoundSubject],
    new_response: Callable[[], permissions_pb2.LookupSubjectsResponse],
    *,
    per_message: int,
    cursor_prefix: str,
) -> AsyncIterator[permissions_pb2.LookupSubjectsResponse]:
    """Pack LookupSubjects results into messages of at most `per_message` results, in order.

    Each message's `after_result_cursor` resumes right after its last result; a stream with
    no results sends no message. One gRPC message per result cost most of a lookup's server
    CPU, which is why results travel in batches (LookupResources gets them from the engine
    in pages, a page per message).
    """
    batch: list[FoundSubject] = []
    async for item in found:
        batch.append(item)
        if len(batch) >= per_message:
            yield _subject_message(new_response(), batch, cursor_prefix)
            batch = []
    if batch:
        yield _subject_message(new_response(), batch, cursor_prefix)


def _subject_message(
    response: permissions_pb2.LookupSubjectsResponse, batch: list[FoundSubject], cursor_prefix: str
) -> permissions_pb2.LookupSubjectsResponse:
    convert.add_found_subjects(response.results, batch)
    response.after_result_cursor.token = cursor_prefix + batch[-1].cursor
    return response
