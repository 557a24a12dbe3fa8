"""Numbered SQL migrations: discovery, status, and applying them in order.

Migrations are the files ``migrations/NNNN_name.sql`` shipped in this package. Each runs in
its own transaction together with the insert of its row into ``rebac_migration``, so a
failed migration leaves the database at the previous version. A transaction-scoped
advisory lock serializes concurrent migrators (two servers starting at once).

Tables are created unqualified, in the first schema of the connection's ``search_path``;
tests use that to give every test its own schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from rebac.datastore.postgres._connection import AnyConnection
from rebac.datastore.postgres.errors import map_asyncpg_errors
from rebac.errors import BugError, DatastoreNotMigratedError

__all__ = [
    "Migration",
    "available_migrations",
    "current_version",
    "ensure_migrated",
    "migrate",
    "migrate_connection",
]

_NAME_RE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('rebac_migrate:' || current_schema()))"
_VERSION_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS rebac_migration (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered migration: its version, name and SQL text."""

    version: int
    name: str
    sql: str

    def __str__(self) -> str:
        return f"{self.version:04d}_{self.name}"


def available_migrations() -> tuple[Migration, ...]:
    """The migrations shipped with this version of rebac, in version order.

    BugError if the numbering has a gap or a duplicate (a packaging mistake).
    """
    folder = resources.files("rebac.datastore.postgres") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME_RE.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise BugError(f"migration files are not numbered 1..n: {[str(m) for m in found]}")
    return tuple(found)


async def current_version(conn: AnyConnection) -> int:
    """The highest applied migration version in the connection's schema; 0 if none."""
    with map_asyncpg_errors():
        exists = await conn.fetchval("SELECT to_regclass('rebac_migration') IS NOT NULL")
        if not exists:
            return 0
        version = await conn.fetchval("SELECT max(version) FROM rebac_migration")
    return int(version or 0)


async def migrate_connection(conn: AnyConnection) -> list[Migration]:
    """Apply every pending migration on `conn`, in order; return those applied (maybe none).

    Idempotent. DatastoreNotMigratedError if the database is newer than this rebac knows.
    """
    applied: list[Migration] = []
    known = available_migrations()
    with map_asyncpg_errors():
        for migration in known:
            async with conn.transaction():
                await conn.execute(_LOCK_SQL)
                await conn.execute(_VERSION_TABLE_SQL)
                version = await current_version(conn)
                if version > len(known):
                    raise _too_new(version, len(known))
                if version >= migration.version:
                    continue
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO rebac_migration (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
                applied.append(migration)
    return applied


async def migrate(dsn: str) -> list[Migration]:
    """Connect to `dsn`, apply pending migrations, disconnect; return those applied.

    DatastoreUnavailableError if the server cannot be reached.
    """
    with map_asyncpg_errors():
        conn = await asyncpg.connect(dsn)
    try:
        return await migrate_connection(conn)
    finally:
        await conn.close()


async def ensure_migrated(conn: AnyConnection) -> None:
    """Raise DatastoreNotMigratedError unless the schema is at exactly the known version."""
    version = await current_version(conn)
    latest = len(available_migrations())
    if version > latest:
        raise _too_new(version, latest)
    if version < latest:
        raise DatastoreNotMigratedError(
            f"the database is at migration version {version}, this rebac needs {latest}: "
            "run `rebac migrate --dsn ...` (or connect with migrate=True)"
        )


def _too_new(version: int, latest: int) -> DatastoreNotMigratedError:
    return DatastoreNotMigratedError(
        f"the database is at migration version {version}, newer than the {latest} this rebac "
        "knows: upgrade rebac"
    )
