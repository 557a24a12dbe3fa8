"""The one server interceptor, around every RPC (unary and streaming alike).

It handles the request id, authentication and authorization, deadlines, uniform error
mapping, metrics, and (when tracing is on) one span per call named ``rebac.rpc/<Method>``
whose parent is the caller's W3C ``traceparent`` metadata, if sent.

Order inside a call: set the request context (id from ``x-request-id`` or a new one) →
authenticate the bearer key (UNAUTHENTICATED) → authorize its scope for the method
(PERMISSION_DENIED) → run the handler under the call's deadline → map any exception
through `rebac_server.errors` (INTERNAL for bugs, details only in the log) → count the
call in `Metrics`. Requests that fail to deserialize are answered INVALID_ARGUMENT
(grpc's default would be INTERNAL), after authentication so that anonymous callers learn
nothing about the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from rebac.errors import InvalidRequestError
from rebac_server.auth import KeyRing, is_public
from rebac_server.errors import to_grpc_status
from rebac_server.metrics import Metrics
from rebac_server.request_context import RequestInfo, reset_current_request, set_current_request
from rebac_server.tracing import Tracer

__all__ = ["REQUEST_ID_METADATA", "ServerInterceptor"]

logger = logging.getLogger("rebac_server")

REQUEST_ID_METADATA = "x-request-id"
"""Metadata key of the request id (taken from the client if sane, always sent back)."""

_SANE_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")
_TRACE_METADATA = frozenset({"traceparent", "tracestate"})


class _RequestIds:
    """Unique request ids without a random read per call: a random per-process prefix + a counter.

    The prefix is drawn again in a forked child (``os.register_at_fork``), so worker
    processes never share ids. Ids are 32 hex digits, like a uuid4's hex form.
    """

    def __init__(self) -> None:
        self._renew()
        os.register_at_fork(after_in_child=self._renew)

    def _renew(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFFFFFF:016x}"


_new_request_id = _RequestIds()


class _Malformed:
    """Stands in for a request message that failed to deserialize."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


