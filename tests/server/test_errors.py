"""The one error table: exhaustive over rebac.errors, sanitized INTERNAL, round trip to clients."""

from __future__ import annotations

import asyncio
import inspect
import logging

import grpc
import pytest
from google.rpc import error_details_pb2

from rebac import errors as e
from rebac_server._gen.rebac.v1.errors_pb2 import ErrorReason
from rebac_server.errors import (
    ERROR_DOMAIN,
    ERROR_TABLE,
    INTERNAL_MESSAGE,
    error_from_status,
    status_for,
    to_rpc_status,
)

ALL_ERRORS = sorted(
    (cls for _, cls in inspect.getmembers(e, inspect.isclass) if issubclass(cls, e.RebacError)),
    key=lambda cls: cls.__name__,
)

EXPECTED_CODES = {
    e.InvalidRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    e.SchemaParseError: grpc.StatusCode.INVALID_ARGUMENT,
    e.SchemaCompileError: grpc.StatusCode.INVALID_ARGUMENT,
    e.InvalidRevisionError: grpc.StatusCode.INVALID_ARGUMENT,
    e.UnknownDefinitionError: grpc.StatusCode.FAILED_PRECONDITION,
    e.UnknownRelationError: grpc.StatusCode.FAILED_PRECONDITION,
    e.SchemaViolationError: grpc.StatusCode.FAILED_PRECONDITION,
    e.PreconditionFailedError: grpc.StatusCode.FAILED_PRECONDITION,
    e.MaxDepthExceededError: grpc.StatusCode.FAILED_PRECONDITION,
    e.RelationshipExistsError: grpc.StatusCode.ALREADY_EXISTS,
    e.StaleRevisionError: grpc.StatusCode.OUT_OF_RANGE,
    e.SerializationConflictError: grpc.StatusCode.ABORTED,
    e.DatastoreUnavailableError: grpc.StatusCode.UNAVAILABLE,
    e.AuthenticationError: grpc.StatusCode.UNAUTHENTICATED,
    e.AuthorizationError: grpc.StatusCode.PERMISSION_DENIED,
    e.LimitExceededError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    e.CaveatLimitExceededError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    e.BugError: grpc.StatusCode.INTERNAL,
}


def _instance(cls: type[e.RebacError]) -> e.RebacError:
    """An instance of any error class, whatever its constructor wants."""
    if cls is e.UnknownDefinitionError:
        return cls("widget")
    if cls is e.UnknownRelationError:
        return cls("document", "nope")
    if cls is e.MaxDepthExceededError:
        return cls(50)
    if cls is e.RelationshipExistsError:
        return cls("document:1#viewer@user:ann")
    return cls("something went wrong")


def _info(status) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


class TestErrorTable:
    @pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
    def test_every_error_class_is_mapped_explicitly(self, cls):
        """Each RebacError subclass has its own row, so a new class cannot slip through unmapped."""
        assert cls in ERROR_TABLE

    @pytest.mark.parametrize(
        "cls", sorted(EXPECTED_CODES, key=lambda c: c.__name__), ids=lambda c: c.__name__
    )
    def test_codes_follow_the_design(self, cls):
        """The code of each class is the one DESIGN.md lists."""
        assert status_for(_instance(cls))[0] is EXPECTED_CODES[cls]

    def test_reasons_are_distinct_per_class_except_the_internal_ones(self):
        """Every reason identifies one class (INTERNAL is shared by RebacError and BugError)."""
        reasons = [
            reason for cls, (_, reason) in ERROR_TABLE.items() if cls not in {e.RebacError, e.BugError}
        ]
        assert len(reasons) == len(set(reasons))

    @pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
    def test_status_carries_error_info_and_round_trips(self, cls):
        """The status has an ErrorInfo in our domain; the client rebuilds the same class."""
        status = to_rpc_status(_instance(cls), request_id="r1")
        info = _info(status)
        assert info.domain == ERROR_DOMAIN
        assert info.reason in ErrorReason.keys()  # noqa: SIM118 - a protobuf enum wrapper, not a dict
        rebuilt = error_from_status(status)
        assert rebuilt is not None
        if status_for(_instance(cls))[0] is not grpc.StatusCode.INTERNAL:
            assert type(rebuilt) is cls

    def test_field_is_in_metadata_and_message(self):
        """An InvalidRequestError's field reaches the client in metadata and message."""
        status = to_rpc_status(e.InvalidRequestError("is required", field="resource.object_id"))
        assert _info(status).metadata["field"] == "resource.object_id"
        assert "resource.object_id" in status.message

    def test_schema_position_is_in_metadata(self):
        """A schema error's line:column reaches the client."""
        status = to_rpc_status(e.SchemaParseError("unexpected `}`", position=e.SourcePosition(3, 7)))
        assert _info(status).metadata["position"] == "3:7"

    def test_unknown_exception_is_internal_with_a_generic_message(self, caplog):
        """A bug is INTERNAL with a generic message; the secret detail only reaches the log."""
        with caplog.at_level(logging.ERROR):
            status = to_rpc_status(KeyError("db-password-hunter2"), request_id="req-9")
        assert status.code == grpc.StatusCode.INTERNAL.value[0]
        assert status.message == INTERNAL_MESSAGE
        assert "hunter2" not in str(status)
        assert _info(status).metadata["request_id"] == "req-9"
        assert "hunter2" in caplog.text

    def test_bug_error_message_is_sanitized(self):
        """Even our own BugError's text is not shown to clients."""
        status = to_rpc_status(e.BugError("invariant broken at internal.py:42"))
        assert status.message == INTERNAL_MESSAGE

    def test_cancelled_and_timeout(self):
        """CancelledError → CANCELLED; TimeoutError → DEADLINE_EXCEEDED."""
        assert status_for(asyncio.CancelledError())[0] is grpc.StatusCode.CANCELLED
        assert status_for(TimeoutError())[0] is grpc.StatusCode.DEADLINE_EXCEEDED
