"""Garbage collection of dead row versions and old transaction rows.

The horizon is the xmin of the snapshot of the newest transaction older than the GC window
(default 24 h): every transaction below it had finished before that snapshot, so a row
whose ``deleted_xid`` is below the horizon is deleted in every revision that is still
readable. GC first raises the stored horizon (from then on `check_revision` calls older
revisions stale), then deletes at most `batch_size` rows per table per run.

`start_gc_task` runs it in the background for a server; each run logs what it removed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from rebac.datastore.postgres.errors import map_asyncpg_errors
from rebac.errors import DatastoreError

if TYPE_CHECKING:
    from rebac.datastore.postgres.datastore import PostgresDatastore

__all__ = ["GcResult", "collect_garbage", "start_gc_task"]

_log = logging.getLogger(__name__)

_NEW_HORIZON_SQL = """
SELECT pg_snapshot_xmin(snapshot)::text FROM rebac_transaction
WHERE timestamp < now() - $1::interval ORDER BY timestamp DESC LIMIT 1
"""
_RAISE_HORIZON_SQL = """
UPDATE rebac_gc_state SET horizon = greatest(horizon, $1::text::xid8) RETURNING horizon::text
"""
_DELETE_RELATIONSHIPS_SQL = """
DELETE FROM rebac_relationship WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM rebac_relationship
    WHERE deleted_xid < $1::text::xid8 LIMIT $2))
"""
# Relationships that expired before the window: they grant nothing at any revision a reader
# could use, so they go whatever their deleted_xid (no Watch event, as in SpiceDB).
_DELETE_EXPIRED_SQL = """
DELETE FROM rebac_relationship WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM rebac_relationship
    WHERE expiration < now() - $1::interval LIMIT $2))
"""
_DELETE_SCHEMAS_SQL = "DELETE FROM rebac_schema WHERE deleted_xid < $1::text::xid8"
# Keep the newest transaction row: the horizon of the next run is computed from it.
_DELETE_TRANSACTIONS_SQL = """
DELETE FROM rebac_transaction WHERE xid = ANY(ARRAY(
    SELECT xid FROM rebac_transaction
    WHERE xid < $1::text::xid8 AND xid < (SELECT max(xid) FROM rebac_transaction)
    ORDER BY xid LIMIT $2))
"""


@dataclass(frozen=True, slots=True)
class GcResult:
    """What one GC run removed, and the horizon it used (0: nothing old enough yet).

    `expired` counts relationship rows removed because they expired before the window.
    """

    horizon: int
    relationships: int
    transactions: int
    schemas: int
    expired: int = 0


async def collect_garbage(
    datastore: PostgresDatastore,
    *,
    window: timedelta | None = None,
    batch_size: int = 10_000,
) -> GcResult:
    """Run one bounded GC pass; `window` defaults to the datastore's `gc_window`.

    Deletes at most `batch_size` relationship rows, `batch_size` relationships that
    expired before the window, and `batch_size` transaction rows, so a large backlog is
    worked off over several runs. DatastoreError subclasses on failure.
    """
    window = datastore.options.gc_window if window is None else window
    pool = datastore.pool
    with map_asyncpg_errors():
        expired = int((await pool.execute(_DELETE_EXPIRED_SQL, window, batch_size)).split()[-1])
        candidate = await pool.fetchval(_NEW_HORIZON_SQL, window)
        if candidate is None:
            return GcResult(0, 0, 0, 0, expired)
        async with pool.acquire() as conn, conn.transaction():
            horizon = str(await conn.fetchval(_RAISE_HORIZON_SQL, candidate))
        relationships = await pool.execute(_DELETE_RELATIONSHIPS_SQL, horizon, batch_size)
        schemas = await pool.execute(_DELETE_SCHEMAS_SQL, horizon)
        transactions = await pool.execute(_DELETE_TRANSACTIONS_SQL, horizon, batch_size)
    result = GcResult(
        int(horizon),
        int(relationships.split()[-1]),
        int(transactions.split()[-1]),
        int(schemas.split()[-1]),
        expired,
    )
    _log.info(
        "rebac gc: horizon xid %d, removed %d relationship rows, %d expired relationships, "
        "%d transaction rows, %d schema rows",
        result.horizon,
        result.relationships,
        result.expired,
        result.transactions,
        result.schemas,
    )
    return result


def start_gc_task(
    datastore: PostgresDatastore,
    *,
    interval: timedelta = timedelta(minutes=3),
    batch_size: int = 10_000,
) -> asyncio.Task[None]:
    """Start a task that runs `collect_garbage` every `interval` until cancelled.

    A failed run is logged and retried at the next interval (the database may be down);
    cancel the task (and await it) on shutdown.
    """

    async def loop() -> None:
        while True:
            try:
                await collect_garbage(datastore, batch_size=batch_size)
            except DatastoreError as err:
                _log.warning("rebac gc failed, retrying in %s: %s", interval, err)
            await asyncio.sleep(interval.total_seconds())

    return asyncio.create_task(loop(), name="rebac-gc")
