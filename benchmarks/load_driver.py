"""Drive a workload against the rebac gRPC server from separate client processes.

`ClientPool` owns `processes` spawned worker processes (reused across workloads, so their
import cost is paid once). `ClientPool.run(workload, concurrency, duration)` splits the
concurrency over the processes (each runs that many asyncio tasks over one gRPC channel),
starts them together, and merges their latencies, answer mismatches and CPU time. Every reply
is compared with the reference answer the operation carries; a differing reply is a
mismatch (never silently counted as a success) and an RPC error is an error.

`warm_up` sends a workload's warm-up set (`Workload.warm_up`) to every server worker before
it is measured. The workers share one port (SO_REUSEPORT), and the kernel spreads
*connections*, not calls, over them, so the warm-up opens channels (each a new TCP
connection) and finds out which worker each one reached from the workers' own /metrics
request counters; it keeps one channel per worker and sends the whole set through each.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from types import TracebackType
from typing import Any, Self

from benchmarks.queries import CheckQuery, LookupResourcesQuery, LookupSubjectsQuery
from benchmarks.workloads import BulkCheckOp, HealthOp, Operation, Workload

__all__ = ["ClientPool", "RequestCounts", "RunResult", "WarmUp", "ops_for_process", "warm_up"]

_MAX_RECORDED = 20  # error/mismatch messages kept per process (all are counted)

_PROBES_PER_WORKER = 20
"""Connections tried per worker before a warm-up gives up finding every worker.

The kernel hashes each new connection to a worker, so with w workers one connection misses
a given worker with probability (w-1)/w; 20 w tries all miss one worker of two with
probability 2**-39.
"""

_BLIND_CONNECTIONS_PER_WORKER = 4
"""Channels per worker that each carry the whole warm-up set when workers cannot be told apart."""

_SETTLE_SECONDS = 2.0
"""How long a probe waits for a worker's request counter to show it (it is counted before the reply)."""

RequestCounts = Callable[[], Mapping[int, float] | None]
"""Calls counted so far by each server worker (worker index -> count), or None if unknown."""


@dataclass(slots=True)
class RunResult:
    """What the clients measured for one workload: latencies (ms), counts, CPU, answer checks."""

    latencies_ms: list[float] = field(default_factory=list)
    operations: int = 0
    items: int = 0
    errors: int = 0
    error_messages: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    mismatch_count: int = 0
    client_cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    exhausted: bool = False

    def merge(self, other: RunResult) -> None:
        """Add `other` (one process's result) into this one."""
        self.latencies_ms.extend(other.latencies_ms)
        self.operations += other.operations
        self.items += other.items
        self.errors += other.errors
        self.error_messages.extend(other.error_messages[: _MAX_RECORDED - len(self.error_messages)])
        self.mismatches.extend(other.mismatches)
        self.mismatch_count += other.mismatch_count
        self.client_cpu_seconds += other.client_cpu_seconds
        self.wall_seconds = max(self.wall_seconds, other.wall_seconds)
        self.exhausted = self.exhausted or other.exhausted


@dataclass(frozen=True, slots=True)
class WarmUp:
    """What the unmeasured warm-up before one workload did.

    `calls` counts every warm-up call, the probes included (a probe that reached an
    already-warmed worker is one extra call); `connections` is how many channels, each a
    new TCP connection, were opened. With `identified`, `workers_warmed` lists the server
    workers (metrics index) that received all `distinct` operations; without it the
    workers could not be told apart and each of the `connections` carried the whole set.
    """

    workload: str
    consistency: str
    distinct: int
    calls: int
    connections: int
    workers: int
    workers_warmed: tuple[int, ...]
    identified: bool
    seconds: float

    @property
    def complete(self) -> bool:
        """False when some worker was never found (identified mode only)."""
        return not self.identified or len(self.workers_warmed) == self.workers

    def describe(self) -> str:
        """One sentence for the report's notes."""
        consistency = "minimize_latency" if self.consistency == "min" else "fully consistent"
        if self.identified:
            how = (
                f"through {len(self.workers_warmed)} of {self.workers} server workers "
                f"(worker of each of {self.connections} new connections told by its /metrics "
                "request counters; one connection kept per worker)"
            )
        else:
            how = (
                f"through each of {self.connections} new connections, as /metrics could not tell "
                f"the {self.workers} server workers apart"
            )
        return (
            f"{self.workload}: an unmeasured warm-up of {self.calls:,} calls ({consistency}, answers "
            f"checked, {self.seconds:.1f} s) sent all {self.distinct:,} distinct reads of the pool {how}"
        )


