"""Shared helpers of the server tests: the schema, keys, an in-process server, builders."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest
from grpc import aio

from rebac.datastore.protocol import Datastore
from rebac.tuples import ObjectRef, RelationshipUpdate, SubjectRef, UpdateOperation, rel
from rebac.writes import write_schema
from rebac_server import convert
from rebac_server._gen.rebac.v1 import (
    core_pb2,
    permissions_pb2,
    permissions_pb2_grpc,
    relationships_pb2,
    relationships_pb2_grpc,
    schema_pb2_grpc,
)
from rebac_server.app import RunningServer, start_server
from rebac_server.auth import ApiKey, Scope, parse_secret
from rebac_server.config import ServerConfig

SCHEMA = """
definition user {}

definition group {
    relation member: user | group#member
}

definition document {
    relation viewer: user | user:* | group#member
    relation editor: user | group#member
    relation banned: user
    permission edit = editor
    permission view = (viewer + editor) - banned
}
"""

ADMIN_SECRET = "admin-secret-7f3a9c"
READER_SECRET = "reader-secret-1b2d4e"
WRITER_SECRET = "writer-secret-9e8d7c"

KEYS = (
    ApiKey("admin", parse_secret(ADMIN_SECRET), frozenset({Scope.ADMIN})),
    ApiKey("reader", parse_secret(READER_SECRET), frozenset({Scope.CHECK})),
    # Configured by hash, as an operator would who keeps secrets out of config files.
    ApiKey(
        "writer",
        parse_secret("sha256:" + parse_secret(WRITER_SECRET).hex()),
        frozenset({Scope.CHECK, Scope.WRITE}),
    ),
)


@dataclass
class Served:
    """A running server, its datastore, a channel to it and stubs on that channel."""

    running: RunningServer
    datastore: Datastore
    channel: aio.Channel
    audit_path: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    @property
    def permissions(self) -> permissions_pb2_grpc.PermissionsServiceStub:
        return permissions_pb2_grpc.PermissionsServiceStub(self.channel)

    @property
    def relationships(self) -> relationships_pb2_grpc.RelationshipsServiceStub:
        return relationships_pb2_grpc.RelationshipsServiceStub(self.channel)

    @property
    def schema(self) -> schema_pb2_grpc.SchemaServiceStub:
        return schema_pb2_grpc.SchemaServiceStub(self.channel)

    def audit_lines(self) -> list[str]:
        return self.audit_path.read_text().splitlines() if self.audit_path.exists() else []


@contextlib.asynccontextmanager
async def serve(
    datastore: Datastore, tmp_path: Path, *, schema: str | None = SCHEMA, **overrides: object
) -> AsyncIterator[Served]:
    """Start a server over `datastore` (writing `schema` first unless None)."""
    if schema is not None:
        await write_schema(datastore, schema)
    audit_path = tmp_path / "audit.log"
    config = replace(
        ServerConfig(listen="127.0.0.1:0", datastore="memory", audit_log=str(audit_path), grace_period=1.0),
        **overrides,  # type: ignore[arg-type]
    )
    running = await start_server(config, datastore)
    channel = aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield Served(running, datastore, channel, audit_path)
    finally:
        await channel.close()
        await running.stop(0.5)


def bearer(secret: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"bearer {secret}"),)


def code_of(info: pytest.ExceptionInfo[aio.AioRpcError]) -> grpc.StatusCode:
    return info.value.code()


FULL = core_pb2.Consistency(fully_consistent=True)


def obj(text: str) -> core_pb2.ObjectReference:
    return convert.object_to_proto(ObjectRef.parse(text))


def subj(text: str) -> core_pb2.SubjectReference:
    return convert.subject_to_proto(SubjectRef.parse(text))


def updates(op: UpdateOperation, *texts: str) -> relationships_pb2.WriteRelationshipsRequest:
    return relationships_pb2.WriteRelationshipsRequest(
        updates=[convert.update_to_proto(RelationshipUpdate(op, rel(t))) for t in texts]
    )


def touch(*texts: str) -> relationships_pb2.WriteRelationshipsRequest:
    return updates(UpdateOperation.TOUCH, *texts)


def check(
    resource: str, permission: str, subject: str, consistency: core_pb2.Consistency = FULL
) -> permissions_pb2.CheckRequest:
    return permissions_pb2.CheckRequest(
        consistency=consistency, resource=obj(resource), permission=permission, subject=subj(subject)
    )


HAS = permissions_pb2.PERMISSIONSHIP_HAS_PERMISSION
NO = permissions_pb2.PERMISSIONSHIP_NO_PERMISSION
