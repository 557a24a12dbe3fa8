"""What every benchmark dataset is: a schema plus a seeded, tenant-partitioned relationship stream.

A dataset world is split into *tenants* of a fixed relationship budget (a Drive customer, a
GitHub organization). Tenant ``t`` is generated from its own RNG seeded with
``(dataset, seed, t)``, so any tenant can be regenerated alone, in any order, without the
others. The full stream is the concatenation of the tenant streams in tenant order; it is
produced lazily, one relationship string at a time, so 10M relationships never sit in memory.

Isolation invariant (what makes a per-tenant reference correct): every subject id written in
tenant ``t`` starts with ``t{t}-``, except wildcards, which appear only in the tenants listed by
`World.global_tenants`. `check_tenant_isolation` verifies it for a relationship stream.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar, Protocol

SIZES: dict[str, int] = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
"""Named dataset sizes (approximate relationship counts)."""

DEFAULT_SEED = 20240601
"""The seed every command uses unless told otherwise."""


def parse_size(text: str) -> int:
    """Parse ``10k``/``100K``/``1m``/``10M`` or a plain integer into a relationship count.

    Raises ValueError naming the accepted forms.
    """
    value = text.strip().lower()
    if value in SIZES:
        return SIZES[value]
    match = re.fullmatch(r"(\d+)([km]?)", value)
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"invalid size {text!r}: expected one of {', '.join(SIZES)} or a positive integer")
    factor = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2)]
    return int(match.group(1)) * factor


def tenant_prefix(tenant: int) -> str:
    """The id prefix of every object of `tenant` (``t3-``)."""
    return f"t{tenant}-"


def tenant_of(object_id: str) -> int | None:
    """The tenant an object id belongs to, or None for a wildcard or a foreign id."""
    match = re.match(r"t(\d+)-", object_id)
    return int(match.group(1)) if match else None


class World(Protocol):
    """**Protocol:** One generated dataset instance: (dataset, size, seed) fixed.

    Generation is deterministic: the same (size, seed, tenant_budget) always yields the same
    strings in the same order, on any machine and Python version >= 3.11.
    """

    name: ClassVar[str]
    schema: ClassVar[str]

    @property
    def size(self) -> int:
        """The requested approximate relationship count."""
        ...

    @property
    def seed(self) -> int:
        """The seed."""
        ...

    @property
    def tenant_count(self) -> int:
        """How many tenants the world has (at least one)."""
        ...

    @property
    def global_tenants(self) -> tuple[int, ...]:
        """Tenants whose relationships may grant to subjects of any tenant (wildcards)."""
        ...

    def tenant_relationships(self, tenant: int) -> Iterator[str]:
        """Yield tenant `tenant`'s relationships as canonical strings; single-use iterator."""
        ...

    def user_id(self, tenant: int, index: int) -> str:
        """The id of user number `index` of `tenant` (it need not appear in any relationship)."""
        ...


def relationships(world: World) -> Iterator[str]:
    """Yield every relationship of `world`, tenant by tenant; streams, never materializes."""
    for tenant in range(world.tenant_count):
        yield from world.tenant_relationships(tenant)


@dataclass(frozen=True, slots=True)
class Budget:
    """How a tenant's relationship budget splits into tenants (shared sizing rule)."""

    tenant_budget: int
    tenant_count: int

    @classmethod
    def split(cls, size: int, tenant_budget: int) -> Budget:
        """At least one tenant; tenants of `tenant_budget` relationships (smaller if `size` is)."""
        if size <= 0 or tenant_budget <= 0:
            raise ValueError(f"size and tenant budget must be positive, got {size} and {tenant_budget}")
        budget = min(size, tenant_budget)
        return cls(tenant_budget=budget, tenant_count=max(1, round(size / budget)))


class TenantWorld:
    """What every tenant-partitioned world shares: sizing, seed, tenants and user ids.

    A subclass sets `name` and `schema`, computes its object counts from
    `self._budget.tenant_budget` in `__init__`, and yields each tenant's relationships from
    `tenant_relationships` using `self._rng(tenant)`, so any tenant can be rebuilt alone.
    """

    name: ClassVar[str]
    schema: ClassVar[str]

    def __init__(self, size: int, seed: int, *, tenant_budget: int) -> None:
        self._size = size
        self._seed = seed
        self._budget = Budget.split(size, tenant_budget)

    @property
    def size(self) -> int:
        """The requested approximate relationship count."""
        return self._size

    @property
    def seed(self) -> int:
        """The seed."""
        return self._seed

    @property
    def tenant_count(self) -> int:
        """How many tenants (customers, organizations) the world has."""
        return self._budget.tenant_count

    @property
    def global_tenants(self) -> tuple[int, ...]:
        """Tenants whose grants reach users of other tenants; none unless a world has wildcards."""
        return ()

    def user_id(self, tenant: int, index: int) -> str:
        """The id of user `index` of `tenant`."""
        return f"{tenant_prefix(tenant)}u{index}"

    def _rng(self, tenant: int) -> random.Random:
        """The tenant's own generator: the same (world, seed, budget, tenant) gives the same data."""
        return random.Random(f"{self.name}:{self._seed}:{self._budget.tenant_budget}:{tenant}")


class IsolationError(AssertionError):
    """A generated relationship crosses tenants: the per-tenant reference would be wrong."""


def check_tenant_isolation(world: World, tenant: int, lines: Iterable[str]) -> Iterator[str]:
    """Pass `lines` through, raising IsolationError at the first one that crosses tenants.

    The resource must belong to `tenant`; the subject must too, or be a wildcard in a
    global tenant.
    """
    prefix = tenant_prefix(tenant)
    for line in lines:
        resource, _, subject = line.partition("@")
        resource_id = resource.split(":", 1)[1].split("#", 1)[0]
        subject_id = subject.split(":", 1)[1].split("#", 1)[0]
        if not resource_id.startswith(prefix):
            raise IsolationError(f"tenant {tenant} wrote a foreign resource: {line}")
        if subject_id == "*":
            if tenant not in world.global_tenants:
                raise IsolationError(f"tenant {tenant} is not global but wrote a wildcard: {line}")
        elif not subject_id.startswith(prefix):
            raise IsolationError(f"tenant {tenant} wrote a foreign subject: {line}")
        yield line
