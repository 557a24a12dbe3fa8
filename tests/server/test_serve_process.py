"""`rebac serve` as a real subprocess, driven by `rebac.client` over real channels.

One memory-datastore server process is shared by the module (starting Python with grpc
costs about a second per process); each test uses its own object ids, and the test that
revokes a key uses a key no other test needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc import aio

from rebac.cli import main as rebac_main
from rebac.client import RebacClient, SyncRebacClient
from rebac.datastore.postgres import migrate
from rebac.errors import (
    AuthenticationError,
    AuthorizationError,
    DatastoreNotMigratedError,
    InvalidRequestError,
    RelationshipExistsError,
    UnknownRelationError,
)
from rebac.revision import FullyConsistent
from rebac_server.app import _refuse_busy_address, prepare_database
from tests.postgres_helpers import fresh_pg_schema
from tests.server.server_helpers import SCHEMA

ROOT = Path(__file__).resolve().parents[2]
REBAC = [sys.executable, "-m", "rebac.cli"]
KEY = "e2e-admin-key-5c1f"
READER = "reader-secret-x"
REVOKED = "revoked-secret-q"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    """A running `rebac serve`: the process, its first stdout line, where its stderr goes."""

    process: subprocess.Popen[str]
    line: str
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@contextlib.contextmanager
def _serve(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> Iterator[Process]:
    """Start `rebac serve ARGS`, wait for its "listening on" line, SIGTERM it afterwards.

    stderr goes to a file (a pipe nobody reads would fill up and block a chatty server).
    """
    with tempfile.NamedTemporaryFile("w+", prefix="rebac-serve-", suffix=".err", delete=False) as err_file:
        stderr_path = Path(err_file.name)
        process = subprocess.Popen(
            [*REBAC, "serve", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err_file,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on" not in line:
            process.kill()
            process.wait(timeout=timeout)
            pytest.fail(f"rebac serve did not start: {line!r} {stderr_path.read_text()[-2000:]}")
        yield Process(process, line, stderr_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        stderr_path.unlink(missing_ok=True)


@dataclass
class Shared:
    """The module's memory server: address, key file and audit log paths, the process."""

    address: str
    key_file: Path
    audit: Path
    served: Process


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """One `rebac serve --datastore memory` with an admin key, a key file and debug logging."""
    tmp = tmp_path_factory.mktemp("serve")
    keys = tmp / "keys"
    keys.write_text(f"reader {READER} check\nrevokee {REVOKED} check\n")
    audit = tmp / "audit.log"
    port = _free_port()
    with _serve(
        "--datastore",
        "memory",
        "--listen",
        f"127.0.0.1:{port}",
        "--preshared-key",
        KEY,
        "--key-file",
        str(keys),
        "--audit-log",
        str(audit),
        "--log-level",
        "debug",
    ) as served:
        assert f"127.0.0.1:{port}" in served.line
        yield Shared(f"127.0.0.1:{port}", keys, audit, served)


