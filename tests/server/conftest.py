"""Fixtures for the gRPC server tests: a real in-process grpc.aio server on port 0.

`server` runs once over a fresh MemoryDatastore and once over PostgreSQL (a fresh
schema), holding `SCHEMA`, without keys and with the audit log in a temp file;
`keyed_server` has three keys: `admin` (every scope), `reader` (check) and `writer`
(check, write). Shared helpers live in server_helpers.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from rebac.datastore.memory import MemoryDatastore
from rebac.datastore.postgres import PostgresDatastore
from tests.postgres_helpers import fresh_pg_schema
from tests.server.server_helpers import KEYS, Served, serve


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def datastore_kind(request: pytest.FixtureRequest) -> str | None:
    """None for memory, else the PostgreSQL server DSN (requested only when needed)."""
    return request.getfixturevalue("pg_server_dsn") if request.param == "postgres" else None


@pytest.fixture
async def server(datastore_kind: str | None, tmp_path: Path) -> AsyncIterator[Served]:
    """The default server, once over memory and once over PostgreSQL (a fresh schema)."""
    if datastore_kind is not None:
        async with (
            fresh_pg_schema(datastore_kind) as dsn,
            PostgresDatastore.connect(dsn, migrate=True, max_pool_size=4, quantization=timedelta(0)) as ds,
            serve(ds, tmp_path) as served,
        ):
            yield served
        return
    async with MemoryDatastore() as ds, serve(ds, tmp_path) as served:
        yield served


@pytest.fixture
async def keyed_server(tmp_path: Path) -> AsyncIterator[Served]:
    async with MemoryDatastore() as ds, serve(ds, tmp_path, keys=KEYS) as served:
        yield served
