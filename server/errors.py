"""The one table from exceptions to gRPC status codes and ErrorInfo reasons.

`status_for(exc)` resolves an exception by walking its MRO, so a subclass inherits its
nearest mapped ancestor's code. Anything not in the table (a bug) becomes INTERNAL with
a generic message; the details go to the log, never to the client. Every status carries
a `google.rpc.ErrorInfo` detail (domain ``rebac.v1``, reason = an ErrorReason name).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from rebac import errors as e
from rebac_server._gen.rebac.v1.errors_pb2 import ErrorReason

__all__ = [
    "ERROR_DOMAIN",
    "ERROR_TABLE",
    "INTERNAL_MESSAGE",
    "MappedError",
    "error_from_status",
    "mapped_error",
    "status_for",
    "to_grpc_status",
    "to_rpc_status",
]

logger = logging.getLogger("rebac_server.errors")

ERROR_DOMAIN = "rebac.v1"
"""`google.rpc.ErrorInfo.domain` of every error the server returns."""

INTERNAL_MESSAGE = "internal error; the server log has the details under this request id"
"""The only message a client sees for an unexpected exception."""

_C = grpc.StatusCode
_R = ErrorReason

ERROR_TABLE: Mapping[type[BaseException], tuple[grpc.StatusCode, int]] = {
    e.RebacError: (_C.INTERNAL, _R.ERROR_REASON_INTERNAL),
    e.InvalidRequestError: (_C.INVALID_ARGUMENT, _R.ERROR_REASON_INVALID_REQUEST),
    e.SchemaError: (_C.INVALID_ARGUMENT, _R.ERROR_REASON_INVALID_SCHEMA),
    e.SchemaParseError: (_C.INVALID_ARGUMENT, _R.ERROR_REASON_SCHEMA_PARSE_ERROR),
    e.SchemaCompileError: (_C.INVALID_ARGUMENT, _R.ERROR_REASON_SCHEMA_COMPILE_ERROR),
    e.InvalidRelationshipError: (_C.INVALID_ARGUMENT, _R.ERROR_REASON_INVALID_RELATIONSHIP),
    e.InvalidRevisionError: (_C.INVALID_ARGUMENT, _R.ERROR_REASON_INVALID_REVISION),
    e.BatchTooLargeError: (_C.INVALID_ARGUMENT, _R.ERROR_REASON_BATCH_TOO_LARGE),
    e.SchemaMissingError: (_C.FAILED_PRECONDITION, _R.ERROR_REASON_SCHEMA_MISSING),
    e.UnknownDefinitionError: (_C.FAILED_PRECONDITION, _R.ERROR_REASON_UNKNOWN_DEFINITION),
    e.UnknownRelationError: (_C.FAILED_PRECONDITION, _R.ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION),
    e.SchemaViolationError: (_C.FAILED_PRECONDITION, _R.ERROR_REASON_SCHEMA_VIOLATION),
    e.SchemaChangeRefusedError: (_C.FAILED_PRECONDITION, _R.ERROR_REASON_SCHEMA_CHANGE_REFUSED),
    e.PreconditionFailedError: (_C.FAILED_PRECONDITION, _R.ERROR_REASON_WRITE_PRECONDITION_FAILED),
    e.MaxDepthExceededError: (_C.FAILED_PRECONDITION, _R.ERROR_REASON_MAXIMUM_DEPTH_EXCEEDED),
    e.RelationshipExistsError: (_C.ALREADY_EXISTS, _R.ERROR_REASON_RELATIONSHIP_EXISTS),
    e.LimitExceededError: (_C.RESOURCE_EXHAUSTED, _R.ERROR_REASON_LIMIT_EXCEEDED),
    e.CaveatEvaluationError: (_C.INVALID_ARGUMENT, _R.ERROR_REASON_CAVEAT_EVALUATION_ERROR),
    e.CaveatLimitExceededError: (_C.RESOURCE_EXHAUSTED, _R.ERROR_REASON_CAVEAT_LIMIT_EXCEEDED),
    e.StaleRevisionError: (_C.OUT_OF_RANGE, _R.ERROR_REASON_STALE_REVISION),
    e.AuthenticationError: (_C.UNAUTHENTICATED, _R.ERROR_REASON_UNAUTHENTICATED),
    e.AuthorizationError: (_C.PERMISSION_DENIED, _R.ERROR_REASON_PERMISSION_DENIED),
    e.DatastoreError: (_C.UNAVAILABLE, _R.ERROR_REASON_DATASTORE_ERROR),
    e.SerializationConflictError: (_C.ABORTED, _R.ERROR_REASON_SERIALIZATION_CONFLICT),
    e.DatastoreUnavailableError: (_C.UNAVAILABLE, _R.ERROR_REASON_DATASTORE_UNAVAILABLE),
    e.DatastoreNotMigratedError: (_C.FAILED_PRECONDITION, _R.ERROR_REASON_DATASTORE_NOT_MIGRATED),
    e.ReadOnlyError: (_C.UNAVAILABLE, _R.ERROR_REASON_READ_ONLY),
    e.BugError: (_C.INTERNAL, _R.ERROR_REASON_INTERNAL),
    asyncio.CancelledError: (_C.CANCELLED, _R.ERROR_REASON_CANCELLED),
    TimeoutError: (_C.DEADLINE_EXCEEDED, _R.ERROR_REASON_DEADLINE_EXCEEDED),
}
"""Every mapped exception class → (status code, ErrorReason value). Looked up by MRO."""

_INTERNAL = (_C.INTERNAL, _R.ERROR_REASON_INTERNAL)


@dataclass(frozen=True, slots=True)
class MappedError:
    """What a client is told about an exception: code, reason, message, metadata."""

    code: grpc.StatusCode
    reason: str
    message: str
    metadata: Mapping[str, str]


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, int]:
    """The (code, ErrorReason) of the nearest mapped class in `exc`'s MRO; INTERNAL if none."""
    for cls in type(exc).__mro__:
        mapped = ERROR_TABLE.get(cls)
        if mapped is not None:
            return mapped
    return _INTERNAL