class TestServeProcess:
    async def test_end_to_end_with_the_client(self, shared):
        """Schema, writes, checks, lookups and errors through the client against a real process."""
        async with RebacClient(shared.address, token=KEY) as client:
            await client.write_schema(SCHEMA)
            await client.touch("document:42#editor@user:ann", "group:eng#member@user:bob")
            await client.create("document:42#viewer@group:eng#member")
            result = await client.check("document:42", "edit", "user:ann")
            assert result.allowed
            assert result.checked_at
            assert not (await client.check("document:42", "edit", "user:bob")).allowed
            assert (await client.check("document:42", "view", "user:bob")).allowed
            assert [r async for r in client.lookup_resources("document", "view", "user:bob")] == ["42"]
            subjects = {f.subject.id async for f in client.lookup_subjects("document:42", "view", "user")}
            assert subjects == {"ann", "bob"}
            bulk = await client.check_bulk(
                [("document:42", "edit", "user:ann"), ("document:42", "nope", "user:ann")]
            )
            assert bulk[0].allowed  # type: ignore[union-attr]
            assert isinstance(bulk[1], UnknownRelationError)
            with pytest.raises(RelationshipExistsError):
                await client.create("document:42#viewer@group:eng#member")
            await client.delete("document:42#editor@user:ann")
            assert not (await client.check("document:42", "edit", "user:ann")).allowed
            assert "definition document" in await client.read_schema()
            exported = {str(r) async for r in client.export()}
            assert {"document:42#viewer@group:eng#member", "group:eng#member@user:bob"} <= exported
            assert "document:42#editor@user:ann" not in exported
        async with RebacClient(shared.address, token="wrong") as bad:
            with pytest.raises(AuthenticationError):
                await bad.check("document:42", "view", "user:bob")
        async with RebacClient(shared.address, token=READER) as reader:
            assert (await reader.check("document:42", "view", "user:bob")).allowed
            with pytest.raises(AuthorizationError):
                await reader.touch("document:1#viewer@user:bob")
        assert '"rpc":"Check"' in shared.audit.read_text()

    def test_sync_client(self, shared):
        """SyncRebacClient drives the same API without an event loop of its own."""
        with SyncRebacClient(shared.address, token=KEY) as client:
            client.write_schema(SCHEMA)
            client.touch("document:sync1#viewer@user:sam")
            assert client.check("document:sync1", "view", "user:sam").allowed
            assert not client.check("document:sync1", "view", "user:ann").allowed
            assert client.lookup_resources("document", "view", "user:sam") == ["sync1"]

    async def test_garbage_and_oversized_messages_leave_the_process_serving(self, shared):
        """Random bytes to every RPC and a message over the size limit get clean errors; the process lives."""
        rng = random.Random(99)
        methods = [
            "/rebac.v1.PermissionsService/Check",
            "/rebac.v1.PermissionsService/CheckBulk",
            "/rebac.v1.RelationshipsService/WriteRelationships",
            "/rebac.v1.SchemaService/WriteSchema",
        ]
        auth = (("authorization", f"bearer {KEY}"),)
        clean = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OK}
        async with aio.insecure_channel(shared.address) as channel:
            for method in methods:
                call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
                for _ in range(15):
                    payload = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 48)))
                    try:
                        await call(payload, metadata=auth)
                        code = grpc.StatusCode.OK
                    except aio.AioRpcError as err:
                        code = err.code()
                    assert code in clean, (method, payload, code)
            oversized = channel.unary_unary(methods[0], request_serializer=None, response_deserializer=None)
            with pytest.raises(aio.AioRpcError) as info:
                await oversized(b"\x1a\x80\x80\x80\x03" + b"x" * (5 * 1024 * 1024), metadata=auth)
            assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            with pytest.raises(aio.AioRpcError) as info:
                await oversized(b"", metadata=(("authorization", "bearer " + "k" * 6000),))
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert shared.served.process.poll() is None
        async with RebacClient(shared.address, token=KEY) as client:
            await client.write_schema(SCHEMA)
            await client.touch("document:fuzz#viewer@user:fay")
            assert (await client.check("document:fuzz", "view", "user:fay")).allowed

    def test_removed_key_is_refused_after_sighup(self, shared):
        """Removing a key from the key file and sending SIGHUP revokes it; other keys keep working."""
        with SyncRebacClient(shared.address, token=REVOKED) as revokee:
            assert not revokee.check("document:none", "view", "user:ann").allowed
        shared.key_file.write_text(f"reader {READER} check\n")
        shared.served.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        refused = False
        while not refused and time.monotonic() < deadline:
            with SyncRebacClient(shared.address, token=REVOKED) as revokee:
                try:
                    revokee.check("document:none", "view", "user:ann")
                except AuthenticationError:
                    refused = True
                else:
                    time.sleep(0.05)
        assert refused, "the removed key still worked 20 s after SIGHUP"
        assert "reloaded keys (2 in force)" in shared.served.stderr()
        with SyncRebacClient(shared.address, token=READER) as reader:
            assert not reader.check("document:none", "view", "user:ann").allowed
        with SyncRebacClient(shared.address, token=KEY) as admin:
            assert not admin.check("document:none", "view", "user:ann").allowed

    def test_nothing_logged_contains_a_key_even_at_debug_level(self, shared):
        """After good and bad calls, the debug-level server log and the audit log hold no secret."""
        for token in (KEY, READER, "guess-" + KEY, REVOKED):
            with (
                SyncRebacClient(shared.address, token=token) as client,
                contextlib.suppress(AuthenticationError, AuthorizationError),
            ):
                client.touch("document:log#viewer@user:lou")
        log = shared.served.stderr()
        assert "DEBUG" in log, "the server did not log at debug level, so this test would prove nothing"
        audit = shared.audit.read_text()
        assert '"key_id":"preshared-1"' in audit
        for secret in (KEY, READER, REVOKED):
            assert secret not in log
            assert secret not in audit

    def test_refuses_public_address_without_keys(self, capsys):
        """`rebac serve` on 0.0.0.0 without keys exits 2 with one error line naming the escape hatch."""
        code = rebac_main(["serve", "--datastore", "memory", "--listen", "0.0.0.0:0"])
        err = capsys.readouterr().err
        assert code == 2
        assert "--insecure-no-auth" in err
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def _checks_served(metrics: str) -> int:
    total = 0
    for line in metrics.splitlines():
        if line.startswith("rebac_grpc_requests_total") and "Check" in line and 'code="OK"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


