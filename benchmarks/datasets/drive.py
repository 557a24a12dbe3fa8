"""The *drive* dataset: users, nested groups, folder trees and documents, Google-Drive-like.

Per tenant (a customer) with budget B relationships:

- users ``t{t}-u{i}``: B/10.
- groups ``t{t}-g{i}``: users/8, nested as a binary tree (``g0`` = everyone); each group's
  members are members of its parent, so a user in a leaf group is transitively in 7-9 groups.
  Users join 1-2 groups from the lower half of the tree.
- folders ``t{t}-f{i}``: B/25, a random tree of depth <= 10 under ``f0``; each has one owner
  and sometimes a viewer/editor user or group. Top-level folders are shared with a
  department group (levels 2-3 of the group tree, 1/4 to 1/8 of the users).
- documents ``t{t}-d{i}``: the rest of the budget; each has a parent folder and an owner,
  and sometimes direct viewers/editors; ~1% are shared with everyone (``g0``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from benchmarks.datasets.base import DEFAULT_SEED, TenantWorld, tenant_prefix

SCHEMA = """\
definition user {}

definition group {
    relation member: user | group#member
}

definition folder {
    relation parent: folder
    relation owner: user
    relation editor: user | group#member
    relation viewer: user | group#member
    permission edit = owner + editor + parent->edit
    permission view = edit + viewer + parent->view
}

definition document {
    relation parent: folder
    relation owner: user
    relation editor: user | group#member
    relation viewer: user | group#member
    permission edit = owner + editor + parent->edit
    permission view = edit + viewer + parent->view
}
"""

TENANT_BUDGET = 50_000
"""Relationships per tenant at full size (a mid-sized customer)."""

MAX_FOLDER_DEPTH = 10
"""The deepest parent chain from a folder to its tenant root."""

# Expected relationships per folder/document, used only to size the tenant.
_PER_FOLDER = 2.7
_PER_DOCUMENT = 2.65


@dataclass(frozen=True, slots=True)
class DriveCounts:
    """Object counts of one drive tenant."""

    users: int
    groups: int
    folders: int
    documents: int

    @classmethod
    def for_budget(cls, budget: int) -> DriveCounts:
        """Split `budget` relationships into object counts (approximately `budget` in total)."""
        users = max(8, budget // 10)
        groups = max(4, users // 8)
        folders = max(3, budget // 25)
        rest = budget - (groups - 1) - 1.5 * users - _PER_FOLDER * folders
        documents = max(4, int(rest / _PER_DOCUMENT))
        return cls(users=users, groups=groups, folders=folders, documents=documents)


class DriveWorld(TenantWorld):
    """The drive dataset at one (size, seed); see the module docstring for its shape."""

    name: ClassVar[str] = "drive"
    schema: ClassVar[str] = SCHEMA

    def __init__(self, size: int, seed: int = DEFAULT_SEED, *, tenant_budget: int = TENANT_BUDGET) -> None:
        super().__init__(size, seed, tenant_budget=tenant_budget)
        self.counts = DriveCounts.for_budget(self._budget.tenant_budget)

    def tenant_relationships(self, tenant: int) -> Iterator[str]:
        """Yield one tenant's relationships: groups, memberships, folders, then documents."""
        rng = self._rng(tenant)
        p = tenant_prefix(tenant)
        c = self.counts
        # Binary tree of groups: g's members are members of its parent (g - 1) // 2.
        for g in range(1, c.groups):
            yield f"group:{p}g{(g - 1) // 2}#member@group:{p}g{g}#member"
        low = c.groups // 2
        for u in range(c.users):
            for g in rng.sample(range(low, c.groups), 1 + rng.randrange(2)):
                yield f"group:{p}g{g}#member@user:{p}u{u}"
        yield from self._folders(rng, p)
        yield from self._documents(rng, p)

    def _grant(self, rng: random.Random, p: str, resource: str, relation: str, *, group_share: float) -> str:
        """One viewer/editor grant to a random user, or (with `group_share`) a random group."""
        c = self.counts
        if rng.random() < group_share:
            return f"{resource}#{relation}@group:{p}g{rng.randrange(c.groups)}#member"
        return f"{resource}#{relation}@user:{p}u{rng.randrange(c.users)}"

    def _folders(self, rng: random.Random, p: str) -> Iterator[str]:
        c = self.counts
        depth = [0] * c.folders
        yield f"folder:{p}f0#owner@user:{p}u0"
        for f in range(1, c.folders):
            # Rejection-sample a parent that keeps the chain within MAX_FOLDER_DEPTH.
            parent = rng.randrange(f)
            while depth[parent] >= MAX_FOLDER_DEPTH - 1:
                parent = rng.randrange(f)
            depth[f] = depth[parent] + 1
            folder = f"folder:{p}f{f}"
            yield f"{folder}#parent@folder:{p}f{parent}"
            yield f"{folder}#owner@user:{p}u{rng.randrange(c.users)}"
            if parent == 0:
                # A department folder, shared with a group two or three levels below `everyone`.
                yield f"{folder}#viewer@group:{p}g{3 + rng.randrange(min(12, c.groups - 3))}#member"
            elif rng.random() < 0.3:
                yield self._grant(rng, p, folder, "viewer", group_share=0.6)
            if rng.random() < 0.25:
                yield self._grant(rng, p, folder, "editor", group_share=0.3)

    def _documents(self, rng: random.Random, p: str) -> Iterator[str]:
        c = self.counts
        for d in range(c.documents):
            doc = f"document:{p}d{d}"
            yield f"{doc}#parent@folder:{p}f{rng.randrange(c.folders)}"
            yield f"{doc}#owner@user:{p}u{rng.randrange(c.users)}"
            roll = rng.random()
            if roll < 0.01:
                yield f"{doc}#viewer@group:{p}g0#member"
            elif roll < 0.45:
                yield self._grant(rng, p, doc, "viewer", group_share=0.3)
            if rng.random() < 0.2:
                yield self._grant(rng, p, doc, "editor", group_share=0.25)
