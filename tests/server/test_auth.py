"""Bearer keys: unit tests of the key ring and security tests over a real channel."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rebac.datastore.memory import MemoryDatastore
from rebac.errors import AuthenticationError, AuthorizationError, InvalidRequestError
from rebac_server._gen.rebac.v1 import permissions_pb2, schema_pb2
from rebac_server.auth import ApiKey, KeyRing, Scope, parse_key_file, parse_secret
from rebac_server.background import reload_key_file
from rebac_server.config import ServerConfig, read_key_file
from tests.server.server_helpers import (
    ADMIN_SECRET,
    HAS,
    READER_SECRET,
    WRITER_SECRET,
    bearer,
    check,
    serve,
    subj,
    touch,
)

CHECK = "/rebac.v1.PermissionsService/Check"
WRITE = "/rebac.v1.RelationshipsService/WriteRelationships"
SCHEMA_WRITE = "/rebac.v1.SchemaService/WriteSchema"


class TestKeyRing:
    ring = KeyRing([ApiKey("r", parse_secret("s3cret"), frozenset({Scope.CHECK}))])

    def test_valid_bearer_authenticates(self):
        """`bearer <secret>` (any case of "bearer") yields the key."""
        assert self.ring.authenticate("Bearer s3cret").id == "r"

    @pytest.mark.parametrize("header", [None, "", "s3cret", "basic s3cret", "bearer wrong", "bearer "])
    def test_missing_or_wrong_credentials_fail(self, header):
        """No header, another scheme or an unknown secret is AuthenticationError."""
        with pytest.raises(AuthenticationError):
            self.ring.authenticate(header)

    def test_scope_is_enforced_and_admin_allows_all(self):
        """A check key cannot write; an admin key can do anything, unknown methods too."""
        key = self.ring.authenticate("bearer s3cret")
        KeyRing.authorize(key, CHECK)
        with pytest.raises(AuthorizationError):
            KeyRing.authorize(key, WRITE)
        with pytest.raises(AuthorizationError):
            KeyRing.authorize(key, "/rebac.v1.Future/Thing")
        admin = ApiKey("a", b"x" * 32, frozenset({Scope.ADMIN}))
        KeyRing.authorize(admin, SCHEMA_WRITE)
        KeyRing.authorize(admin, "/rebac.v1.Future/Thing")

    def test_sha256_form_matches_the_secret(self):
        """A key configured as sha256:HEX accepts the secret whose digest that is."""
        digest = hashlib.sha256(b"hunter2").hexdigest()
        ring = KeyRing([ApiKey("h", parse_secret(f"sha256:{digest}"))])
        assert ring.authenticate("bearer hunter2").id == "h"

    def test_bad_sha256_is_rejected(self):
        """`sha256:` with the wrong length is a config error."""
        with pytest.raises(InvalidRequestError, match="64 hex"):
            parse_secret("sha256:abcd")

    def test_key_repr_hides_the_digest(self):
        """Printing a key never shows its digest."""
        key = ApiKey("k", parse_secret("topsecret"))
        assert key.digest.hex() not in repr(key)


class TestKeyFile:
    def test_parses_lines_comments_and_scopes(self):
        """Blank lines and # comments are skipped; scopes are comma separated."""
        keys = parse_key_file("# ops keys\n\nreader abc check\nci sha256:" + "0" * 64 + " write,schema\n")
        assert [(k.id, k.scopes) for k in keys] == [
            ("reader", frozenset({Scope.CHECK})),
            ("ci", frozenset({Scope.WRITE, Scope.SCHEMA})),
        ]

    def test_errors_name_the_line_but_not_the_secret(self):
        """An unknown scope is reported with its line number and without the secret."""
        with pytest.raises(InvalidRequestError) as info:
            parse_key_file("a supersecret check\nb othersecret fly\n", source="keys.txt")
        assert "keys.txt:2" in str(info.value)
        assert "othersecret" not in str(info.value)

    def test_duplicate_ids_are_refused(self):
        """Two keys with one id are a config error."""
        with pytest.raises(InvalidRequestError, match="duplicate"):
            parse_key_file("a s1 check\na s2 check\n")


