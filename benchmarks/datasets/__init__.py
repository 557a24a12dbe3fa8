"""Deterministic, seeded, streamed benchmark datasets: drive, github, wide.

`make_world(name, size, seed)` builds one; `relationships(world)` streams its relationships as
canonical strings (``document:t0-d1#viewer@user:t0-u2``), one at a time.
"""

from __future__ import annotations

from benchmarks.datasets.base import (
    DEFAULT_SEED,
    SIZES,
    IsolationError,
    World,
    check_tenant_isolation,
    parse_size,
    relationships,
    tenant_of,
    tenant_prefix,
)
from benchmarks.datasets.drive import DriveWorld
from benchmarks.datasets.github import GithubWorld
from benchmarks.datasets.wide import WideWorld

__all__ = [
    "DATASETS",
    "DEFAULT_SEED",
    "SIZES",
    "DriveWorld",
    "GithubWorld",
    "IsolationError",
    "WideWorld",
    "World",
    "check_tenant_isolation",
    "make_world",
    "parse_size",
    "relationships",
    "tenant_of",
    "tenant_prefix",
]

DATASETS: dict[str, type[DriveWorld | GithubWorld | WideWorld]] = {
    "drive": DriveWorld,
    "github": GithubWorld,
    "wide": WideWorld,
}
"""Dataset name -> world class."""


def make_world(name: str, size: int, seed: int = DEFAULT_SEED, *, tenant_budget: int | None = None) -> World:
    """Build the world of dataset `name`; raises ValueError naming the known datasets.

    `tenant_budget` None keeps the dataset's default (tests pass a small one to get many tenants).
    """
    try:
        cls = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)}") from None
    if tenant_budget is None:
        return cls(size, seed)
    return cls(size, seed, tenant_budget=tenant_budget)
