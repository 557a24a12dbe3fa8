"""Garbage collection on Postgres: dead versions go, live rows stay, old revisions turn stale."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from rebac.datastore.filters import RelationshipFilter
from rebac.datastore.postgres import PostgresDatastore, PostgresRevision, collect_garbage, start_gc_task
from rebac.datastore.protocol import Transaction
from rebac.errors import StaleRevisionError
from rebac.tuples import RelationshipUpdate, UpdateOperation, rel

pytestmark = pytest.mark.postgres


async def write(
    ds: PostgresDatastore, *texts: str, op: UpdateOperation = UpdateOperation.TOUCH
) -> PostgresRevision:
    updates = [RelationshipUpdate(op, rel(t)) for t in texts]

    async def body(tx: Transaction) -> None:
        await tx.write_relationships(updates)

    return await ds.read_write_tx(body)


async def dead_rows(ds: PostgresDatastore) -> int:
    async with ds.pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM rebac_relationship WHERE deleted_xid <> '9223372036854775807'"
            )
        )


async def read_all(ds: PostgresDatastore, revision: PostgresRevision) -> list[str]:
    return [str(r) async for r in ds.snapshot_reader(revision).query_relationships(RelationshipFilter())]


class TestCollectGarbage:
    async def test_nothing_is_collected_inside_the_window(
        self, postgres_datastore: PostgresDatastore
    ) -> None:
        """With the default 24 h window, fresh deletes stay and old revisions stay readable."""
        ds = postgres_datastore
        first = await write(ds, "document:1#viewer@user:ann")
        await write(ds, "document:1#viewer@user:ann", op=UpdateOperation.DELETE)
        result = await collect_garbage(ds)
        assert (result.relationships, result.transactions) == (0, 0)
        await ds.check_revision(first)
        assert await read_all(ds, first) == ["document:1#viewer@user:ann"]

    async def test_old_deletes_are_removed_in_bounded_batches(self, pg_dsn: str) -> None:
        """Past the window, GC removes dead rows at most batch_size per run, keeps live rows,
        and revisions below the horizon become stale."""
        async with PostgresDatastore.connect(pg_dsn, migrate=True, gc_window=timedelta(0)) as ds:
            first = await write(ds, *(f"document:{i}#viewer@user:ann" for i in range(3)))
            await write(ds, *(f"document:{i}#viewer@user:ann" for i in range(3)), op=UpdateOperation.DELETE)
            await write(ds, "document:9#viewer@user:bob")
            removed: list[int] = []
            # Other sessions on a shared server may hold old xids running for a moment,
            # which holds the horizon back; a few fresh transactions move it on.
            for i in range(50):
                # CREATE of a new key: a TOUCH would itself leave a dead version behind.
                await write(ds, f"folder:{i}#viewer@user:bob", op=UpdateOperation.CREATE)
                result = await collect_garbage(ds, batch_size=1)
                removed.append(result.relationships)
                if await dead_rows(ds) == 0:
                    break
                await asyncio.sleep(0.05)
            assert await dead_rows(ds) == 0
            assert max(removed) == 1
            with pytest.raises(StaleRevisionError):
                await ds.check_revision(first)
            assert (await read_all(ds, await ds.head_revision()))[0] == "document:9#viewer@user:bob"
            async with ds.pool.acquire() as conn:
                assert await conn.fetchval("SELECT count(*) FROM rebac_transaction") >= 1

    async def test_background_task_runs_and_cancels(self, pg_dsn: str) -> None:
        """start_gc_task collects periodically until cancelled."""
        async with PostgresDatastore.connect(pg_dsn, migrate=True, gc_window=timedelta(0)) as ds:
            await write(ds, "document:1#viewer@user:ann")
            await write(ds, "document:1#viewer@user:ann", op=UpdateOperation.DELETE)
            task = start_gc_task(ds, interval=timedelta(milliseconds=20))
            try:
                for i in range(100):
                    await write(ds, f"document:n{i}#viewer@user:ann", op=UpdateOperation.CREATE)
                    if await dead_rows(ds) == 0:
                        break
                    await asyncio.sleep(0.05)
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            assert await dead_rows(ds) == 0