def ops_for_process(workload: Workload, process: int, processes: int) -> Iterator[Operation]:
    """The operations process `process` of `processes` sends, in order.

    Non-cycling pools are dealt round-robin (each operation goes to exactly one process);
    cycling pools are repeated forever, each process starting at a different offset.
    """
    ops = workload.operations
    if not workload.cycle:
        return iter(ops[process::processes])
    offset = (process * len(ops)) // max(1, processes)
    return itertools.cycle(ops[offset:] + ops[:offset])


def _sorted_ids(ids: list[str]) -> tuple[str, ...]:
    return tuple(sorted(ids))


class _Session:
    """One client process's connection and the code that sends each kind of operation."""

    def __init__(
        self,
        endpoint: str,
        token: str | None,
        consistency: str,
        tag: str,
        call_timeout: float,
        *,
        own_connection: bool = False,
    ) -> None:
        from grpc import aio  # noqa: PLC0415 - grpc is loaded only where a session is made
        from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415

        from rebac.client import RebacClient  # noqa: PLC0415
        from rebac.revision import FullyConsistent, MinimizeLatency  # noqa: PLC0415

        # gRPC shares connections between a process's channels to the same target unless each
        # has its own subchannel pool: a warm-up needs one new connection per channel.
        options = [("grpc.use_local_subchannel_pool", 1)] if own_connection else []
        self.client = RebacClient(
            endpoint,
            token=token,
            read_your_writes=False,
            max_retries=0,
            timeout=call_timeout,
            options=options,
        )
        self.call_timeout = call_timeout
        self._health_channel = aio.insecure_channel(endpoint)
        self._health: Any = health_pb2_grpc.HealthStub(self._health_channel)
        self._health_request = health_pb2.HealthCheckRequest(service="")
        self.consistency: Any = FullyConsistent() if consistency == "full" else MinimizeLatency()
        self._tag = tag
        self._writes = itertools.count()
        self._item_errors: list[str] = []

    def take_item_errors(self) -> list[str]:
        """Errors of single items inside the last calls (CheckBulk), cleared: errors, not wrong answers."""
        errors, self._item_errors = self._item_errors, []
        return errors

    async def close(self) -> None:
        await self.client.close()
        await self._health_channel.close(None)

    async def send(self, op: Operation) -> tuple[int, list[str]]:
        """Send `op`; (items answered, mismatch descriptions). RPC errors propagate."""
        if isinstance(op, HealthOp):
            await self._health.Check(self._health_request, timeout=self.call_timeout)
            return 1, []
        if isinstance(op, CheckQuery):
            got = await self.client.check(
                f"{op.resource_type}:{op.resource_id}",
                op.permission,
                f"{op.subject_type}:{op.subject_id}",
                consistency=self.consistency,
            )
            return 1, [] if self._agrees(got, op.expected) else [
                f"{op}: expected {op.expected}, got {got.permissionship.name}"
            ]
        if isinstance(op, BulkCheckOp):
            return await self._bulk(op)
        if isinstance(op, LookupResourcesQuery):
            ids = [
                i
                async for i in self.client.lookup_resources(
                    op.resource_type,
                    op.permission,
                    f"{op.subject_type}:{op.subject_id}",
                    consistency=self.consistency,
                )
            ]
            got_ids = _sorted_ids(ids)
            return 1, [] if got_ids == op.expected else [
                f"{op}: expected {len(op.expected)} ids, got {len(got_ids)}"
            ]
        if isinstance(op, LookupSubjectsQuery):
            subjects = [
                # A subject with exclusions cannot equal a plain expected id: it shows as a mismatch.
                s.subject.id if not s.excluded else f"{s.subject.id} minus {len(s.excluded)}"
                async for s in self.client.lookup_subjects(
                    f"{op.resource_type}:{op.resource_id}",
                    op.permission,
                    op.subject_type,
                    consistency=self.consistency,
                )
            ]
            got_ids = _sorted_ids(subjects)
            return 1, [] if got_ids == op.expected else [
                f"{op}: expected {len(op.expected)} ids, got {len(got_ids)}"
            ]
        await self.client.touch(op.relationship(f"{self._tag}-{next(self._writes)}"))
        return 1, []

    @staticmethod
    def _agrees(got: Any, expected: bool) -> bool:
        from rebac.engine.requests import Permissionship  # noqa: PLC0415

        # Fail closed: CONDITIONAL or any other answer than the expected one is a mismatch.
        want = Permissionship.HAS_PERMISSION if expected else Permissionship.NO_PERMISSION
        return bool(got.permissionship is want)

    async def _bulk(self, op: BulkCheckOp) -> tuple[int, list[str]]:
        replies = await self.client.check_bulk(
            [
                (f"{q.resource_type}:{q.resource_id}", q.permission, f"{q.subject_type}:{q.subject_id}")
                for q in op.items
            ],
            consistency=self.consistency,
        )
        wrong = []
        for query, reply in zip(op.items, replies, strict=True):
            if isinstance(reply, Exception):
                self._item_errors.append(f"{query} (in bulk): {type(reply).__name__}: {reply}")
            elif not self._agrees(reply, query.expected):
                wrong.append(f"{query} (in bulk): expected {query.expected}, got {reply.permissionship.name}")
        return len(op.items), wrong


