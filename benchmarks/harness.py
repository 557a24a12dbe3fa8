"""`python -m benchmarks run`: the full harness, start to report.

Order: generate the world and its query sample (reference answers) -> fresh database +
``rebac migrate`` -> ``rebac serve`` subprocess -> schema + bulk import through the server ->
(SpiceDB peer: same schema and data) -> every workload on rebac from client processes, then on
the peer in threads at the same concurrency -> optional concurrency sweep -> report. Any answer
that differs from the reference (on either system) makes the run fail with the differing queries.
A warm workload (one with `Workload.warm_up`) is measured after an unmeasured warm-up that
reaches every server worker (`load_driver.warm_up`; the peer gets the same); warm-up answers are
checked like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.datasets import World, make_world, parse_size, relationships
from benchmarks.load_driver import ClientPool, RunResult, WarmUp, warm_up
from benchmarks.profiler import WorkerProfiler
from benchmarks.queries import build_sample
from benchmarks.report import Report, figures_of
from benchmarks.server_process import BenchDatabase, ServerProcess
from benchmarks.workloads import WORKLOAD_NAMES, Workload, build_workloads

if TYPE_CHECKING:
    from benchmarks.spicedb_peer import SpiceDBPeer

__all__ = ["RunConfig", "run_harness"]

SWEEP_WORKLOADS = ("L0_health", "L1_direct_check", "cold_check", "warm_check")


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything `run` was asked to do (see ``python -m benchmarks run --help``)."""

    dataset: str
    size: str
    seed: int
    out: Path
    datastore_uri: str
    keep: bool = False
    peer: str | None = None
    workers: int = 2
    client_processes: int = 2
    concurrency: int = 16
    duration: float = 10.0
    workloads: tuple[str, ...] = WORKLOAD_NAMES
    concurrency_sweep: tuple[int, ...] = ()
    checks: int = 20_000
    call_timeout: float = 30.0
    profile_dir: Path | None = None
    profile_workloads: tuple[str, ...] = ("cold_check",)
    profile_native: bool = False


def _versions() -> dict[str, Any]:
    versions: dict[str, Any] = {"python": platform.python_version()}
    for package in ("rebac", "grpcio", "asyncpg", "spicedb-embedded", "psutil", "matplotlib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _machine() -> dict[str, Any]:
    import psutil  # noqa: PLC0415

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


async def _load_server(endpoint: str, world: World) -> tuple[int, float]:
    from rebac.client import RebacClient  # noqa: PLC0415

    async with RebacClient(endpoint, timeout=None) as client:
        await client.write_schema(world.schema)
        started = time.perf_counter()
        count, _ = await client.import_relationships(relationships(world), batch_size=1000)
        return count, time.perf_counter() - started


async def _bump_revision(endpoint: str, call_timeout: float) -> None:
    """One write, so that fully consistent reads after it start at a revision nothing is cached at."""
    from rebac.client import RebacClient  # noqa: PLC0415

    async with RebacClient(endpoint, timeout=call_timeout) as client:
        await client.touch(f"document:bench-bump-{time.monotonic_ns()}#viewer@user:bench-writer")


def _server_figures(
    server: ServerProcess, before: tuple[Any, dict[str, float] | None], run: RunResult
) -> dict[str, Any]:
    usage0, metrics0 = before
    usage1, metrics1 = server.usage(), server.scrape()
    wall = max(run.wall_seconds, 1e-9)
    cpu = usage1.cpu_seconds - usage0.cpu_seconds
    figures: dict[str, Any] = {
        "server_cpu_cores": round(cpu / wall, 2),
        # CPU per call is steadier than throughput on a shared machine: compare changes with it.
        "server_cpu_ms_per_op": round(1000 * cpu / run.operations, 3) if run.operations else None,
        "server_rss_mb": round(usage1.rss_bytes / 2**20, 1),
        "datastore_queries_per_item": None,
        "datastore_calls_per_op": None,
        "cache_hit_rate": None,
    }
    if metrics0 is not None and metrics1 is not None:

        def delta(key: str) -> float:
            return (metrics1 or {}).get(key, 0.0) - (metrics0 or {}).get(key, 0.0)

        queries = delta("rebac_engine_datastore_queries")
        hits, misses = delta("rebac_engine_cache_hits"), delta("rebac_engine_cache_misses")
        figures["datastore_queries_per_item"] = round(queries / run.items, 2) if run.items else None
        figures["cache_hit_rate"] = round(hits / (hits + misses), 3) if hits + misses else None
        calls = sum(delta(key) for key in metrics1 if key.startswith("datastore:"))
        figures["datastore_calls_per_op"] = round(calls / run.operations, 2) if run.operations else None
    return figures


def _request_counts(server: ServerProcess) -> dict[int, float] | None:
    """gRPC calls each server worker has counted so far (any method or status); None if one is silent.

    Worker i serves its own /metrics on the metrics port + i, so a rise in one worker's count
    tells which worker a call reached.
    """
    counts: dict[int, float] = {}
    for worker in range(server.workers):
        url = f"http://127.0.0.1:{server.metrics_port + worker}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return None
        counts[worker] = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("rebac_grpc_requests_total{")
        )
    return counts


