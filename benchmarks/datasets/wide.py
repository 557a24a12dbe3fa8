"""The *wide* dataset: public documents (``user:*``) and large flat groups.

Per tenant with budget B relationships:

- users ``t{t}-u{i}``: B/5, each in 1-2 of 8 flat groups (thousands of members each).
- documents ``t{t}-d{i}``: each has an editor user; ~60% are shared with one group and
  ~50% with 1-2 users. In tenant 0 only (the public space, the one global tenant) ~30% of
  documents are public (``viewer@user:*``), so every user of every tenant can view them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from benchmarks.datasets.base import DEFAULT_SEED, TenantWorld, tenant_prefix

SCHEMA = """\
definition user {}

definition group {
    relation member: user
}

definition document {
    relation viewer: user | user:* | group#member
    relation editor: user | group#member
    permission edit = editor
    permission view = viewer + edit
}
"""

TENANT_BUDGET = 100_000
"""Relationships per tenant at full size."""

GROUPS_PER_TENANT = 8
"""Flat groups per tenant; with B/5 users each group has thousands of members."""

PUBLIC_TENANT = 0
"""The only tenant with public documents."""

_PER_DOCUMENT = 2.35


@dataclass(frozen=True, slots=True)
class WideCounts:
    """Object counts of one wide tenant."""

    users: int
    documents: int

    @classmethod
    def for_budget(cls, budget: int) -> WideCounts:
        """Split `budget` relationships into object counts."""
        users = max(8, budget // 5)
        rest = budget - 1.5 * users
        return cls(users=users, documents=max(4, int(rest / _PER_DOCUMENT)))


class WideWorld(TenantWorld):
    """The wide dataset at one (size, seed); see the module docstring for its shape."""

    name: ClassVar[str] = "wide"
    schema: ClassVar[str] = SCHEMA

    def __init__(self, size: int, seed: int = DEFAULT_SEED, *, tenant_budget: int = TENANT_BUDGET) -> None:
        super().__init__(size, seed, tenant_budget=tenant_budget)
        self.counts = WideCounts.for_budget(self._budget.tenant_budget)

    @property
    def global_tenants(self) -> tuple[int, ...]:
        """Tenant 0 holds the public documents, visible to users of every tenant."""
        return (PUBLIC_TENANT,)

    def tenant_relationships(self, tenant: int) -> Iterator[str]:
        """Yield one tenant's relationships: group memberships, then documents."""
        rng = self._rng(tenant)
        p = tenant_prefix(tenant)
        c = self.counts
        for u in range(c.users):
            for g in rng.sample(range(GROUPS_PER_TENANT), 1 + rng.randrange(2)):
                yield f"group:{p}g{g}#member@user:{p}u{u}"
        public_share = 0.3 if tenant == PUBLIC_TENANT else 0.0
        for d in range(c.documents):
            doc = f"document:{p}d{d}"
            yield f"{doc}#editor@user:{p}u{rng.randrange(c.users)}"
            if rng.random() < public_share:
                yield f"{doc}#viewer@user:*"
            if rng.random() < 0.6:
                yield f"{doc}#viewer@group:{p}g{rng.randrange(GROUPS_PER_TENANT)}#member"
            if rng.random() < 0.5:
                for u in rng.sample(range(c.users), 1 + rng.randrange(2)):
                    yield f"{doc}#viewer@user:{p}u{u}"
