"""The harness's workloads: named, deterministic pools of operations with their expected answers.

A `Workload` is a tuple of operations plus how to read them (consistency) and whether the pool
may be repeated (`cycle`). Cold checks never cycle: each check is asked once per run, so no
answer can come from a cache. Warm workloads (`warm_check`, `mixed`) name their `warm_up`
set, every distinct read of the pool, which the harness sends to every server worker,
unmeasured, before it measures them (a warm workload is measured with a warmed cache).
Every read operation carries the reference's answer; the load driver compares every reply
with it. Writes create relationships on fresh documents for a subject no query asks about
(``user:bench-writer``), so they never change an expected answer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from benchmarks.datasets.base import World, tenant_of
from benchmarks.queries import CheckQuery, LookupResourcesQuery, LookupSubjectsQuery, QuerySample

__all__ = [
    "BENCH_WRITER",
    "WORKLOAD_NAMES",
    "BulkCheckOp",
    "HealthOp",
    "Operation",
    "Workload",
    "WriteOp",
    "build_workloads",
    "direct_checks",
    "distinct_reads",
]

BENCH_WRITER = "bench-writer"
"""The user id that the write workload grants on fresh documents (absent from every query)."""

BULK_SIZE = 100
"""Items per CheckBulk call."""

WORKLOAD_NAMES = (
    "L0_health",
    "L1_direct_check",
    "cold_check",
    "warm_check",
    "bulk_check",
    "lookup_resources",
    "lookup_subjects",
    "write",
    "mixed",
)
"""Every workload, in run order (the limits first)."""


@dataclass(frozen=True, slots=True)
class HealthOp:
    """One gRPC health check (the L0 limit: a trivial unary RPC)."""

    def __str__(self) -> str:
        return "health"


@dataclass(frozen=True, slots=True)
class BulkCheckOp:
    """One CheckBulk call of `items`, answered item by item."""

    items: tuple[CheckQuery, ...]

    def __str__(self) -> str:
        return f"check-bulk of {len(self.items)} starting {self.items[0]}"


@dataclass(frozen=True, slots=True)
class WriteOp:
    """TOUCH ``document:<prefix><n>#viewer@user:bench-writer`` (n made unique by the driver)."""

    prefix: str = "bench-w"

    def relationship(self, unique: str) -> str:
        """The canonical relationship written for the unique suffix `unique`."""
        return f"document:{self.prefix}{unique}#viewer@user:{BENCH_WRITER}"

    def __str__(self) -> str:
        return "write"


Operation = HealthOp | CheckQuery | BulkCheckOp | LookupResourcesQuery | LookupSubjectsQuery | WriteOp
"""Anything the load driver can send."""


@dataclass(frozen=True, slots=True)
class Workload:
    """A named pool of operations read at `consistency` (``full`` or ``min``).

    With `cycle` the driver repeats the pool until the duration ends; without it the run ends
    early when the pool is used up (the report says so). `warm_up` (empty: none) is what must
    reach every server worker, unmeasured and at the same consistency, before the pool is
    measured: distinct read operations, each one of the pool's.
    """

    name: str
    description: str
    operations: tuple[Operation, ...]
    consistency: str
    cycle: bool
    warm_up: tuple[Operation, ...] = ()

    def __post_init__(self) -> None:
        if not self.operations:
            raise ValueError(f"workload {self.name} has no operations")
        if self.consistency not in {"full", "min"}:
            raise ValueError(f"consistency must be full or min, not {self.consistency!r}")
        if self.warm_up:
            if len(set(self.warm_up)) != len(self.warm_up):
                raise ValueError(f"workload {self.name}: warm-up operations must be distinct")
            if any(isinstance(op, HealthOp | WriteOp) for op in self.warm_up):
                raise ValueError(f"workload {self.name}: a warm-up sends reads only")
            if not set(self.warm_up) <= set(self.operations):
                # Warming anything else would warm answers the measured run never asks for.
                raise ValueError(f"workload {self.name}: warm-up operations must come from the pool")


def direct_checks(world: World, sample: QuerySample, count: int) -> tuple[CheckQuery, ...]:
    """Up to `count` checks of a stored relation (``document:x#viewer@user:y``): each one indexed read.

    Drawn from the first sampled tenant's relationships with a plain user subject; all expect yes.
    """
    tenant = min((tenant_of(q.resource_id) for q in sample.checks), key=lambda t: -1 if t is None else t)
    tenant = 0 if tenant is None else tenant
    found: list[CheckQuery] = []
    for line in world.tenant_relationships(tenant):
        resource, _, subject = line.partition("@")
        if not subject.startswith("user:") or "#" in subject or subject.endswith(":*"):
            continue
        rtype, _, rest = resource.partition(":")
        rid, _, relation = rest.partition("#")
        found.append(CheckQuery(rtype, rid, relation, subject.removeprefix("user:"), expected=True))
        if len(found) >= count:
            break
    if not found:
        raise ValueError(f"tenant {tenant} has no direct user relationships")
    return tuple(found)