def _add_failures(run: RunResult, other: RunResult, prefix: str) -> None:
    """Count `other`'s errors and answer mismatches in `run` (messages first, marked with `prefix`)."""
    run.errors += other.errors
    run.error_messages[:0] = [f"{prefix}{m}" for m in other.error_messages]
    run.mismatch_count += other.mismatch_count
    run.mismatches[:0] = [f"{prefix}{m}" for m in other.mismatches]


@dataclass(frozen=True, slots=True)
class _RunSettings:
    """How each workload is driven: in-flight calls, seconds, per-call deadline, profiling."""

    concurrency: int
    duration: float
    call_timeout: float
    profiler: WorkerProfiler | None = None
    profile_workloads: tuple[str, ...] = ()


def _run_one(
    pool: ClientPool, server: ServerProcess, workload: Workload, settings: _RunSettings
) -> tuple[RunResult, dict[str, Any], WarmUp | None]:
    """Drive one workload, after its warm-up if it has one; (run, server figures, warm-up).

    A failed pre-workload write or warm-up is an error of this workload, never a crash; the
    warm-up's wrong answers are mismatches of this workload. The server figures start after
    the warm-up, so they describe the measured calls only.
    """
    setup_errors: list[str] = []
    if workload.consistency == "full":
        try:
            asyncio.run(_bump_revision(server.endpoint, settings.call_timeout))
        except Exception as err:  # noqa: BLE001 - reported as this workload's error
            setup_errors.append(f"pre-workload write: {type(err).__name__}: {err}")
    warmed: WarmUp | None = None
    warm_failures = RunResult()
    if workload.warm_up:
        try:
            warmed, warm_failures = asyncio.run(
                warm_up(
                    server.endpoint,
                    workload,
                    workers=server.workers,
                    request_counts=lambda: _request_counts(server),
                    concurrency=settings.concurrency,
                    call_timeout=settings.call_timeout,
                )
            )
        except Exception as err:  # noqa: BLE001 - reported as this workload's error
            setup_errors.append(f"warm-up: {type(err).__name__}: {err}")
    before = (server.usage(), server.scrape())
    profiling = settings.profiler is not None and workload.name in settings.profile_workloads
    recording = (
        settings.profiler.recording(workload.name, server.worker_pids())
        if profiling and settings.profiler is not None
        else contextlib.nullcontext()
    )
    with recording:
        run = pool.run(
            workload,
            concurrency=settings.concurrency,
            duration=settings.duration,
            call_timeout=settings.call_timeout,
        )
    _add_failures(run, warm_failures, "warm-up: ")
    run.errors += len(setup_errors)
    run.error_messages[:0] = setup_errors
    return run, _server_figures(server, before, run), warmed


def _peer_warm_up_budget(config: RunConfig) -> float:
    """Seconds SpiceDB's warm-up may start new calls for: twice a workload's duration, at least 10."""
    return max(10.0, 2 * config.duration)


