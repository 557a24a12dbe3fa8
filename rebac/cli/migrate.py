"""`rebac migrate`: apply the pending PostgreSQL migrations (idempotent).

The database is ``--dsn``, else ``$REBAC_DSN``, else the embedded PostgreSQL in
``--data-dir`` / ``$REBAC_DATA_DIR`` (started for the command and stopped after it).
Prints each migration it applied, or that the database was already up to date.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from rebac.cli import EXIT_OK

__all__ = ["DSN_ENV", "register"]

DSN_ENV = "REBAC_DSN"
"""Environment variable with the PostgreSQL DSN used when --dsn is not given."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `migrate` to the CLI."""
    parser = subparsers.add_parser("migrate", help="apply pending PostgreSQL schema migrations")
    parser.add_argument("--dsn", default=os.environ.get(DSN_ENV), help=f"PostgreSQL DSN (env {DSN_ENV})")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="embedded PostgreSQL data directory when no DSN is given (env REBAC_DATA_DIR)",
    )
    parser.set_defaults(handler=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args.dsn, args.data_dir))


async def _run(dsn: str | None, data_dir: Path | None) -> int:
    # Imported here: asyncpg and the embedded server are not needed by offline commands.
    from rebac.datastore.postgres.embedded import EmbeddedPostgres  # noqa: PLC0415
    from rebac.datastore.postgres.migrate import available_migrations, migrate  # noqa: PLC0415

    latest = len(available_migrations())
    if dsn:
        applied = await migrate(dsn)
        where = "the database"
    else:
        embedded = EmbeddedPostgres(data_dir, migrate=False)
        print(f"embedded PostgreSQL data directory: {embedded.data_dir}")
        async with embedded:
            applied = await migrate(embedded.dsn)
        where = f"the embedded database in {embedded.data_dir}"
    for migration in applied:
        print(f"applied migration {migration}")
    if not applied:
        print(f"{where} is up to date (version {latest})")
    else:
        print(f"{where} is now at version {latest}")
    return EXIT_OK