@pytest.mark.postgres
class TestMultiWorker:
    async def test_write_through_one_connection_is_seen_by_every_worker(self, pg_server_dsn):
        """2 workers on PostgreSQL: after one write, fully consistent checks on new connections all allow.

        The kernel spreads new connections over the workers by a hash of their addresses, so a
        batch may land on one worker only; we keep opening connections (bounded in time) until
        each worker's own /metrics shows it answered at least one of these checks.
        """
        port, metrics_port = _free_port(), _free_port()
        async with fresh_pg_schema(pg_server_dsn) as dsn:
            with _serve(
                "--datastore-uri",
                dsn,
                "--migrate",
                "--workers",
                "2",
                "--listen",
                f"127.0.0.1:{port}",
                "--metrics-listen",
                f"127.0.0.1:{metrics_port}",
                "--audit-log",
                "off",
            ) as served:
                assert "workers: 2" in served.line
                async with RebacClient(f"127.0.0.1:{port}") as writer:
                    await writer.write_schema(SCHEMA)
                    token = await writer.touch("document:7#viewer@user:ann")
                assert token

                async def check_on_new_connection() -> bool:
                    # A local subchannel pool: without it, channels in one process share one TCP connection.
                    async with RebacClient(
                        f"127.0.0.1:{port}",
                        read_your_writes=False,
                        options=[("grpc.use_local_subchannel_pool", 1)],
                    ) as client:
                        result = await client.check(
                            "document:7", "view", "user:ann", consistency=FullyConsistent()
                        )
                        return result.allowed

                results: list[bool] = []
                per_worker = [0, 0]
                deadline = asyncio.get_running_loop().time() + 60
                while min(per_worker) == 0 and asyncio.get_running_loop().time() < deadline:
                    results += await asyncio.gather(*(check_on_new_connection() for _ in range(8)))
                    per_worker = [
                        _checks_served(await asyncio.to_thread(_scrape, metrics_port + i)) for i in range(2)
                    ]
                assert all(results), results
                assert sum(per_worker) == len(results)
                assert min(per_worker) > 0, f"one worker served none of {len(results)} new connections"
                scraped = await asyncio.to_thread(_scrape, metrics_port)
                assert 'rebac_datastore_query_duration_seconds_count{worker="0",operation="' in scraped
                assert 'rebac_datastore_pool_connections{worker="0",state="max"} ' in scraped