async def _send_recorded(session: _Session, op: Operation, result: RunResult) -> None:
    """Send `op` and record its latency, items, errors and mismatches into `result`."""
    began = time.perf_counter()
    try:
        items, wrong = await session.send(op)
    except Exception as err:  # noqa: BLE001 - every failure is counted and reported
        result.errors += 1
        if len(result.error_messages) < _MAX_RECORDED:
            result.error_messages.append(f"{op}: {type(err).__name__}: {err}")
        return
    result.latencies_ms.append((time.perf_counter() - began) * 1000)
    result.operations += 1
    result.items += items
    failed = session.take_item_errors()
    if failed:
        result.errors += len(failed)
        result.error_messages.extend(failed[: _MAX_RECORDED - len(result.error_messages)])
    if wrong:
        result.mismatch_count += len(wrong)
        result.mismatches.extend(wrong[: _MAX_RECORDED - len(result.mismatches)])


async def _drive(  # noqa: PLR0917 - one entry point of a client process (pickled args)
    endpoint: str,
    token: str | None,
    workload: Workload,
    process: int,
    processes: int,
    tasks: int,
    start_at: float,
    duration: float,
    call_timeout: float,
) -> RunResult:
    tag = f"p{os.getpid()}-{time.monotonic_ns()}"
    session = _Session(endpoint, token, workload.consistency, tag, call_timeout)
    ops = ops_for_process(workload, process, processes)
    result = RunResult()
    # Warm the channel (connection setup is not part of any figure); a failure is an error, not a crash.
    try:
        await session._health.Check(session._health_request, timeout=call_timeout)  # noqa: SLF001
    except Exception as err:  # noqa: BLE001 - counted and reported like any failed call
        result.errors += 1
        result.error_messages.append(f"warm-up health check: {type(err).__name__}: {err}")
    await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu0 = time.process_time()
    started = time.perf_counter()
    deadline = started + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            op = next(ops, None)
            if op is None:
                result.exhausted = True
                return
            await _send_recorded(session, op, result)

    await asyncio.gather(*(worker() for _ in range(tasks)))
    result.wall_seconds = time.perf_counter() - started
    result.client_cpu_seconds = time.process_time() - cpu0
    await session.close()
    return result


async def _served_by(before: Mapping[int, float], request_counts: RequestCounts) -> int | None:
    """The one worker whose request count rose since `before`; None if none or several did."""
    deadline = time.perf_counter() + _SETTLE_SECONDS
    while True:
        after = await asyncio.to_thread(request_counts) or {}
        risen = [w for w, count in after.items() if count > before.get(w, 0.0)]
        if len(risen) == 1:
            return risen[0]
        if risen or time.perf_counter() >= deadline:
            return None
        await asyncio.sleep(0.02)


async def _send_all(session: _Session, ops: Sequence[Operation], tasks: int, result: RunResult) -> None:
    """Send every operation of `ops` once through `session`, `tasks` calls in flight."""
    pending = iter(ops)

    async def worker() -> None:
        for op in pending:
            await _send_recorded(session, op, result)

    await asyncio.gather(*(worker() for _ in range(max(1, min(tasks, len(ops))))))