def _run_on_peer(peer: SpiceDBPeer, workload: Workload, config: RunConfig) -> tuple[RunResult, int]:
    """The peer's run of `workload`, after the same warm-up rebac got; (run, warm-up calls)."""
    from benchmarks.peer_driver import run_on_peer, warm_up_on_peer  # noqa: PLC0415

    warm = (
        warm_up_on_peer(peer, workload, concurrency=config.concurrency, budget=_peer_warm_up_budget(config))
        if workload.warm_up
        else None
    )
    run = run_on_peer(peer, workload, concurrency=config.concurrency, duration=config.duration)
    if warm is None:
        return run, 0
    _add_failures(run, warm, "warm-up: ")
    return run, warm.operations + warm.errors


def run_harness(config: RunConfig, *, log: Any = print) -> tuple[Report, int]:
    """Run everything `config` asks for and write the report; (report, mismatch count).

    Raises PeerUnavailableError if a peer was asked for and cannot run.
    """
    world = make_world(config.dataset, parse_size(config.size), config.seed)
    started = time.perf_counter()
    sample = build_sample(world, checks=config.checks, lookup_resources=4, lookup_subjects=4, tenants=2)
    log(
        f"sample: {len(sample.checks)} checks ({sample.positive_checks()} yes), "
        f"{len(sample.lookup_resources)} lookup-resources, {len(sample.lookup_subjects)} lookup-subjects "
        f"with reference answers in {time.perf_counter() - started:.1f} s"
    )
    workloads = build_workloads(world, sample, names=config.workloads)
    config.out.mkdir(parents=True, exist_ok=True)
    peer = None
    if config.peer == "spicedb":
        from benchmarks.spicedb_peer import SpiceDBPeer  # noqa: PLC0415

        peer = SpiceDBPeer()
    profiler = (
        WorkerProfiler(config.profile_dir, native=config.profile_native)
        if config.profile_dir is not None
        else None
    )
    report = Report(
        machine=_machine(),
        versions=_versions(),
        dataset={"name": world.name, "size": world.size, "seed": world.seed, "relationships": 0},
        config={
            "workers": config.workers,
            "client_processes": config.client_processes,
            "concurrency": config.concurrency,
            "duration_s": config.duration,
            "workloads": list(config.workloads),
            "concurrency_sweep": list(config.concurrency_sweep),
            "datastore": "postgres",
            "audit_log": "off",
            "peer": config.peer,
            "call_timeout_s": config.call_timeout,
            "profile_dir": str(config.profile_dir) if config.profile_dir else None,
        },
    )
    try:
        with BenchDatabase(config.datastore_uri, keep=config.keep) as database:
            database.migrate()
            log(f"database {database.name} created and migrated")
            with ServerProcess(
                database.dsn, workers=config.workers, log_path=config.out / "server.log"
            ) as server:
                log(f"rebac serve on {server.endpoint} ({config.workers} workers)")
                count, seconds = asyncio.run(_load_server(server.endpoint, world))
                report.dataset.update(
                    relationships=count,
                    rebac_load_s=round(seconds, 2),
                    rebac_load_per_s=round(count / seconds),
                )
                log(
                    f"imported {count:,} relationships into rebac in {seconds:.1f} s "
                    f"({count / seconds:,.0f}/s)"
                )
                database.analyze()
                report.notes.append(
                    "the bench database was ANALYZEd after the import (autovacuum would within "
                    "about a minute); without statistics, plans right after a bulk import are far slower"
                )
                if peer is not None:
                    peer.write_schema(world.schema)
                    loaded = peer.load(relationships(world))
                    report.dataset.update(spicedb_load_s=round(loaded.seconds, 2))
                    log(f"loaded {loaded.count:,} relationships into SpiceDB in {loaded.seconds:.1f} s")
                if server.scrape() is None:
                    report.notes.append(
                        "the server's /metrics did not answer: no datastore queries or cache figures"
                    )
                settings = _RunSettings(
                    config.concurrency,
                    config.duration,
                    config.call_timeout,
                    profiler,
                    config.profile_workloads,
                )
                with ClientPool(server.endpoint, processes=config.client_processes) as pool:
                    for name, workload in workloads.items():
                        run, server_figures, warmed = _run_one(pool, server, workload, settings)
                        warm_record = None if warmed is None else asdict(warmed)
                        if warmed is not None:
                            report.notes.append(warmed.describe())
                        peer_run = None
                        if peer is not None and not name.startswith("L0"):
                            peer_run, peer_calls = _run_on_peer(peer, workload, config)
                            if warm_record is not None:
                                warm_record["peer_calls"] = peer_calls
                        report.add(
                            name,
                            workload.description,
                            run,
                            server=server_figures,
                            peer=peer_run,
                            warm_up=warm_record,
                        )
                        f = figures_of(run)
                        peer_text = ""
                        if peer_run is not None:
                            pf = figures_of(peer_run)
                            peer_text = f" | SpiceDB {pf.items_per_s:,.0f} items/s p50 {pf.p50_ms} ms"
                        log(
                            f"{name:18} {f.items_per_s:>10,.0f} items/s p50 {f.p50_ms} ms p95 {f.p95_ms} ms "
                            f"p99 {f.p99_ms} ms ({f.operations} ops, {f.errors} errors, {f.mismatches} wrong)"
                            f"{peer_text}"
                        )
                    for concurrency in config.concurrency_sweep:
                        for name in SWEEP_WORKLOADS:
                            if name not in workloads:
                                continue
                            run, _, _ = _run_one(
                                pool,
                                server,
                                workloads[name],
                                _RunSettings(concurrency, config.duration, config.call_timeout),
                            )
                            f = figures_of(run)
                            report.sweep.append(
                                {
                                    "workload": name,
                                    "concurrency": concurrency,
                                    "items_per_s": f.items_per_s,
                                    "p50_ms": f.p50_ms,
                                    "p95_ms": f.p95_ms,
                                }
                            )
                            report._count(run)  # noqa: SLF001 - sweep answers are checked too
                            log(
                                f"sweep {name} x{concurrency}: {f.items_per_s:,.0f} items/s p50 {f.p50_ms} ms"
                            )
                report.dataset["server_rss_mb_end"] = round(server.usage().rss_bytes / 2**20, 1)
    finally:
        if peer is not None:
            peer.close()
    if config.concurrency_sweep and any(workloads[n].warm_up for n in SWEEP_WORKLOADS if n in workloads):
        report.notes.append("each sweep point of a warm workload was measured after its own warm-up")
    if peer is not None:
        from benchmarks.spicedb_peer import DISPATCH_CACHE_NOTE  # noqa: PLC0415

        report.notes.append(DISPATCH_CACHE_NOTE)
        if any(w.warm_up for w in workloads.values()):
            report.notes.append(
                "SpiceDB got the same warm-up (every distinct read once, unmeasured, at the same "
                "consistency, answers checked) before each warm workload, starting no new call after "
                f"{_peer_warm_up_budget(config):g} s (at 1M one SpiceDB check takes seconds here); with "
                "its dispatch cache disabled in this embedding it likely changes little there"
            )
        report.notes.append(
            "SpiceDB runs in this process on its in-memory datastore with no gRPC hop; "
            "rebac is measured over gRPC on loopback against PostgreSQL."
        )
    report.notes.append(
        "rebac figures include the client processes on the same machine; audit logging is off; "
        "server cores = server CPU seconds / wall seconds."
    )
    if any(e["pool_exhausted"] for e in report.workloads.values()):
        report.notes.append("a non-repeating pool (cold_check) was used up before the duration ended")
    if profiler is not None:
        report.notes.extend(f"profiling: {problem}" for problem in profiler.problems)
        if profiler.written:
            report.notes.append(
                f"py-spy profiles of the server workers ({', '.join(config.profile_workloads)}) in "
                f"{config.profile_dir}: flame graphs (*.svg), top tables (*-top.txt), stacks (*.folded)"
            )
    report.finish()
    report.write(config.out)
    if report.mismatches:
        print(f"ANSWER MISMATCHES: {report.mismatches}", file=sys.stderr)
        for example in report.mismatch_examples[:10]:
            print(f"  {example.splitlines()[0] if example else example}", file=sys.stderr)
    return report, report.mismatches
