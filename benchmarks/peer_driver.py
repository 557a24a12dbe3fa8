"""Drive the same workloads against the SpiceDB peer, in threads of this process.

The peer is embedded (no network port), so its figures have no gRPC transport; threads share
one SpiceDB instance (its calls release the GIL). Every reply is compared with the
reference answer, exactly as for rebac. The health check (L0) has no SpiceDB equivalent here.
A warm workload gets the warm-up rebac gets (`warm_up_on_peer`): one process, so one pass.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from benchmarks.load_driver import RunResult, ops_for_process
from benchmarks.queries import CheckQuery, LookupResourcesQuery, LookupSubjectsQuery
from benchmarks.spicedb_peer import SpiceDBPeer
from benchmarks.workloads import BulkCheckOp, HealthOp, Operation, Workload

__all__ = ["peer_supports", "run_on_peer", "warm_up_on_peer"]

_MAX_RECORDED = 20


def peer_supports(workload: Workload) -> bool:
    """False for workloads the embedded peer cannot run (the health check)."""
    return not any(isinstance(op, HealthOp) for op in workload.operations[:1])


def _send(peer: SpiceDBPeer, op: Operation, tag: str) -> tuple[int, list[str]]:
    if isinstance(op, CheckQuery):
        got = peer.check(op.resource_type, op.resource_id, op.permission, op.subject_type, op.subject_id)
        return 1, [] if got == op.expected else [f"spicedb: {op}: expected {op.expected}, got {got}"]
    if isinstance(op, BulkCheckOp):
        answers = peer.check_bulk(
            (q.resource_type, q.resource_id, q.permission, q.subject_type, q.subject_id) for q in op.items
        )
        return len(op.items), [
            f"spicedb: {q} (in bulk): expected {q.expected}, got {a}"
            for q, a in zip(op.items, answers, strict=True)
            if a != q.expected
        ]
    if isinstance(op, LookupResourcesQuery):
        ids = tuple(peer.lookup_resources(op.resource_type, op.permission, op.subject_type, op.subject_id))
        return 1, [] if ids == op.expected else [
            f"spicedb: {op}: expected {len(op.expected)} ids, got {len(ids)}"
        ]
    if isinstance(op, LookupSubjectsQuery):
        ids = tuple(peer.lookup_subjects(op.resource_type, op.resource_id, op.permission, op.subject_type))
        return 1, [] if ids == op.expected else [
            f"spicedb: {op}: expected {len(op.expected)} ids, got {len(ids)}"
        ]
    if isinstance(op, HealthOp):
        raise TypeError("the embedded SpiceDB has no health RPC")
    peer.load([op.relationship(tag)])
    return 1, []


def run_on_peer(peer: SpiceDBPeer, workload: Workload, *, concurrency: int, duration: float) -> RunResult:
    """Run `workload` on `peer` with `concurrency` threads for up to `duration` seconds."""
    return _run(peer, workload, ops_for_process(workload, 0, 1), concurrency, duration)


def warm_up_on_peer(
    peer: SpiceDBPeer, workload: Workload, *, concurrency: int, budget: float | None = None
) -> RunResult:
    """Send the operations of `workload.warm_up` to `peer` once, unmeasured, at the workload's consistency.

    The peer is one in-process instance, so one pass reaches all of it. No new operation
    starts after `budget` seconds (None: no limit): at 1M relationships one SpiceDB check
    takes seconds here, and a full pass would take longer than the whole run. The result's
    errors and mismatches count (answers are checked); its latencies are not a figure.
    """
    if not workload.warm_up:
        raise ValueError(f"workload {workload.name} has no warm-up operations")
    return _run(peer, workload, iter(workload.warm_up), concurrency, budget)


def _run(
    peer: SpiceDBPeer,
    workload: Workload,
    ops: Iterator[Operation],
    concurrency: int,
    duration: float | None,
) -> RunResult:
    """Send `ops` from `concurrency` threads until they run out or `duration` (None: no limit) ends."""
    peer.set_consistency("fully_consistent" if workload.consistency == "full" else "minimize_latency")
    lock = threading.Lock()
    writes = itertools.count()
    result = RunResult()
    deadline = float("inf") if duration is None else time.perf_counter() + duration

    def worker() -> None:
        while time.perf_counter() < deadline:
            with lock:
                op = next(ops, None)
                tag = f"spicedb-{next(writes)}"
            if op is None:
                result.exhausted = True
                return
            began = time.perf_counter()
            try:
                items, wrong = _send(peer, op, tag)
            except Exception as err:  # noqa: BLE001 - counted and reported, never an answer
                with lock:
                    result.errors += 1
                    if len(result.error_messages) < _MAX_RECORDED:
                        result.error_messages.append(f"spicedb: {op}: {err}")
                continue
            elapsed = (time.perf_counter() - began) * 1000
            with lock:
                result.latencies_ms.append(elapsed)
                result.operations += 1
                result.items += items
                if wrong:
                    result.mismatch_count += len(wrong)
                    result.mismatches.extend(wrong[: _MAX_RECORDED - len(result.mismatches)])

    cpu0 = time.process_time()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    result.wall_seconds = time.perf_counter() - started
    result.client_cpu_seconds = time.process_time() - cpu0
    return result