def _is_sanitized(exc: BaseException) -> bool:
    """True if the exception's own message must not reach the client."""
    code, _ = status_for(exc)
    return code is _C.INTERNAL or not isinstance(exc, e.RebacError | asyncio.CancelledError | TimeoutError)


def mapped_error(exc: BaseException, *, request_id: str = "") -> MappedError:
    """The client-facing description of `exc`; logs the details of INTERNAL errors."""
    code, reason = status_for(exc)
    metadata: dict[str, str] = {}
    if request_id:
        metadata["request_id"] = request_id
    if _is_sanitized(exc):
        logger.error("internal error (request %s)", request_id or "-", exc_info=exc)
        return MappedError(
            _C.INTERNAL, ErrorReason.Name(_R.ERROR_REASON_INTERNAL), INTERNAL_MESSAGE, metadata
        )
    if isinstance(exc, e.InvalidRequestError) and exc.field:
        metadata["field"] = exc.field
    if isinstance(exc, e.SchemaError) and exc.position is not None:
        metadata["position"] = str(exc.position)
    if isinstance(exc, asyncio.CancelledError):
        message = "the call was cancelled"
    elif isinstance(exc, TimeoutError):
        message = "the call's deadline passed"
    else:
        message = str(exc) or type(exc).__name__
        field = metadata.get("field")
        if field and field not in message and not isinstance(exc, e.SchemaError):
            message = f"{field}: {message}"
    return MappedError(code, ErrorReason.Name(reason), message, metadata)


def to_rpc_status(exc: BaseException, *, request_id: str = "") -> status_pb2.Status:
    """`exc` as a google.rpc.Status with one ErrorInfo detail."""
    mapped = mapped_error(exc, request_id=request_id)
    info = error_details_pb2.ErrorInfo(
        reason=mapped.reason, domain=ERROR_DOMAIN, metadata=dict(mapped.metadata)
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=mapped.code.value[0], message=mapped.message, details=[detail])


def to_grpc_status(exc: BaseException, *, request_id: str = "") -> grpc.Status:
    """`exc` as a grpc.Status whose trailing metadata carries the rich status."""
    return rpc_status.to_status(to_rpc_status(exc, request_id=request_id))


_BY_REASON: dict[str, type[e.RebacError]] = {}
for _cls, (_code, _reason) in ERROR_TABLE.items():
    if issubclass(_cls, e.RebacError):
        _BY_REASON[ErrorReason.Name(_reason)] = _cls
_BY_REASON[ErrorReason.Name(_R.ERROR_REASON_INTERNAL)] = e.BugError


def _position(info: error_details_pb2.ErrorInfo) -> e.SourcePosition | None:
    line, _, column = info.metadata.get("position", "").partition(":")
    return e.SourcePosition(int(line), int(column)) if line.isdigit() and column.isdigit() else None


def error_from_status(status: status_pb2.Status) -> e.RebacError | None:
    """The rebac error a client raises for a server status, or None if it carries no rebac reason.

    Used by `rebac.client`; classes whose constructors take structured arguments are
    rebuilt from the message alone (their extra attributes are not transported).
    """
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.domain == ERROR_DOMAIN:
            cls = _BY_REASON.get(info.reason)
            if cls is None:
                return None
            err = cls.__new__(cls)
            Exception.__init__(err, status.message)
            if isinstance(err, e.InvalidRequestError):
                err.field = info.metadata.get("field")
            if isinstance(err, e.SchemaError):
                err.message, err.position, err.source = status.message, _position(info), "schema"
            return err
    return None
