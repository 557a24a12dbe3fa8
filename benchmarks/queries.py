"""Deterministic query samples with expected answers from the reference evaluator.

A `QuerySample` holds Check, LookupResources and LookupSubjects queries over one world. About
half of the checks are drawn from the resource's actual holders (so the sample is not all
"no"); the rest ask a random user of the same tenant, and some ask a user of another tenant
(who must be denied unless a wildcard grants everyone). Expected answers never come from the
rebac engine: they come from `benchmarks.reference`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.datasets.base import World, tenant_prefix
from benchmarks.reference import Graph, materialize, reference_for

__all__ = [
    "QUERY_SHAPES",
    "CheckQuery",
    "LookupResourcesQuery",
    "LookupSubjectsQuery",
    "QuerySample",
    "QueryShape",
    "build_sample",
]


@dataclass(frozen=True, slots=True)
class QueryShape:
    """Which (type, permission) pairs a dataset's sample asks about."""

    checks: tuple[tuple[str, str], ...]
    lookup_resources: tuple[str, str]
    lookup_subjects: tuple[str, str]


QUERY_SHAPES: dict[str, QueryShape] = {
    "drive": QueryShape(
        checks=(("document", "view"), ("document", "edit"), ("folder", "view")),
        lookup_resources=("document", "view"),
        lookup_subjects=("document", "view"),
    ),
    "github": QueryShape(
        checks=(("repository", "read"), ("repository", "write"), ("repository", "manage")),
        lookup_resources=("repository", "read"),
        lookup_subjects=("repository", "write"),
    ),
    "wide": QueryShape(
        checks=(("document", "view"), ("document", "edit")),
        lookup_resources=("document", "view"),
        lookup_subjects=("document", "view"),
    ),
}
"""Dataset name -> the shapes of its sampled queries."""


@dataclass(frozen=True, slots=True)
class CheckQuery:
    """May user `subject_id` have `permission` on resource? `expected` is the reference's answer."""

    resource_type: str
    resource_id: str
    permission: str
    subject_id: str
    expected: bool
    subject_type: str = "user"

    def __str__(self) -> str:
        resource = f"{self.resource_type}:{self.resource_id}"
        return f"check {resource}#{self.permission}@{self.subject_type}:{self.subject_id}"


@dataclass(frozen=True, slots=True)
class LookupResourcesQuery:
    """Which resources of `resource_type` may the user reach? `expected`: sorted ids."""

    resource_type: str
    permission: str
    subject_id: str
    expected: tuple[str, ...]
    subject_type: str = "user"

    def __str__(self) -> str:
        return (
            f"lookup-resources {self.resource_type}#{self.permission}@{self.subject_type}:{self.subject_id}"
        )


@dataclass(frozen=True, slots=True)
class LookupSubjectsQuery:
    """Which users hold `permission` on the resource? `expected`: sorted ids, ``*`` for a wildcard."""

    resource_type: str
    resource_id: str
    permission: str
    expected: tuple[str, ...]
    subject_type: str = "user"

    def __str__(self) -> str:
        return (
            f"lookup-subjects {self.resource_type}:{self.resource_id}#{self.permission} {self.subject_type}"
        )


