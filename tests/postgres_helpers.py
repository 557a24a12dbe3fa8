"""PostgreSQL helpers shared by the fixtures and the tests: DSN parameters and throwaway schemas."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg


def with_query(dsn: str, **params: str) -> str:
    """`dsn` with extra query parameters (asyncpg passes unknown ones as server settings)."""
    parts = urlsplit(dsn)
    query = [*parse_qsl(parts.query), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query, safe="/")))


@contextlib.asynccontextmanager
async def fresh_pg_schema(server_dsn: str, *, prefix: str = "rebac_test") -> AsyncIterator[str]:
    """A DSN whose search_path is a new, empty PostgreSQL schema, dropped (with its tables) afterwards."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await conn.close()
    try:
        yield with_query(server_dsn, search_path=name)
    finally:
        conn = await asyncpg.connect(server_dsn)
        try:
            await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
        finally:
            await conn.close()