async def warm_up(
    endpoint: str,
    workload: Workload,
    *,
    workers: int,
    request_counts: RequestCounts,
    token: str | None = None,
    concurrency: int = 16,
    call_timeout: float = 30.0,
) -> tuple[WarmUp, RunResult]:
    """Send every operation of `workload.warm_up` at least once to each of `workers` server workers.

    Nothing here is measured; the RunResult holds the warm-up calls' errors and answer
    mismatches (answers are checked as in a measured run). The probe: open a channel (a new
    connection), send the first operation, and ask `request_counts` which worker's count
    rose; keep the channel if that worker is new, close it otherwise, until every worker has
    one (or `_PROBES_PER_WORKER` x `workers` connections were tried: then `WarmUp.complete`
    is False). If `request_counts` returns None the workers cannot be told apart, and
    `_BLIND_CONNECTIONS_PER_WORKER` x `workers` channels each carry the whole set. The kept
    channels then send the rest of the set concurrently, `concurrency` calls in flight in all.
    """
    ops = workload.warm_up
    if not ops or workers < 1:
        raise ValueError(f"workload {workload.name} has no warm-up operations, or no workers were given")
    started = time.perf_counter()
    result = RunResult()
    tag = f"warm-{os.getpid()}-{time.monotonic_ns()}"

    def session() -> _Session:
        return _Session(endpoint, token, workload.consistency, tag, call_timeout, own_connection=True)

    kept: list[_Session] = []
    warmed: list[int] = []
    connections = calls = 0
    before = await asyncio.to_thread(request_counts)
    identified = before is not None
    try:
        if before is None:
            kept = [session() for _ in range(_BLIND_CONNECTIONS_PER_WORKER * workers)]
            connections, rest = len(kept), ops
        else:
            while len(warmed) < workers and connections < _PROBES_PER_WORKER * workers:
                probe = session()
                connections += 1
                worker = None
                try:
                    await _send_recorded(probe, ops[0], result)
                    calls += 1
                    worker = await _served_by(before, request_counts)
                    before = await asyncio.to_thread(request_counts) or before
                finally:
                    if worker is None or worker in warmed:
                        await probe.close()
                    else:
                        warmed.append(worker)
                        kept.append(probe)
            rest = ops[1:]
        share = max(1, concurrency // max(1, len(kept)))
        await asyncio.gather(*(_send_all(s, rest, share, result) for s in kept))
        calls += len(rest) * len(kept)
    finally:
        for s in kept:
            await s.close()
    done = WarmUp(
        workload=workload.name,
        consistency=workload.consistency,
        distinct=len(ops),
        calls=calls,
        connections=connections,
        workers=workers,
        workers_warmed=tuple(sorted(warmed)),
        identified=identified,
        seconds=round(time.perf_counter() - started, 2),
    )
    if not done.complete:
        result.errors += 1
        result.error_messages.insert(
            0,
            f"warm-up reached {len(warmed)} of {workers} server workers in {connections} connections",
        )
    return done, result


def _process_main(*args: Any) -> RunResult:
    return asyncio.run(_drive(*args))


def _warm_up(_index: int) -> int:
    import rebac.client  # noqa: F401, PLC0415 - pay the import cost before any timing

    return os.getpid()


class ClientPool:
    """`processes` spawned client processes; use as a context manager."""

    def __init__(self, endpoint: str, *, processes: int, token: str | None = None) -> None:
        if processes < 1:
            raise ValueError("at least one client process is needed")
        self.endpoint = endpoint
        self.processes = processes
        self._token = token
        self._pool = ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn"))
        self.pids = sorted(set(self._pool.map(_warm_up, range(processes * 2))))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def run(
        self, workload: Workload, *, concurrency: int, duration: float, call_timeout: float = 30.0
    ) -> RunResult:
        """Drive `workload` with `concurrency` in-flight calls in total for up to `duration` seconds.

        Each call has a deadline of `call_timeout` seconds; a call that fails or times out is
        counted as an error of this workload, and so is a client process that fails as a whole
        (the run goes on).
        """
        if concurrency < 1 or duration <= 0:
            raise ValueError("concurrency must be >= 1 and duration > 0")
        used = min(self.processes, concurrency)
        share = [concurrency // used + (1 if i < concurrency % used else 0) for i in range(used)]
        start_at = time.time() + 0.3
        futures = [
            self._pool.submit(
                _process_main,
                self.endpoint,
                self._token,
                workload,
                i,
                used,
                share[i],
                start_at,
                duration,
                call_timeout,
            )
            for i in range(used)
        ]
        merged = RunResult()
        for i, future in enumerate(futures):
            try:
                merged.merge(future.result())
            except Exception as err:  # noqa: BLE001 - a failed client process is this workload's error
                merged.errors += 1
                merged.error_messages.append(f"client process {i} failed: {type(err).__name__}: {err}")
        return merged
