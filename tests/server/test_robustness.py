"""Hostile input: garbage bytes, oversized messages, deadlines; the server stays up."""

from __future__ import annotations

import random

import grpc
import pytest
from grpc import aio

from rebac.datastore.memory import MemoryDatastore
from tests.server.server_helpers import HAS, check, serve, touch

CHECK = "/rebac.v1.PermissionsService/Check"
LOOKUP = "/rebac.v1.PermissionsService/LookupResources"


def _raw(channel: aio.Channel, method: str) -> aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(method, request_serializer=None, response_deserializer=None)


async def _still_serving(served) -> None:
    await served.relationships.WriteRelationships(touch("document:1#viewer@user:ann"))
    assert (await served.permissions.Check(check("document:1", "view", "user:ann"))).permissionship == HAS


class TestHostileInput:
    async def test_garbage_bytes_are_invalid_argument(self, server):
        """Bytes that are not protobuf get INVALID_ARGUMENT (not INTERNAL) and the server stays up."""
        with pytest.raises(aio.AioRpcError) as info:
            await _raw(server.channel, CHECK)(b"\xff\xff\xff\xff\x0f")
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        await _still_serving(server)

    async def test_garbage_on_a_stream_is_invalid_argument(self, server):
        """A server-streaming RPC fed garbage fails INVALID_ARGUMENT."""
        call = server.channel.unary_stream(LOOKUP, request_serializer=None, response_deserializer=None)
        with pytest.raises(aio.AioRpcError) as info:
            _ = [m async for m in call(b"\x0a\xff\xff")]
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    async def test_fuzzed_messages_never_crash(self, server):
        """Random byte strings give INVALID_ARGUMENT or a normal answer code, never INTERNAL/UNKNOWN."""
        rng = random.Random(1234)
        allowed = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}
        for _ in range(60):
            payload = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
            codes = set()
            try:
                await _raw(server.channel, CHECK)(payload)
            except aio.AioRpcError as err:
                codes.add(err.code())
            assert codes <= allowed, (payload, codes)
        await _still_serving(server)

    async def test_oversized_message_is_resource_exhausted(self, tmp_path):
        """A request above max_message_bytes is RESOURCE_EXHAUSTED; the server stays up."""
        async with MemoryDatastore() as ds, serve(ds, tmp_path, max_message_bytes=2048) as served:
            with pytest.raises(aio.AioRpcError) as info:
                await _raw(served.channel, CHECK)(b"\x1a" + b"\x80\x40" + b"x" * 8192)
            assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            await _still_serving(served)

    async def test_expired_deadline_is_deadline_exceeded(self, server):
        """A call whose deadline has passed is DEADLINE_EXCEEDED and leaves the server serving."""
        with pytest.raises(aio.AioRpcError) as info:
            await server.permissions.Check(check("document:1", "view", "user:ann"), timeout=0.000001)
        assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        await _still_serving(server)

    async def test_request_id_is_echoed(self, server):
        """A sane x-request-id from the client comes back in the trailers."""
        call = server.permissions.Check(
            check("document:1", "view", "user:ann"), metadata=(("x-request-id", "abc-123"),)
        )
        await call
        assert ("x-request-id", "abc-123") in tuple(await call.trailing_metadata())
