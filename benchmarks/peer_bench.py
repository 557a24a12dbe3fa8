"""Measure the SpiceDB peer in-process: generation rate, load rate, Check latency and throughput.

Every timed Check is also compared with the reference answer; a difference fails the run.
These are the peer's own figures (no gRPC, no network: SpiceDB's C ABI in this process).
With `warm_up`, each timed batch follows an untimed pass over its distinct checks (answers
checked too), as the harness warms its warm workloads; without, the first batch is cold.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.compare import AnswerMismatchError, Mismatch, require_agreement
from benchmarks.datasets import World, relationships
from benchmarks.queries import CheckQuery, build_sample
from benchmarks.spicedb_peer import DISPATCH_CACHE_NOTE, SpiceDBPeer

__all__ = ["CheckFigures", "PeerReport", "measure_generation", "run_peer_bench", "time_checks"]


@dataclass(frozen=True, slots=True)
class CheckFigures:
    """Latency percentiles (ms) and throughput of one batch of checks at one thread count."""

    threads: int
    checks: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    throughput_per_s: float
    warm_up_checks: int = 0
    """Untimed checks sent before the timed ones (0: none)."""


@dataclass(slots=True)
class PeerReport:
    """Everything `run_peer_bench` measured, JSON-ready via `to_json`."""

    dataset: str
    size: int
    seed: int
    relationships: int
    generation_per_s: float
    load_seconds: float
    load_per_s: float
    sample_queries_agreed: int
    checks: list[CheckFigures] = field(default_factory=list)
    note: str = DISPATCH_CACHE_NOTE

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def to_text(self) -> str:
        """A short human-readable summary."""
        lines = [
            f"dataset {self.dataset} size {self.size} seed {self.seed}: {self.relationships} relationships",
            f"  generation      {self.generation_per_s:>12,.0f} rel/s",
            f"  SpiceDB load    {self.load_per_s:>12,.0f} rel/s ({self.load_seconds:.1f} s)",
            f"  answers         {self.sample_queries_agreed} sample queries agree with the reference",
        ]
        lines.extend(
            f"  check x{c.threads:<2} threads p50 {c.p50_ms:.3f} ms  p95 {c.p95_ms:.3f} ms  "
            f"p99 {c.p99_ms:.3f} ms  "
            f"max {c.max_ms:.2f} ms  {c.throughput_per_s:,.0f}/s ({c.checks} checks"
            + (f", after {c.warm_up_checks} warm-up checks)" if c.warm_up_checks else ")")
            for c in self.checks
        )
        lines.append(f"  note: {self.note}")
        return "\n".join(lines)


def measure_generation(world: World) -> tuple[int, float]:
    """Stream the whole world once; return (relationship count, relationships per second)."""
    started = time.perf_counter()
    count = sum(1 for _ in relationships(world))
    return count, count / (time.perf_counter() - started)


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def time_checks(
    peer: SpiceDBPeer, checks: Sequence[CheckQuery], *, threads: int = 1, warm_up: bool = False
) -> CheckFigures:
    """Run every check once over `threads` threads; raise AnswerMismatchError on any wrong answer.

    With `warm_up`, every distinct check is first sent once, untimed (its answer checked too).
    """
    if not checks:
        raise ValueError("no checks to time")

    def one(q: CheckQuery) -> tuple[float, Mismatch | None]:
        started = time.perf_counter()
        got = peer.check(q.resource_type, q.resource_id, q.permission, q.subject_type, q.subject_id)
        elapsed = time.perf_counter() - started
        return elapsed, None if got == q.expected else Mismatch("spicedb", str(q), str(q.expected), str(got))

    def run(batch: Sequence[CheckQuery]) -> list[tuple[float, Mismatch | None]]:
        if threads == 1:
            return [one(q) for q in batch]
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(one, batch))

    warm = tuple(dict.fromkeys(checks)) if warm_up else ()
    warm_mismatches = [m for _, m in run(warm) if m is not None]
    started = time.perf_counter()
    results = run(checks)
    wall = time.perf_counter() - started
    mismatches = warm_mismatches + [m for _, m in results if m is not None]
    if mismatches:
        raise AnswerMismatchError(mismatches)
    latencies = sorted(t * 1000 for t, _ in results)
    return CheckFigures(
        threads=threads,
        checks=len(checks),
        p50_ms=statistics.median(latencies),
        p95_ms=_percentile(latencies, 0.95),
        p99_ms=_percentile(latencies, 0.99),
        max_ms=latencies[-1],
        throughput_per_s=len(checks) / wall,
        warm_up_checks=len(warm),
    )


def run_peer_bench(
    world: World, *, checks: int = 1000, threads: Sequence[int] = (1, 4), warm_up: bool = False
) -> PeerReport:
    """Generate `world`, load it into a fresh SpiceDB, verify the sample, time checks per thread count.

    With `warm_up` each thread count's timed checks follow an untimed pass over them (see
    `time_checks`). Raises PeerUnavailableError if SpiceDB cannot run, AnswerMismatchError on
    any wrong answer.
    """
    count, generation_rate = measure_generation(world)
    sample = build_sample(world, checks=checks)
    with SpiceDBPeer() as peer:
        peer.write_schema(world.schema)
        loaded = peer.load(relationships(world))
        agreed = require_agreement("spicedb", peer, sample)
        report = PeerReport(
            dataset=world.name,
            size=world.size,
            seed=world.seed,
            relationships=count,
            generation_per_s=generation_rate,
            load_seconds=loaded.seconds,
            load_per_s=loaded.rate_per_s,
            sample_queries_agreed=agreed,
        )
        for n in threads:
            report.checks.append(time_checks(peer, sample.checks, threads=n, warm_up=warm_up))
    return report
