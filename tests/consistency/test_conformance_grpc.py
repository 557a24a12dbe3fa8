"""Every conformance case through the gRPC API: Check, LookupResources, LookupSubjects via RebacClient.

One in-process server per module (port 0) over one memory datastore; each case replaces
the world (delete the previous relationships, write the schema, import) rather than
swapping datastores, because the server's engine caches are keyed by revision and a fresh
memory datastore would restart at the same revision numbers. A subset of cases runs the
same way on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio

from rebac.client import RebacClient
from rebac.datastore.memory import MemoryDatastore
from rebac.datastore.postgres import PostgresDatastore
from rebac.datastore.protocol import Datastore
from rebac_server.app import start_server
from rebac_server.config import ServerConfig
from tests.consistency.case_runner import GrpcEvaluator, is_large, replace_world, run_case
from tests.consistency.conformance_data import CASES, case_param, expected_load_error, skip_reason

pytestmark = pytest.mark.asyncio(loop_scope="module")

_RUNNABLE = [c for c in CASES if not expected_load_error(c) and skip_reason(c) is None]
# Every fourth small case with checks: a bounded, deterministic slice for the PostgreSQL run.
_POSTGRES_SUBSET = [c for c in _RUNNABLE if c["checks"] and not is_large(c)][::4]


@dataclass
class _World:
    """A served datastore, a client to it, and the case it currently holds."""

    datastore: Datastore
    client: RebacClient
    current: dict[str, Any] | None = None

    async def run(self, case: dict[str, Any]) -> list[str]:
        previous, self.current = self.current, case
        await replace_world(self.datastore, previous, case)
        return await run_case(case, GrpcEvaluator(self.client))


async def _serve(ds: Datastore) -> AsyncIterator[_World]:
    config = ServerConfig(listen="127.0.0.1:0", datastore="memory", audit_log=None, grace_period=1.0)
    running = await start_server(config, ds)
    client = RebacClient(f"127.0.0.1:{running.port}", timeout=30.0, max_retries=0)
    try:
        yield _World(ds, client)
    finally:
        await client.close()
        await running.stop(0.5)


@pytest_asyncio.fixture(name="memory_world", scope="module", loop_scope="module")
async def _memory_world() -> AsyncIterator[_World]:
    async with MemoryDatastore() as ds:
        async for world in _serve(ds):
            yield world


@pytest_asyncio.fixture(name="postgres_world", loop_scope="module")
async def _postgres_world(pg_dsn: str) -> AsyncIterator[_World]:
    async with PostgresDatastore.connect(pg_dsn, migrate=True, max_pool_size=4, quantization=timedelta(0)) as ds:
        async for world in _serve(ds):
            yield world


class TestConformanceCasesThroughGrpc:
    @pytest.mark.parametrize("case", [case_param(c) for c in _RUNNABLE])
    async def test_case_holds_through_the_server(self, case: dict[str, Any], memory_world: _World) -> None:
        """Each case's checks and expected lookups, asked over gRPC, give exactly the expected answers."""
        mismatches = await memory_world.run(case)
        assert not mismatches, "\n".join(mismatches[:50])


@pytest.mark.postgres
class TestConformanceCasesThroughGrpcOnPostgres:
    # The WALK_SQL collation bug (see test_conformance_engine.py); strict: fails once fixed.
    async def test_subset_holds_through_the_server_on_postgres(self, postgres_world: _World) -> None:
        """A deterministic quarter of the small cases, served from PostgreSQL, give exactly the expected answers."""
        failures: list[str] = []
        for case in _POSTGRES_SUBSET:
            failures.extend(f"{case['id']}: {m}" for m in await postgres_world.run(case))
        assert not failures, "\n".join(failures[:50])