def distinct_reads(operations: Sequence[Operation]) -> tuple[Operation, ...]:
    """Every distinct read (check, check-bulk, lookup) of `operations`, in order of first use.

    That is a cycling pool's hot set: what its first pass evaluates cold and every later
    pass may answer from a cache.
    """
    return tuple(dict.fromkeys(op for op in operations if not isinstance(op, HealthOp | WriteOp)))


def _zipf(
    pool: Sequence[CheckQuery], count: int, rng: random.Random, exponent: float = 1.1
) -> list[CheckQuery]:
    weights = [1.0 / (rank**exponent) for rank in range(1, len(pool) + 1)]
    return rng.choices(pool, weights=weights, k=count)


def _chunks(items: Sequence[CheckQuery], size: int) -> Iterator[tuple[CheckQuery, ...]]:
    iterator = iter(items)
    while chunk := tuple(islice(iterator, size)):
        if len(chunk) == size:
            yield chunk


def build_workloads(
    world: World, sample: QuerySample, *, names: Sequence[str] = WORKLOAD_NAMES, hot_set: int = 1000
) -> dict[str, Workload]:
    """The named workloads over `sample` (deterministic from the sample's seed), in `names` order.

    Raises ValueError for an unknown name. Cold checks use every sample check once; warm checks
    repeat the first `hot_set` checks with Zipf-distributed popularity. The warm workloads
    (``warm_check``, ``mixed``) carry their distinct reads as `Workload.warm_up`.
    """
    unknown = sorted(set(names) - set(WORKLOAD_NAMES))
    if unknown:
        raise ValueError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOAD_NAMES)}")
    rng = random.Random(f"workloads:{sample.dataset}:{sample.seed}:{sample.size}")
    checks = sample.checks
    hot = checks[: max(1, min(hot_set, len(checks)))]
    warm = tuple(_zipf(hot, 20_000, rng))
    lookups: list[Operation] = [*sample.lookup_resources, *sample.lookup_subjects]
    mixed: list[Operation] = []
    for i in range(5000):
        roll = rng.random()
        if roll < 0.95:
            mixed.append(warm[i])
        elif roll < 0.99:
            mixed.append(lookups[i % len(lookups)])
        else:
            mixed.append(WriteOp())
    shuffled = list(checks)
    rng.shuffle(shuffled)
    factories = {
        "L0_health": lambda: Workload(
            "L0_health", "gRPC health check (trivial unary RPC)", (HealthOp(),), "min", cycle=True
        ),
        "L1_direct_check": lambda: Workload(
            "L1_direct_check",
            "Check of a stored relation (one indexed read), fully consistent",
            direct_checks(world, sample, 20_000),
            "full",
            cycle=True,
        ),
        "cold_check": lambda: Workload(
            "cold_check", "distinct permission checks, fully consistent", checks, "full", cycle=False
        ),
        "warm_check": lambda: Workload(
            "warm_check",
            f"Zipf-repeated checks over {len(hot)} hot checks, minimize_latency",
            warm,
            "min",
            cycle=True,
            warm_up=distinct_reads(warm),
        ),
        "bulk_check": lambda: Workload(
            "bulk_check",
            f"CheckBulk of {BULK_SIZE} distinct items, each sampled check asked once, fully consistent",
            tuple(BulkCheckOp(chunk) for chunk in _chunks(shuffled, BULK_SIZE))
            or (BulkCheckOp(tuple(checks)),),
            "full",
            # Like cold checks, never repeated: a second pass would be answered from the cache,
            # and the target compares a bulk item with a cold check.
            cycle=False,
        ),
        "lookup_resources": lambda: Workload(
            "lookup_resources",
            "LookupResources, fully consistent",
            sample.lookup_resources,
            "full",
            cycle=True,
        ),
        "lookup_subjects": lambda: Workload(
            "lookup_subjects", "LookupSubjects, fully consistent", sample.lookup_subjects, "full", cycle=True
        ),
        "write": lambda: Workload(
            "write", "TOUCH of one relationship per call", (WriteOp(),), "full", cycle=True
        ),
        "mixed": lambda: Workload(
            "mixed",
            "95% warm check, 4% lookup, 1% write, minimize_latency",
            tuple(mixed),
            "min",
            cycle=True,
            warm_up=distinct_reads(mixed),
        ),
    }
    return {name: factories[name]() for name in names}