def _safe(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # noqa: BLE001 - any decode failure is the caller's malformed message
            return _Malformed(type(exc).__name__)

    return deserialize


def _check_message(message: Any) -> Any:
    if isinstance(message, _Malformed):
        raise InvalidRequestError(
            f"the request message is not valid protobuf ({message.error})", field="request"
        )
    return message


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for message in requests:
        yield _check_message(message)


class _Call:
    """Bookkeeping for one call: context vars, auth, error mapping, metrics."""

    __slots__ = ("_authorization", "_interceptor", "_method", "_token", "code", "info", "trace_carrier")

    def __init__(
        self, interceptor: ServerInterceptor, method: str, context: aio.ServicerContext[Any, Any]
    ) -> None:
        self._interceptor = interceptor
        self._method = method
        request_id = ""
        authorization: str | None = None
        self.trace_carrier: dict[str, str] = {}
        for key, value in context.invocation_metadata() or ():
            if key == REQUEST_ID_METADATA and isinstance(value, str) and _SANE_ID.fullmatch(value):
                request_id = value
            elif key == "authorization" and isinstance(value, str):
                authorization = value
            elif key in _TRACE_METADATA and isinstance(value, str):
                self.trace_carrier[key] = value
        self.info = RequestInfo(request_id or _new_request_id(), method)
        self._token = set_current_request(self.info)
        self.code = grpc.StatusCode.OK
        self._authorization = authorization

    def authenticate(self) -> None:
        """AuthN then AuthZ for this call's method; raises Authentication/AuthorizationError."""
        keyring = self._interceptor.keyring
        if not keyring.enabled:
            self.info.key_id = "anonymous"
        elif not is_public(self._method):
            key = keyring.authenticate(self._authorization)
            self.info.key_id = key.id
            keyring.authorize(key, self._method)

    async def fail(self, exc: BaseException, context: aio.ServicerContext[Any, Any]) -> None:
        """Abort the call with the mapped status of `exc` (raises grpc's AbortError)."""
        if isinstance(exc, asyncio.CancelledError) and context.cancelled():
            self.code = grpc.StatusCode.CANCELLED
            raise exc
        status = to_grpc_status(exc, request_id=self.info.request_id)
        self.code = status.code
        if status.code is not grpc.StatusCode.INTERNAL:
            logger.info("%s failed: %s (request %s)", self._method, status.code.name, self.info.request_id)
        await context.abort(
            status.code,
            status.details,
            trailing_metadata=(*status.trailing_metadata, (REQUEST_ID_METADATA, self.info.request_id)),
        )

    def succeed(self, context: aio.ServicerContext[Any, Any]) -> None:
        """Attach the request id to a successful call's trailers."""
        context.set_trailing_metadata(((REQUEST_ID_METADATA, self.info.request_id),))

    def span(self) -> contextlib.AbstractContextManager[Any]:
        """The tracing span of this call (a no-op when tracing is off)."""
        return self._interceptor.tracer.span(
            "rebac.rpc/" + self._method.rsplit("/", 1)[-1],
            {"rpc.method": self._method, "rebac.request_id": self.info.request_id},
            carrier=self.trace_carrier,
        )

    def finish(self) -> None:
        """Count the call and clear the request context."""
        metrics = self._interceptor.metrics
        if metrics is not None:
            metrics.observe(self._method, self.code.name, time.perf_counter() - self.info.started)
        reset_current_request(self._token)


def _deadline(context: aio.ServicerContext[Any, Any]) -> float | None:
    remaining = context.time_remaining()
    return remaining if remaining is not None and remaining < 1e8 else None


class ServerInterceptor(aio.ServerInterceptor):  # type: ignore[type-arg]  # the stubs make it generic
    """Wraps every handler; `keyring` may be empty (auth off), `metrics` may be None.

    `keyring` may be replaced at any time (key reload); each call uses the ring in force
    when it started.
    """

    def __init__(
        self, keyring: KeyRing, metrics: Metrics | None = None, tracer: Tracer = Tracer.NOOP
    ) -> None:
        self.keyring = keyring
        self.metrics = metrics
        self.tracer = tracer

    async def intercept_service(  # type: ignore[override]  # None: no such method (UNIMPLEMENTED)
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The handler for the call, wrapped (unknown methods fall through to UNIMPLEMENTED)."""
        handler: Any = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        deserializer = _safe(handler.request_deserializer)
        serializer = handler.response_serializer
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary, _check_message), deserializer, serializer
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.stream_unary, _checked_stream), deserializer, serializer
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream, _check_message), deserializer, serializer
            )
        return grpc.stream_stream_rpc_method_handler(
            self._stream(method, handler.stream_stream, _checked_stream), deserializer, serializer
        )

    def _unary(
        self, method: str, behavior: Callable[[Any, Any], Awaitable[Any]], check: Callable[[Any], Any]
    ) -> Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]:
        async def wrapped(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            call = _Call(self, method, context)
            try:
                with call.span():
                    call.authenticate()
                    async with asyncio.timeout(_deadline(context)):
                        response = await behavior(check(request), context)
            except aio.AbortError:
                raise
            except BaseException as exc:
                await call.fail(exc, context)
                raise  # pragma: no cover - fail() always raises
            else:
                call.succeed(context)
                return response
            finally:
                call.finish()

        return wrapped

    def _stream(
        self, method: str, behavior: Callable[[Any, Any], AsyncIterator[Any]], check: Callable[[Any], Any]
    ) -> Callable[[Any, aio.ServicerContext[Any, Any]], AsyncIterator[Any]]:
        async def wrapped(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            call = _Call(self, method, context)
            try:
                with call.span():
                    call.authenticate()
                    async for response in behavior(check(request), context):
                        yield response
                call.succeed(context)
            except aio.AbortError:
                raise
            except BaseException as exc:
                await call.fail(exc, context)
                raise  # pragma: no cover - fail() always raises
            finally:
                call.finish()

        return wrapped
