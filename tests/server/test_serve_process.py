"""`rebac serve` as a real subprocess, driven by `rebac.client` over real channels."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rebac.client import RebacClient, SyncRebacClient
from rebac.errors import (
    AuthenticationError,
    AuthorizationError,
    RelationshipExistsError,
    UnknownRelationError,
)
from rebac.revision import FullyConsistent
from tests.server.server_helpers import SCHEMA, fresh_pg_schema

ROOT = Path(__file__).resolve().parents[2]
REBAC = [sys.executable, "-m", "rebac.cli"]
KEY = "e2e-admin-key-5c1f"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _serve(*args: str, timeout: float = 60) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start `rebac serve ARGS`, wait for its "listening on" line, SIGTERM it afterwards."""
    process = subprocess.Popen(
        [*REBAC, "serve", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on" not in line:
            process.kill()
            _, err = process.communicate(timeout=timeout)
            pytest.fail(f"rebac serve did not start: {line!r} {err[-2000:]}")
        yield process, line
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


class TestServeProcess:
    async def test_memory_server_end_to_end_with_the_client(self, tmp_path):
        """Schema, writes, checks, lookups and errors through the client; SIGTERM exits 0."""
        port = _free_port()
        audit = tmp_path / "audit.log"
        keys = tmp_path / "keys"
        keys.write_text("reader reader-secret-x check\n")
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
        ) as (process, line):
            assert f"127.0.0.1:{port}" in line
            async with RebacClient(f"127.0.0.1:{port}", token=KEY) as client:
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
                assert len([r async for r in client.export()]) == 2
            async with RebacClient(f"127.0.0.1:{port}", token="wrong") as bad:
                with pytest.raises(AuthenticationError):
                    await bad.check("document:42", "view", "user:bob")
            async with RebacClient(f"127.0.0.1:{port}", token="reader-secret-x") as reader:
                assert (await reader.check("document:42", "view", "user:bob")).allowed
                with pytest.raises(AuthorizationError):
                    await reader.touch("document:1#viewer@user:bob")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        text = audit.read_text()
        assert '"rpc":"Check"' in text
        assert KEY not in text
        assert "reader-secret-x" not in text

    def test_sync_client(self, tmp_path):
        """SyncRebacClient drives the same API without an event loop of its own."""
        port = _free_port()
        with (
            _serve("--datastore", "memory", "--listen", f"127.0.0.1:{port}", "--audit-log", "off"),
            SyncRebacClient(f"127.0.0.1:{port}") as client,
        ):
            client.write_schema(SCHEMA)
            client.touch("document:1#viewer@user:ann")
            assert client.check("document:1", "view", "user:ann").allowed
            assert client.lookup_resources("document", "view", "user:ann") == ["1"]

    def test_refuses_public_address_without_keys(self):
        """Listening on 0.0.0.0 without keys exits non-zero with one error line."""
        result = subprocess.run(
            [*REBAC, "serve", "--datastore", "memory", "--listen", "0.0.0.0:0"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert "--insecure-no-auth" in result.stderr
        assert "Traceback" not in result.stderr


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
        """2 workers on PostgreSQL: after one write, fully consistent checks on 24 new connections all allow."""
        port, metrics_port = _free_port(), _free_port()
        async with fresh_pg_schema(pg_server_dsn) as dsn:
            with _serve(
                "--datastore-uri",
                dsn,
                "--workers",
                "2",
                "--listen",
                f"127.0.0.1:{port}",
                "--metrics-listen",
                f"127.0.0.1:{metrics_port}",
                "--audit-log",
                "off",
            ) as (_, line):
                assert "workers: 2" in line
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

                results = await asyncio.gather(*(check_on_new_connection() for _ in range(24)))
                assert all(results)
                per_worker = [_checks_served(_scrape(metrics_port + i)) for i in range(2)]
                assert sum(per_worker) == 24
                assert all(n > 0 for n in per_worker), per_worker