class TestSecurityOverTheWire:
    async def test_no_key_is_unauthenticated(self, keyed_server):
        """A call without metadata is UNAUTHENTICATED."""
        with pytest.raises(aio.AioRpcError) as info:
            await keyed_server.permissions.Check(check("document:1", "view", "user:ann"))
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED

    async def test_wrong_key_is_unauthenticated(self, keyed_server):
        """An unknown key is UNAUTHENTICATED."""
        with pytest.raises(aio.AioRpcError) as info:
            await keyed_server.permissions.Check(
                check("document:1", "view", "user:ann"), metadata=bearer("nope")
            )
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED

    async def test_read_only_key_cannot_write(self, keyed_server):
        """A check-scoped key writing is PERMISSION_DENIED and nothing is written."""
        with pytest.raises(aio.AioRpcError) as info:
            await keyed_server.relationships.WriteRelationships(
                touch("document:1#viewer@user:ann"), metadata=bearer(READER_SECRET)
            )
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
        response = await keyed_server.permissions.Check(
            check("document:1", "view", "user:ann"), metadata=bearer(READER_SECRET)
        )
        assert response.permissionship != HAS

    async def test_writer_cannot_change_the_schema(self, keyed_server):
        """A write-scoped key (configured as a hash) writes relationships but not schemas."""
        await keyed_server.relationships.WriteRelationships(
            touch("document:1#viewer@user:ann"), metadata=bearer(WRITER_SECRET)
        )
        with pytest.raises(aio.AioRpcError) as info:
            await keyed_server.schema.WriteSchema(
                schema_pb2.WriteSchemaRequest(schema="definition user {}"), metadata=bearer(WRITER_SECRET)
            )
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED

    async def test_streams_are_protected_too(self, keyed_server):
        """A server stream without a key fails UNAUTHENTICATED before any result."""
        request = permissions_pb2.LookupResourcesRequest(
            resource_object_type="document", permission="view", subject=subj("user:ann")
        )
        with pytest.raises(aio.AioRpcError) as info:
            _ = [r async for r in keyed_server.permissions.LookupResources(request)]
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED

    async def test_health_needs_no_key(self, keyed_server):
        """The standard health check answers SERVING without credentials."""
        stub = health_pb2_grpc.HealthStub(keyed_server.channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service="rebac.v1.PermissionsService"))
        assert response.status == health_pb2.HealthCheckResponse.SERVING

    async def test_nothing_logged_contains_a_key(self, keyed_server, caplog):
        """After good and bad calls, neither the audit log nor the server log holds a secret."""
        with caplog.at_level(logging.DEBUG):
            await keyed_server.relationships.WriteRelationships(
                touch("document:1#viewer@user:ann"), metadata=bearer(ADMIN_SECRET)
            )
            await keyed_server.permissions.Check(
                check("document:1", "view", "user:ann"), metadata=bearer(READER_SECRET)
            )
            for secret in ("guess-" + ADMIN_SECRET, READER_SECRET):
                with pytest.raises(aio.AioRpcError):
                    await keyed_server.relationships.WriteRelationships(
                        touch("document:2#viewer@user:ann"), metadata=bearer(secret)
                    )
        audit = "\n".join(keyed_server.audit_lines())
        assert '"key_id":"admin"' in audit
        assert '"key_id":"reader"' in audit
        for secret in (ADMIN_SECRET, READER_SECRET, WRITER_SECRET):
            assert secret not in audit
            assert secret not in caplog.text


class TestKeyReload:
    async def _check_code(self, served, secret: str) -> grpc.StatusCode:
        try:
            await served.permissions.Check(check("document:1", "view", "user:ann"), metadata=bearer(secret))
        except aio.AioRpcError as err:
            return err.code()
        return grpc.StatusCode.OK

    async def test_removed_key_is_refused_and_others_keep_working(self, tmp_path):
        """After the key file loses a key and is reloaded, that key is UNAUTHENTICATED; the rest work."""
        keys = tmp_path / "keys"
        keys.write_text("old old-secret-1 check\nstays stays-secret-2 check\n")
        config = _keyed_config(keys)
        async with MemoryDatastore() as ds, serve(ds, tmp_path, keys=config.keys, key_file=keys) as served:
            assert await self._check_code(served, "old-secret-1") is grpc.StatusCode.OK
            keys.write_text("stays stays-secret-2 check\nnew new-secret-3 check\n")
            assert reload_key_file(config, served.running.interceptor)
            assert await self._check_code(served, "old-secret-1") is grpc.StatusCode.UNAUTHENTICATED
            assert await self._check_code(served, "stays-secret-2") is grpc.StatusCode.OK
            assert await self._check_code(served, "new-secret-3") is grpc.StatusCode.OK
            assert await self._check_code(served, "admin-flag-key") is grpc.StatusCode.OK

    async def test_invalid_file_keeps_the_old_keys(self, tmp_path, capsys):
        """A reload of a broken key file changes nothing and says why without echoing secrets."""
        keys = tmp_path / "keys"
        keys.write_text("old old-secret-1 check\n")
        config = _keyed_config(keys)
        async with MemoryDatastore() as ds, serve(ds, tmp_path, keys=config.keys, key_file=keys) as served:
            keys.write_text("old old-secret-1 fly\n")
            assert not reload_key_file(config, served.running.interceptor)
            assert await self._check_code(served, "old-secret-1") is grpc.StatusCode.OK
        err = capsys.readouterr().err
        assert "keeping the old keys" in err
        assert "old-secret-1" not in err

    async def test_emptied_key_ring_refuses_everyone_instead_of_opening(self, tmp_path):
        """Reloading to zero keys fails closed: every call is UNAUTHENTICATED, none runs unauthenticated."""
        keys = tmp_path / "keys"
        keys.write_text("only only-secret-1 admin\n")
        config = replace(_keyed_config(keys), keys=parse_key_file(keys.read_text()))
        async with MemoryDatastore() as ds, serve(ds, tmp_path, keys=config.keys, key_file=keys) as served:
            keys.write_text("# everyone revoked\n")
            assert reload_key_file(config, served.running.interceptor)
            with pytest.raises(aio.AioRpcError) as info:
                await served.permissions.Check(check("document:1", "view", "user:ann"))
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert await self._check_code(served, "only-secret-1") is grpc.StatusCode.UNAUTHENTICATED

    def test_key_file_ids_may_not_take_the_preshared_prefix(self, tmp_path):
        """A key file id `preshared-…` is refused (it would survive reloads as a flag key)."""
        keys = tmp_path / "keys"
        keys.write_text("preshared-9 s3cret check\n")
        with pytest.raises(InvalidRequestError, match="reserved"):
            read_key_file(keys)


def _keyed_config(key_file):
    preshared = ApiKey("preshared-1", parse_secret("admin-flag-key"), frozenset({Scope.ADMIN}))
    return ServerConfig(keys=(preshared, *read_key_file(key_file)), key_file=key_file)
