"""Profile LookupResources / LookupSubjects in-process (no gRPC) on PostgreSQL over a drive world.

The lookup companion of `benchmarks.engine_profile` (same loader, its own Postgres schema
``rebac_lookup_drive_<size>``, kept between runs with ``--keep``). For the sample's users and
documents it times each lookup on a fresh Engine (no shared cache), cold and then warm,
prints p50/p95, this process's CPU, result sizes and datastore queries per lookup, and
compares every answer with `benchmarks.reference`; a difference fails the run (exit status 1).

    .venv/bin/python -m benchmarks.lookup_profile --size 100k [--keep] [--lookups 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg

from benchmarks.datasets import make_world, parse_size
from benchmarks.engine_profile import DSN, _load, _percentiles
from benchmarks.queries import QuerySample, build_sample
from rebac.datastore.postgres import PostgresDatastore
from rebac.engine import Engine
from rebac.tuples import ObjectRef, SubjectRef


async def _resources(
    ds: PostgresDatastore, sample: QuerySample, mismatches: list[str]
) -> list[dict[str, Any]]:
    reader = ds.snapshot_reader(await ds.head_revision())
    out: list[dict[str, Any]] = []
    for label, engine in (("cold", None), ("warm", Engine())):
        latencies: list[float] = []
        sizes: list[int] = []
        queries = 0
        cpu = 0.0
        for q in sample.lookup_resources:
            run_engine = engine if engine is not None else Engine(cache_size=0)
            before = run_engine.stats.snapshot()
            subject = SubjectRef(q.subject_type, q.subject_id)
            start, cpu_start = time.perf_counter(), time.process_time()
            found = [
                r async for r in run_engine.lookup_resources(reader, q.resource_type, q.permission, subject)
            ]
            got = tuple(r.resource_id for r in found)
            latencies.append((time.perf_counter() - start) * 1000)
            cpu += time.process_time() - cpu_start
            queries += run_engine.stats.since(before).datastore_queries
            sizes.append(len(got))
            if got != q.expected:
                missing = sorted(set(q.expected) - set(got))[:5]
                extra = sorted(set(got) - set(q.expected))[:5]
                mismatches.append(
                    f"{q}: {len(got)} found, {len(q.expected)} expected; missing {missing} extra {extra}"
                )
        out.append(
            {
                "workload": f"lookup_resources_{label}",
                "count": len(latencies),
                "result_sizes": sizes,
                **_percentiles(latencies),
                "queries_per_lookup": round(queries / max(1, len(latencies)), 1),
                # This process's CPU per lookup: steadier than wall time on a shared machine.
                "cpu_ms_per_lookup": round(cpu * 1000 / max(1, len(latencies)), 3),
            }
        )
    return out


async def _subjects(ds: PostgresDatastore, sample: QuerySample, mismatches: list[str]) -> dict[str, Any]:
    reader = ds.snapshot_reader(await ds.head_revision())
    engine = Engine(cache_size=0)
    latencies: list[float] = []
    sizes: list[int] = []
    before = engine.stats.snapshot()
    cpu_start = time.process_time()
    for q in sample.lookup_subjects:
        start = time.perf_counter()
        found = [
            f
            async for f in engine.lookup_subjects(
                reader, ObjectRef(q.resource_type, q.resource_id), q.permission, q.subject_type
            )
        ]
        latencies.append((time.perf_counter() - start) * 1000)
        got = tuple(sorted(f.subject.id for f in found))
        sizes.append(len(got))
        if got != q.expected:
            mismatches.append(f"{q}: got {len(got)}, expected {len(q.expected)}")
    cpu = time.process_time() - cpu_start
    work = engine.stats.since(before)
    return {
        "workload": "lookup_subjects_cold",
        "count": len(latencies),
        "result_sizes": sizes,
        **_percentiles(latencies),
        "queries_per_lookup": round(work.datastore_queries / max(1, len(latencies)), 1),
        "cpu_ms_per_lookup": round(cpu * 1000 / max(1, len(latencies)), 3),
    }


async def _run(args: argparse.Namespace) -> int:
    size = parse_size(args.size)
    schema = f"rebac_lookup_drive_{size}"
    admin = await asyncpg.connect(DSN)
    exists = await admin.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema)
    fresh = not (exists and args.keep)
    if exists and fresh:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    if fresh:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    dsn = f"{DSN}{'&' if '?' in DSN else '?'}{urlencode({'search_path': schema})}"
    mismatches: list[str] = []
    rows: list[dict[str, Any]] = []
    try:
        async with PostgresDatastore.connect(dsn, migrate=True, quantization=timedelta(0)) as ds:
            if fresh:
                await _load(ds, DSN, schema, "drive", size)
            sample = build_sample(
                make_world("drive", size),
                checks=0,
                lookup_resources=args.lookups,
                lookup_subjects=args.lookups,
            )
            rows.extend(await _resources(ds, sample, mismatches))
            rows.append(await _subjects(ds, sample, mismatches))
    finally:
        if not args.keep:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
    for row in rows:
        print(json.dumps(row))
    if mismatches:
        print(f"{len(mismatches)} ANSWERS DIFFER from the reference:", file=sys.stderr)
        for line in mismatches[:20]:
            print("  " + line, file=sys.stderr)
        return 1
    print("all answers agree with the reference")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the lookup profile, return the exit status (1 on any difference)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.lookup_profile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", default="100k", help="relationships: 10k, 100k, 1M, ...")
    parser.add_argument("--lookups", type=int, default=8, help="sampled users / documents")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the loaded schema")
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