@pytest.mark.postgres
class TestMigrationPolicy:
    """`rebac serve --datastore-uri` serves only a database at exactly the known version."""

    async def _serve_exit(self, dsn: str, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
        # In-process: the refusal happens before anything listens, so no subprocess is needed.
        argv = ["serve", "--datastore-uri", dsn, "--listen", "127.0.0.1:0", "--audit-log", "off", *flags]
        code = await asyncio.to_thread(rebac_main, argv)
        return code, capsys.readouterr().err

    async def test_unmigrated_database_is_refused_with_the_way_out(self, pg_server_dsn, capsys):
        """An empty database: exit 3, one line naming `rebac migrate --dsn` and `--migrate`; nothing created."""
        async with fresh_pg_schema(pg_server_dsn) as dsn:
            code, err = await self._serve_exit(dsn, capsys)
            assert code == 3
            assert len(err.strip().splitlines()) == 1, err
            assert "migration version 0" in err
            assert "rebac migrate --dsn" in err
            assert "--migrate" in err
            assert "Traceback" not in err
            conn = await asyncpg.connect(dsn)
            try:
                assert await conn.fetchval("SELECT to_regclass('rebac_migration')") is None
            finally:
                await conn.close()

    async def test_newer_database_is_refused_even_with_migrate(self, pg_server_dsn, capsys):
        """A database migrated past what this rebac knows: exit 3 asking to upgrade rebac."""
        async with fresh_pg_schema(pg_server_dsn) as dsn:
            await migrate(dsn)
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute("INSERT INTO rebac_migration (version, name) VALUES (999, 'future')")
            finally:
                await conn.close()
            for flags in ((), ("--migrate",)):
                code, err = await self._serve_exit(dsn, capsys, *flags)
                assert code == 3, flags
                assert "upgrade rebac" in err
                assert len(err.strip().splitlines()) == 1, err

    async def test_migrate_applies_then_a_plain_start_passes_the_check(self, pg_server_dsn):
        """`prepare_database(migrate=True)` brings the database to the known version; then no refusal."""
        async with fresh_pg_schema(pg_server_dsn) as dsn:
            with pytest.raises(DatastoreNotMigratedError):
                await prepare_database(dsn, migrate=False)
            await prepare_database(dsn, migrate=True)
            await prepare_database(dsn, migrate=False)


@pytest.mark.slow
class TestEmbeddedPostgres:
    def test_serve_without_datastore_flags_uses_embedded_postgres_and_keeps_data(self):
        """No datastore flags: embedded PostgreSQL in the given directory, printed; data survives a restart."""
        # Not under pytest's tmp_path (mode 0700): as root the server runs as `embedded_postgres`.
        parent = Path(tempfile.mkdtemp(prefix="rebac-serve-embedded-"))
        data_dir = parent / "data"
        port = _free_port()
        args = ("--listen", f"127.0.0.1:{port}", "--workers", "1", "--audit-log", "off")
        try:
            with _serve(*args, timeout=120, env={"REBAC_DATA_DIR": str(data_dir)}) as served:
                assert f"embedded PostgreSQL data in {data_dir}" in served.line
                with SyncRebacClient(f"127.0.0.1:{port}") as client:
                    client.write_schema(SCHEMA)
                    client.touch("document:keep#viewer@user:ann")
                served.process.send_signal(signal.SIGTERM)
                assert served.process.wait(timeout=60) == 0
            with (
                _serve(*args, timeout=120, env={"REBAC_DATA_DIR": str(data_dir)}),
                SyncRebacClient(f"127.0.0.1:{port}") as client,
            ):
                assert client.check("document:keep", "view", "user:ann").allowed
        finally:
            shutil.rmtree(parent, ignore_errors=True)


class TestBusyAddress:
    def test_an_address_in_use_is_refused_with_one_clear_line(self):
        """Starting on a port another process listens on fails before anything starts, naming the address."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with pytest.raises(InvalidRequestError, match=f"127.0.0.1:{port}: the address is already in use"):
                _refuse_busy_address(f"127.0.0.1:{port}")
        _refuse_busy_address(f"127.0.0.1:{port}")  # free again: no error
        _refuse_busy_address("127.0.0.1:0")  # an ephemeral port is never busy