@dataclass(frozen=True, slots=True)
class QuerySample:
    """A deterministic sample of queries with expected answers, for one (dataset, size, seed)."""

    dataset: str
    size: int
    seed: int
    checks: tuple[CheckQuery, ...]
    lookup_resources: tuple[LookupResourcesQuery, ...]
    lookup_subjects: tuple[LookupSubjectsQuery, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (lists, not tuples)."""
        return asdict(self)

    def __len__(self) -> int:
        return len(self.checks) + len(self.lookup_resources) + len(self.lookup_subjects)

    def positive_checks(self) -> int:
        """How many checks expect "has permission"."""
        return sum(q.expected for q in self.checks)


def sampled_tenants(world: World, count: int) -> list[int]:
    """Up to `count` tenants spread over the world (first, last, and evenly between)."""
    n = world.tenant_count
    if count >= n:
        return list(range(n))
    if count <= 1:
        return [0]
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(count)})


def _ids_of(graph: Graph, resource_type: str, tenant: int) -> list[str]:
    prefix = tenant_prefix(tenant)
    return [i for i in graph.object_ids(resource_type) if i.startswith(prefix)]


def _users_of(graph: Graph, tenant: int) -> list[str]:
    prefix = tenant_prefix(tenant)
    return sorted(u for u in graph.users if u.startswith(prefix))


def build_sample(
    world: World,
    *,
    checks: int = 200,
    lookup_resources: int = 4,
    lookup_subjects: int = 4,
    tenants: int = 3,
) -> QuerySample:
    """Draw a deterministic query sample from `world` and compute its expected answers.

    Only the sampled tenants (and the global ones) are generated and held in memory, so this
    costs the same at 10M as at 100k. Checks are distinct; fewer than asked are returned
    only if the world is too small to hold that many distinct checks.
    """
    shape = QUERY_SHAPES[world.name]
    rng = random.Random(f"sample:{world.name}:{world.seed}:{world.size}")
    chosen = sampled_tenants(world, tenants)
    graph = materialize(world, chosen)
    reference = reference_for(world.name, graph)
    check_queries = list(_checks(world, graph, chosen=chosen, shape=shape, rng=rng, count=checks))
    lr_type, lr_permission = shape.lookup_resources
    lr_users = [rng.choice(_users_of(graph, rng.choice(chosen))) for _ in range(lookup_resources)]
    restricted = reference_for(world.name, graph, among=frozenset(lr_users))
    lr_queries = tuple(
        LookupResourcesQuery(
            lr_type, lr_permission, user, tuple(restricted.lookup_resources(lr_type, lr_permission, user))
        )
        for user in dict.fromkeys(lr_users)
    )
    ls_type, ls_permission = shape.lookup_subjects
    ls_queries = []
    for _ in range(lookup_subjects):
        resource_id = rng.choice(_ids_of(graph, ls_type, rng.choice(chosen)))
        holders = reference.permission(ls_type, resource_id, ls_permission)
        if holders.excluded:
            raise AssertionError(
                f"{ls_type}:{resource_id} has wildcard exclusions; the sample cannot express them"
            )
        expected = sorted(holders.ids) + (["*"] if holders.wildcard else [])
        ls_queries.append(LookupSubjectsQuery(ls_type, resource_id, ls_permission, tuple(sorted(expected))))
    return QuerySample(
        dataset=world.name,
        size=world.size,
        seed=world.seed,
        checks=tuple(check_queries),
        lookup_resources=lr_queries,
        lookup_subjects=tuple(dict.fromkeys(ls_queries)),
    )


def _checks(
    world: World, graph: Graph, *, chosen: list[int], shape: QueryShape, rng: random.Random, count: int
) -> Iterator[CheckQuery]:
    """Yield up to `count` distinct checks with the reference's answers (see the module docstring)."""
    reference = reference_for(world.name, graph)
    # Memoized: recomputing these lists per check made large samples quadratic.
    ids: dict[tuple[str, int], list[str]] = {}
    users: dict[int, list[str]] = {}
    sorted_holders: dict[tuple[str, str, str], list[str]] = {}
    seen: set[tuple[str, str, str, str]] = set()
    for _ in range(count * 20):
        if len(seen) >= count:
            return
        tenant = rng.choice(chosen)
        resource_type, permission = rng.choice(shape.checks)
        if (resource_type, tenant) not in ids:
            ids[resource_type, tenant] = _ids_of(graph, resource_type, tenant)
        resource_id = rng.choice(ids[resource_type, tenant])
        holders = reference.permission(resource_type, resource_id, permission)
        roll = rng.random()
        if roll < 0.5 and holders.ids:
            holder_key = (resource_type, resource_id, permission)
            if holder_key not in sorted_holders:
                sorted_holders[holder_key] = sorted(holders.ids)
            user = rng.choice(sorted_holders[holder_key])
        elif roll < 0.9 or world.tenant_count == 1:
            if tenant not in users:
                users[tenant] = _users_of(graph, tenant)
            user = rng.choice(users[tenant])
        else:
            # A user of another tenant: denied, except where a wildcard grants everyone.
            other = (tenant + 1 + rng.randrange(world.tenant_count - 1)) % world.tenant_count
            user = world.user_id(other, rng.randrange(100))
        key = (resource_type, resource_id, permission, user)
        if key in seen:
            continue
        seen.add(key)
        yield CheckQuery(resource_type, resource_id, permission, user, holders.contains(user))
