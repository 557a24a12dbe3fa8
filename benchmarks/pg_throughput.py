"""Measure the Postgres datastore: bulk import rate, single-relationship write tx/s, batched
forward query latency. Runs in a throwaway schema of REBAC_TEST_DSN (default: the local test
server) and drops it afterwards.

    .venv/bin/python benchmarks/pg_throughput.py [--relationships 200000] [--writes 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import asyncpg

from rebac.datastore.filters import RelationshipFilter
from rebac.datastore.postgres import PostgresDatastore
from rebac.datastore.protocol import Transaction
from rebac.tuples import ObjectRef, Relationship, RelationshipUpdate, SubjectRef, UpdateOperation

DSN = os.environ.get("REBAC_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def relationship(i: int) -> Relationship:
    return Relationship(ObjectRef("document", f"d{i}"), "viewer", SubjectRef("user", f"u{i % 5003}"))


async def bulk_import(ds: PostgresDatastore, total: int, batch: int) -> float:
    start = time.perf_counter()
    for offset in range(0, total, batch):

        async def rows(offset: int = offset) -> AsyncIterator[Relationship]:
            for i in range(offset, min(offset + batch, total)):
                yield relationship(i)

        async def body(tx: Transaction, rows=rows) -> None:  # noqa: ANN001
            await tx.bulk_load(rows())

        await ds.read_write_tx(body)
    return total / (time.perf_counter() - start)


async def single_writes(ds: PostgresDatastore, total: int, concurrency: int) -> float:
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            update = [
                RelationshipUpdate(
                    UpdateOperation.CREATE,
                    Relationship(ObjectRef("folder", f"f{i}"), "viewer", SubjectRef("user", "ann")),
                )
            ]

            async def body(tx: Transaction, update=update) -> None:  # noqa: ANN001
                await tx.write_relationships(update)

            await ds.read_write_tx(body)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - start)


async def forward_latency(ds: PostgresDatastore, total: int, queries: int, ids: int) -> list[float]:
    head = await ds.head_revision()
    reader = ds.snapshot_reader(head)
    latencies = []
    for q in range(queries):
        batch = tuple(f"d{(q * 7919 + k * 104729) % total}" for k in range(ids))
        start = time.perf_counter()
        found = [r async for r in reader.query_relationships(RelationshipFilter("document", batch, "viewer"))]
        latencies.append((time.perf_counter() - start) * 1000)
        assert len(found) == len(set(batch))
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--relationships", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    schema = f"rebac_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(DSN)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in DSN else "?"
    dsn = f"{DSN}{sep}{urlencode({'search_path': schema})}"
    try:
        async with PostgresDatastore.connect(dsn, migrate=True, max_pool_size=16) as ds:
            rate = await bulk_import(ds, args.relationships, args.batch)
            print(f"bulk import (COPY, batches of {args.batch}): {rate:,.0f} relationships/s")
            async with ds.pool.acquire() as conn:
                await conn.execute("ANALYZE rebac_relationship")
            tps = await single_writes(ds, args.writes, args.concurrency)
            print(f"single-relationship write transactions ({args.concurrency} tasks): {tps:,.0f} tx/s")
            for ids in (1, 100):
                lat = sorted(await forward_latency(ds, args.relationships, 300, ids))
                print(
                    f"forward query, {ids} ids batched: p50 {statistics.median(lat):.2f} ms, "
                    f"p95 {lat[int(len(lat) * 0.95)]:.2f} ms, p99 {lat[int(len(lat) * 0.99)]:.2f} ms"
                )
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
