"""Profile the evaluator in-process (no gRPC) on PostgreSQL over a drive world.

Loads `benchmarks.datasets.make_world("drive", size)` into its own Postgres schema (kept
between runs with ``--keep``, so a 1M world loads once), then measures:

- L1: cold checks of a direct relation (``document#owner``: one indexed read);
- cold checks: the sample's distinct checks, no cache shared between checks
  (``Engine(cache_size=0)``), sequential (latency) and with ``--concurrency`` tasks (throughput);
- warm checks: the same checks again on a caching Engine;
- check_bulk of 100 items (per-item cost);
- lookup_resources for the sample's users;

and prints p50/p95, throughput, datastore queries per check and the cache figures. Every
answer is compared with `benchmarks.reference` (through `benchmarks.queries.build_sample`);
a difference fails the run (exit status 1) naming the query.

    .venv/bin/python -m benchmarks.engine_profile --size 100k [--keep] [--checks 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg

from benchmarks.datasets import make_world, parse_size, relationships
from benchmarks.queries import CheckQuery, QuerySample, build_sample
from rebac.datastore.postgres import PostgresDatastore
from rebac.datastore.protocol import Reader, Transaction
from rebac.engine import Engine
from rebac.engine.requests import CheckRequest, Permissionship
from rebac.tuples import ObjectRef, Relationship, SubjectRef
from rebac.writes import write_schema

DSN = os.environ.get("REBAC_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    if not ordered:
        return {"p50_ms": 0.0, "p95_ms": 0.0}
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 3),
    }


async def _load(ds: PostgresDatastore, dsn_admin: str, schema: str, world_name: str, size: int) -> int:
    world = make_world(world_name, size)
    await write_schema(ds, world.schema)
    total = 0
    batch: list[Relationship] = []

    async def flush() -> None:
        rows = list(batch)

        async def stream() -> AsyncIterator[Relationship]:
            for row in rows:
                yield row

        async def body(tx: Transaction) -> None:
            await tx.bulk_load(stream())

        await ds.read_write_tx(body)

    for line in relationships(world):
        batch.append(Relationship.parse(line))
        if len(batch) >= 50_000:
            await flush()
            total += len(batch)
            batch.clear()
            print(f"  loaded {total:,}", file=sys.stderr)
    if batch:
        await flush()
        total += len(batch)
    conn = await asyncpg.connect(dsn_admin, server_settings={"search_path": schema})
    try:
        await conn.execute("ANALYZE rebac_relationship")
    finally:
        await conn.close()
    return total


def _request(q: CheckQuery) -> CheckRequest:
    return CheckRequest(
        ObjectRef(q.resource_type, q.resource_id), q.permission, SubjectRef(q.subject_type, q.subject_id)
    )


class Profile:
    """One measurement run over a loaded datastore and a query sample."""

    def __init__(self, ds: PostgresDatastore, sample: QuerySample, concurrency: int) -> None:
        self.ds = ds
        self.sample = sample
        self.concurrency = concurrency
        self.mismatches: list[str] = []

    async def _reader(self) -> Reader:
        return self.ds.snapshot_reader(await self.ds.head_revision())

    def _verify(self, q: CheckQuery, got: Permissionship) -> None:
        expected = Permissionship.HAS_PERMISSION if q.expected else Permissionship.NO_PERMISSION
        if got is not expected:
            self.mismatches.append(f"{q}: expected {expected.name}, got {got.name}")

    async def _timed(
        self, items: Sequence[Any], run: Callable[[Any], Awaitable[None]], concurrency: int
    ) -> tuple[list[float], float]:
        latencies: list[float] = []
        queue = iter(items)

        async def worker() -> None:
            for item in queue:
                start = time.perf_counter()
                await run(item)
                latencies.append((time.perf_counter() - start) * 1000)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - start

    async def checks(
        self,
        name: str,
        queries: Sequence[CheckQuery],
        *,
        cache_size: int,
        concurrency: int,
        verify: bool = True,
    ) -> dict[str, Any]:
        reader = await self._reader()
        engine = Engine(cache_size=cache_size)
        before = engine.stats.snapshot()

        async def run(q: CheckQuery) -> None:
            result = await engine.check(reader, _request(q))
            if verify:
                self._verify(q, result.permissionship)

        cpu = time.process_time()
        latencies, elapsed = await self._timed(queries, run, concurrency)
        cpu = time.process_time() - cpu
        work = engine.stats.since(before)
        count = max(1, len(queries))
        return {
            "workload": name,
            "count": len(queries),
            "concurrency": concurrency,
            **_percentiles(latencies),
            "throughput_per_s": round(len(queries) / elapsed, 1),
            "queries_per_check": round(work.datastore_queries / count, 2),
            "dispatches_per_check": round(work.dispatches / count, 1),
            # This process's CPU per check: steadier than wall time on a shared machine.
            "cpu_ms_per_check": round(cpu * 1000 / count, 3),
            "cache_hits": work.cache_hits,
            "cache_misses": work.cache_misses,
        }

    async def warm(self, queries: Sequence[CheckQuery]) -> dict[str, Any]:
        reader = await self._reader()
        engine = Engine()
        for q in queries:
            await engine.check(reader, _request(q))
        before = engine.stats.snapshot()

        async def run(q: CheckQuery) -> None:
            self._verify(q, (await engine.check(reader, _request(q))).permissionship)

        latencies, elapsed = await self._timed(queries, run, self.concurrency)
        work = engine.stats.since(before)
        return {
            "workload": "warm_check",
            "count": len(queries),
            **_percentiles(latencies),
            "throughput_per_s": round(len(queries) / elapsed, 1),
            "queries_per_check": round(work.datastore_queries / max(1, len(queries)), 2),
            "cache_hit_rate": round(work.cache_hits / max(1, work.cache_hits + work.cache_misses), 3),
        }

    async def bulk(self, queries: Sequence[CheckQuery], size: int = 100) -> dict[str, Any]:
        reader = await self._reader()
        batches = [
            queries[i : i + size] for i in range(0, len(queries), size) if len(queries[i : i + size]) == size
        ]
        engine = Engine(cache_size=0)
        before = engine.stats.snapshot()
        latencies: list[float] = []
        cpu = time.process_time()
        for batch in batches:
            start = time.perf_counter()
            results = await engine.check_bulk(reader, [_request(q) for q in batch])
            latencies.append((time.perf_counter() - start) * 1000)
            for q, result in zip(batch, results, strict=True):
                if isinstance(result, Exception):
                    self.mismatches.append(f"{q}: error {result!r}")
                else:
                    self._verify(q, result.permissionship)
        cpu = time.process_time() - cpu
        work = engine.stats.since(before)
        items = max(1, len(batches) * size)
        pct = _percentiles(latencies)
        return {
            "workload": f"check_bulk_{size}",
            "batches": len(batches),
            **pct,
            "per_item_ms": round(pct["p50_ms"] / size, 4),
            "queries_per_item": round(work.datastore_queries / items, 3),
            "cpu_ms_per_item": round(cpu * 1000 / items, 3),
        }

    async def lookups(self) -> dict[str, Any]:
        reader = await self._reader()
        engine = Engine(cache_size=0)
        latencies: list[float] = []
        sizes: list[int] = []
        before = engine.stats.snapshot()
        for q in self.sample.lookup_resources:
            start = time.perf_counter()
            found = [
                r
                async for r in engine.lookup_resources(
                    reader, q.resource_type, q.permission, SubjectRef(q.subject_type, q.subject_id)
                )
            ]
            latencies.append((time.perf_counter() - start) * 1000)
            got = tuple(r.resource_id for r in found)
            sizes.append(len(got))
            if got != q.expected:
                missing = sorted(set(q.expected) - set(got))[:5]
                extra = sorted(set(got) - set(q.expected))[:5]
                self.mismatches.append(
                    f"{q}: {len(got)} found, {len(q.expected)} expected; missing {missing} extra {extra}"
                )
        work = engine.stats.since(before)
        return {
            "workload": "lookup_resources",
            "count": len(latencies),
            "result_sizes": sizes,
            **_percentiles(latencies),
            "queries_per_lookup": round(work.datastore_queries / max(1, len(latencies)), 1),
        }


def _direct_queries(sample: QuerySample) -> list[CheckQuery]:
    """L1 probes: `document#owner` for the sample's document checks (answers not verified)."""
    return [
        CheckQuery(q.resource_type, q.resource_id, "owner", q.subject_id, expected=False)
        for q in sample.checks
        if q.resource_type == "document"
    ]


