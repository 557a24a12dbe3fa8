"""Caveats, expiration and contextual relationships through the gRPC API (real channel).

Check, CheckBulk, LookupResources and LookupSubjects map the request's context Struct and
contextual relationships; caveated and expiring relationships round-trip through Write,
Read and Export on both datastores.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2
from grpc import aio

from rebac.datastore.memory import MemoryDatastore
from rebac.datastore.postgres import PostgresDatastore
from rebac.tuples import Relationship
from rebac_server import convert
from rebac_server._gen.rebac.v1 import core_pb2, permissions_pb2, relationships_pb2
from tests.postgres_helpers import fresh_pg_schema
from tests.server.server_helpers import FULL, HAS, NO, Served, check, obj, serve, subj, touch

MAYBE = permissions_pb2.PERMISSIONSHIP_CONDITIONAL_PERMISSION

SCHEMA = """
use expiration

caveat weekday(day string) { day != "sat" && day != "sun" }
caveat big_enough(size int, minimum int) { size >= minimum }

definition user {}

definition doc {
  relation viewer: user | user with weekday | user with big_enough
  relation admin: user with expiration
  relation banned: user
  permission view = viewer - banned
  permission manage = admin
}
"""

FUTURE = datetime.now(UTC).replace(microsecond=0) + timedelta(days=365)
PAST = datetime(2001, 1, 1, tzinfo=UTC)
STORED = (
    "doc:1#viewer@user:ann[weekday]",
    'doc:2#viewer@user:ann[big_enough:{"minimum":10}]',
    "doc:3#viewer@user:bob",
    f"doc:1#admin@user:ann[expiration:{FUTURE.isoformat().replace('+00:00', 'Z')}]",
    "doc:1#admin@user:old[expiration:2001-01-01T00:00:00Z]",
)


@pytest.fixture(name="served")
async def _served(datastore_kind: str | None, tmp_path: Path) -> AsyncIterator[Served]:
    """A server holding SCHEMA and STORED, over memory and over PostgreSQL (conftest's kinds)."""
    if datastore_kind is not None:
        async with (
            fresh_pg_schema(datastore_kind) as dsn,
            PostgresDatastore.connect(dsn, migrate=True, max_pool_size=4, quantization=timedelta(0)) as ds,
            serve(ds, tmp_path, schema=SCHEMA) as running,
        ):
            await running.relationships.WriteRelationships(touch(*STORED))
            yield running
        return
    async with MemoryDatastore() as ds, serve(ds, tmp_path, schema=SCHEMA) as running:
        await running.relationships.WriteRelationships(touch(*STORED))
        yield running


def _struct(**values: object) -> struct_pb2.Struct:
    return convert.context_to_proto(values)


def _rel(text: str) -> core_pb2.Relationship:
    return convert.relationship_to_proto(Relationship.parse(text))


def _ctx_check(resource: str, permission: str, subject: str, **context: object) -> permissions_pb2.CheckRequest:
    request = check(resource, permission, subject)
    if context:
        request.context.CopyFrom(_struct(**context))
    return request


class TestCheckWithContext:
    async def test_missing_context_is_conditional(self, served: Served) -> None:
        """Without context a caveated grant is CONDITIONAL and names the missing parameter."""
        response = await served.permissions.Check(_ctx_check("doc:1", "view", "user:ann"))
        assert response.permissionship == MAYBE
        assert list(response.missing_context) == ["day"]

    async def test_context_struct_decides(self, served: Served) -> None:
        """The context Struct decides the caveat both ways."""
        assert (await served.permissions.Check(_ctx_check("doc:1", "view", "user:ann", day="mon"))).permissionship == HAS
        assert (await served.permissions.Check(_ctx_check("doc:1", "view", "user:ann", day="sun"))).permissionship == NO

    async def test_struct_numbers_reach_int_parameters(self, served: Served) -> None:
        """Struct numbers (doubles on the wire) evaluate int parameters; stored context wins."""
        request = _ctx_check("doc:2", "view", "user:ann", size=12, minimum=100)
        assert (await served.permissions.Check(request)).permissionship == HAS
        assert (await served.permissions.Check(_ctx_check("doc:2", "view", "user:ann", size=3))).permissionship == NO

    async def test_wrong_context_type_is_invalid_argument(self, served: Served) -> None:
        """A context value of the wrong type is INVALID_ARGUMENT naming the caveat, never an answer."""
        with pytest.raises(aio.AioRpcError) as info:
            await served.permissions.Check(_ctx_check("doc:1", "view", "user:ann", day=5))
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "weekday" in info.value.details()

    async def test_expired_admin_denied_live_admin_allowed(self, served: Served) -> None:
        """An expired admin is denied and a not-yet-expired one allowed."""
        assert (await served.permissions.Check(check("doc:1", "manage", "user:old"))).permissionship == NO
        assert (await served.permissions.Check(check("doc:1", "manage", "user:ann"))).permissionship == HAS


class TestContextualRelationships:
    async def test_check_contextual_counts_once(self, served: Served) -> None:
        """A contextual grant answers its Check and is gone for the next one."""
        request = check("doc:3", "view", "user:ann")
        request.contextual_relationships.append(_rel("doc:3#viewer@user:ann"))
        assert (await served.permissions.Check(request)).permissionship == HAS
        assert (await served.permissions.Check(check("doc:3", "view", "user:ann"))).permissionship == NO

    async def test_contextual_never_stored(self, served: Served) -> None:
        """ReadRelationships after a contextual check shows only what was written."""
        request = check("doc:3", "view", "user:ann")
        request.contextual_relationships.append(_rel("doc:3#viewer@user:ann"))
        await served.permissions.Check(request)
        read = served.relationships.ReadRelationships(
            relationships_pb2.ReadRelationshipsRequest(
                consistency=FULL, relationship_filter=core_pb2.RelationshipFilter(resource_type="doc", optional_resource_id="3")
            )
        )
        texts = [str(convert.relationship_from_proto(r.relationship, "r")) async for r in read]
        assert texts == ["doc:3#viewer@user:bob"]

    async def test_invalid_contextual_is_rejected(self, served: Served) -> None:
        """A contextual relationship the schema does not allow is FAILED_PRECONDITION naming it."""
        request = check("doc:3", "view", "user:ann")
        request.contextual_relationships.append(_rel("doc:3#banned@user:ann[weekday]"))
        with pytest.raises(aio.AioRpcError) as info:
            await served.permissions.Check(request)
        assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "doc:3#banned@user:ann" in info.value.details()

    async def test_too_many_contextual_is_resource_exhausted(self, served: Served) -> None:
        """More contextual relationships than the limit (100) is RESOURCE_EXHAUSTED."""
        request = check("doc:3", "view", "user:ann")
        request.contextual_relationships.extend(_rel(f"doc:3#viewer@user:u{i}") for i in range(101))
        with pytest.raises(aio.AioRpcError) as info:
            await served.permissions.Check(request)
        assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED

    async def test_check_bulk_context_and_contextual(self, served: Served) -> None:
        """CheckBulk maps each item's context and the shared contextual relationships."""
        items = [
            permissions_pb2.CheckBulkRequestItem(resource=obj("doc:1"), permission="view", subject=subj("user:ann"), context=_struct(day="mon")),
            permissions_pb2.CheckBulkRequestItem(resource=obj("doc:1"), permission="view", subject=subj("user:ann")),
            permissions_pb2.CheckBulkRequestItem(resource=obj("doc:3"), permission="view", subject=subj("user:ann")),
        ]
        request = permissions_pb2.CheckBulkRequest(consistency=FULL, items=items, contextual_relationships=[_rel("doc:3#viewer@user:ann")])
        response = await served.permissions.CheckBulk(request)
        got = [(p.item.permissionship, list(p.item.missing_context)) for p in response.pairs]
        assert got == [(HAS, []), (MAYBE, ["day"]), (HAS, [])]
        again = await served.permissions.CheckBulk(permissions_pb2.CheckBulkRequest(consistency=FULL, items=items[2:]))
        assert again.pairs[0].item.permissionship == NO

    async def test_lookup_resources_context_and_contextual(self, served: Served) -> None:
        """LookupResources marks caveated results CONDITIONAL and sees contextual grants for that call only."""
        request = permissions_pb2.LookupResourcesRequest(
            consistency=FULL, resource_object_type="doc", permission="view", subject=subj("user:ann"),
            contextual_relationships=[_rel("doc:3#viewer@user:ann")],
        )
        got = [(r.resource_object_id, r.permissionship, list(r.missing_context)) async for m in served.permissions.LookupResources(request) for r in m.results]
        assert got == [("1", MAYBE, ["day"]), ("2", MAYBE, ["size"]), ("3", HAS, [])]
        request.ClearField("contextual_relationships")
        request.context.CopyFrom(_struct(day="tue", size=50))
        decided = [r.resource_object_id async for m in served.permissions.LookupResources(request) for r in m.results]
        assert decided == ["1", "2"]

    async def test_lookup_subjects_context_and_contextual(self, served: Served) -> None:
        """LookupSubjects maps context and contextual relationships."""
        request = permissions_pb2.LookupSubjectsRequest(
            consistency=FULL, resource=obj("doc:1"), permission="view", subject_object_type="user",
            contextual_relationships=[_rel("doc:1#viewer@user:cat")],
        )
        got = [(r.subject.object.object_id, r.permissionship, list(r.missing_context)) async for m in served.permissions.LookupSubjects(request) for r in m.results]
        assert got == [("ann", MAYBE, ["day"]), ("cat", HAS, [])]
        request.ClearField("contextual_relationships")
        request.context.CopyFrom(_struct(day="sat"))
        assert [r async for r in served.permissions.LookupSubjects(request)] == []


class TestRoundTrip:
    async def test_read_returns_caveat_context_and_expiration(self, served: Served) -> None:
        """ReadRelationships returns each caveat, its stored context and the expiration as written."""
        read = served.relationships.ReadRelationships(
            relationships_pb2.ReadRelationshipsRequest(consistency=FULL, relationship_filter=core_pb2.RelationshipFilter(resource_type="doc"))
        )
        got = {convert.relationship_from_proto(r.relationship, "r") async for r in read}
        assert got == {Relationship.parse(t) for t in STORED}

    async def test_export_returns_caveat_context_and_expiration(self, served: Served) -> None:
        """ExportRelationships carries caveats, their context and expirations unchanged."""
        exported = served.relationships.ExportRelationships(relationships_pb2.ExportRelationshipsRequest(consistency=FULL))
        got = {convert.relationship_from_proto(r, "r") async for batch in exported for r in batch.relationships}
        assert got == {Relationship.parse(t) for t in STORED}


class TestClient:
    async def test_client_context_and_contextual(self, served: Served) -> None:
        """RebacClient passes context= and contextual= through check, bulk and both lookups."""
        from rebac.client import RebacClient  # noqa: PLC0415
        from rebac.engine.requests import Permissionship  # noqa: PLC0415
        from rebac.revision import FullyConsistent  # noqa: PLC0415

        full = FullyConsistent()
        async with RebacClient(served.address) as client:
            maybe = await client.check("doc:1", "view", "user:ann", consistency=full)
            assert (maybe.permissionship, maybe.missing_context, maybe.allowed) == (Permissionship.CONDITIONAL, ("day",), False)
            assert (await client.check("doc:1", "view", "user:ann", context={"day": "mon"}, consistency=full)).allowed
            grant = ["doc:3#viewer@user:ann"]
            assert (await client.check("doc:3", "view", "user:ann", contextual=grant, consistency=full)).allowed
            assert not (await client.check("doc:3", "view", "user:ann", consistency=full)).allowed
            bulk = await client.check_bulk([("doc:1", "view", "user:ann"), ("doc:3", "view", "user:ann")], context={"day": "mon"}, contextual=grant, consistency=full)
            assert [getattr(r, "allowed", None) for r in bulk] == [True, True]
            # Plain ids are definite grants only; the detailed stream marks the conditional ones.
            assert [r async for r in client.lookup_resources("doc", "view", "user:ann", contextual=grant, consistency=full)] == ["3"]
            found = [(f.resource_id, f.permissionship) async for f in client.lookup_resources_found("doc", "view", "user:ann", consistency=full)]
            assert found == [("1", Permissionship.CONDITIONAL), ("2", Permissionship.CONDITIONAL)]
            ids = [r async for r in client.lookup_resources("doc", "view", "user:ann", context={"day": "mon", "size": 11}, consistency=full)]
            assert ids == ["1", "2"]
            subjects = [(f.subject.id, f.permissionship) async for f in client.lookup_subjects("doc:1", "view", "user", contextual=["doc:1#viewer@user:cat"], consistency=full)]
            assert subjects == [("ann", Permissionship.CONDITIONAL), ("cat", Permissionship.HAS_PERMISSION)]