async def _profile_run(args: argparse.Namespace) -> int:
    size = parse_size(args.size)
    schema = f"rebac_profile_drive_{size}"
    admin = await asyncpg.connect(DSN)
    exists = await admin.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema)
    fresh = not (exists and args.keep)
    if exists and fresh:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    if fresh:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    dsn = f"{DSN}{'&' if '?' in DSN else '?'}{urlencode({'search_path': schema})}"
    report: dict[str, Any] = {"dataset": "drive", "size": size}
    try:
        async with PostgresDatastore.connect(
            dsn, migrate=True, max_pool_size=args.pool, quantization=timedelta(0)
        ) as ds:
            if fresh:
                start = time.perf_counter()
                count = await _load(ds, DSN, schema, "drive", size)
                report["load_s"] = round(time.perf_counter() - start, 1)
                report["relationships"] = count
            start = time.perf_counter()
            sample = build_sample(
                make_world("drive", size), checks=args.checks, lookup_resources=args.lookups
            )
            report["sample_s"] = round(time.perf_counter() - start, 1)
            profile = Profile(ds, sample, args.concurrency)
            Engine()  # the first Engine imports the CEL evaluator: keep that out of the timings
            checks = list(sample.checks)
            results = [
                await profile.checks(
                    "L1_direct_sequential", _direct_queries(sample), cache_size=0, concurrency=1, verify=False
                ),
                await profile.checks(
                    "L1_direct",
                    _direct_queries(sample),
                    cache_size=0,
                    concurrency=args.concurrency,
                    verify=False,
                ),
                await profile.checks("cold_check_sequential", checks, cache_size=0, concurrency=1),
                await profile.checks("cold_check", checks, cache_size=0, concurrency=args.concurrency),
                await profile.warm(checks),
                await profile.bulk(checks),
                await profile.lookups(),
            ]
            report["workloads"] = results
            report["mismatches"] = profile.mismatches
    finally:
        if not args.keep:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
    for row in report["workloads"]:
        print(json.dumps(row))
    l1 = next(r for r in report["workloads"] if r["workload"] == "L1_direct")["throughput_per_s"]
    cold = next(r for r in report["workloads"] if r["workload"] == "cold_check")
    print(
        f"cold check throughput = {cold['throughput_per_s'] / l1:.0%} of L1; "
        f"p95/p50 = {cold['p95_ms'] / max(cold['p50_ms'], 1e-9):.1f}"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2), encoding="utf-8")  # noqa: ASYNC240 - once, at the end
    if report["mismatches"]:
        print(f"{len(report['mismatches'])} ANSWERS DIFFER from the reference:", file=sys.stderr)
        for line in report["mismatches"][:20]:
            print("  " + line, file=sys.stderr)
        return 1
    print("all answers agree with the reference")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the profile, return the exit status (1 on any answer difference)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.engine_profile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", default="100k", help="relationships: 10k, 100k, 1M, ...")
    parser.add_argument("--checks", type=int, default=400, help="distinct sampled checks")
    parser.add_argument("--lookups", type=int, default=4, help="sampled LookupResources users")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent tasks for throughput")
    parser.add_argument("--pool", type=int, default=16, help="Postgres pool size")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the loaded schema")
    parser.add_argument("--out", help="write the report as JSON here")
    return asyncio.run(_profile_run(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
