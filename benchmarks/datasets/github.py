"""The *github* dataset: organizations, nested teams, repositories with roles and bans.

Per tenant (an organization ``t{t}-o``) with budget B relationships:

- users: B/8; two owners; ~0.5% banned at the organization.
- teams ``t{t}-k{i}``: users/10, a random forest of depth <= 5; a child team's members are
  members of its parent (``direct_member@team#member``). Users join 1-2 teams, ~10% as
  maintainer. Top-level teams are organization members, as are ~10% of users directly.
- repositories ``t{t}-r{i}``: the rest; each belongs to the organization, half are
  ``internal`` (readable by organization members), each grants 1-2 teams and 0-2 users a
  role (admin, maintainer, writer, triager, reader), ~5% ban a user who may also hold a role.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from benchmarks.datasets.base import DEFAULT_SEED, TenantWorld, tenant_prefix

SCHEMA = """\
definition user {}

definition team {
    relation maintainer: user
    relation direct_member: user | team#member
    permission member = maintainer + direct_member
}

definition organization {
    relation owner: user
    relation member: user | team#member
    relation banned: user
    permission admin = owner
    permission base_read = owner + member
}

definition repository {
    relation organization: organization
    relation internal: organization
    relation admin: user | team#member
    relation maintainer: user | team#member
    relation writer: user | team#member
    relation triager: user | team#member
    relation reader: user | team#member
    relation banned: user
    permission manage = admin + organization->admin
    permission maintain = maintainer + manage
    permission write = (writer + maintain) - (banned + organization->banned)
    permission triage = triager + write
    permission read = (reader + triage + internal->base_read) - (banned + organization->banned)
}
"""

TENANT_BUDGET = 50_000
"""Relationships per organization at full size."""

MAX_TEAM_DEPTH = 5
"""The deepest chain of nested teams."""

ROLES = ("admin", "maintainer", "writer", "triager", "reader")
"""Repository roles, strongest first."""

_PER_REPOSITORY = 4.05


@dataclass(frozen=True, slots=True)
class GithubCounts:
    """Object counts of one organization."""

    users: int
    teams: int
    repositories: int

    @classmethod
    def for_budget(cls, budget: int) -> GithubCounts:
        """Split `budget` relationships into object counts."""
        users = max(8, budget // 8)
        teams = max(3, users // 10)
        rest = budget - 1.6 * users - teams - 2
        return cls(users=users, teams=teams, repositories=max(4, int(rest / _PER_REPOSITORY)))


class GithubWorld(TenantWorld):
    """The github dataset at one (size, seed); see the module docstring for its shape."""

    name: ClassVar[str] = "github"
    schema: ClassVar[str] = SCHEMA

    def __init__(self, size: int, seed: int = DEFAULT_SEED, *, tenant_budget: int = TENANT_BUDGET) -> None:
        super().__init__(size, seed, tenant_budget=tenant_budget)
        self.counts = GithubCounts.for_budget(self._budget.tenant_budget)

    def tenant_relationships(self, tenant: int) -> Iterator[str]:
        """Yield one organization's relationships: org, teams, memberships, repositories."""
        rng = self._rng(tenant)
        p = tenant_prefix(tenant)
        c = self.counts
        org = f"organization:{p}o"
        yield f"{org}#owner@user:{p}u0"
        yield f"{org}#owner@user:{p}u1"
        depth = [0] * c.teams
        for k in range(c.teams):
            # About one team in eight is top-level; the others nest under an earlier team.
            if k == 0 or rng.random() < 0.125:
                yield f"{org}#member@team:{p}k{k}#member"
                continue
            parent = rng.randrange(k)
            while depth[parent] >= MAX_TEAM_DEPTH - 1:
                parent = rng.randrange(k)
            depth[k] = depth[parent] + 1
            yield f"team:{p}k{parent}#direct_member@team:{p}k{k}#member"
        for u in range(c.users):
            for k in rng.sample(range(c.teams), 1 + rng.randrange(2)):
                relation = "maintainer" if rng.random() < 0.1 else "direct_member"
                yield f"team:{p}k{k}#{relation}@user:{p}u{u}"
            if rng.random() < 0.1:
                yield f"{org}#member@user:{p}u{u}"
            if rng.random() < 0.005:
                yield f"{org}#banned@user:{p}u{u}"
        for r in range(c.repositories):
            repo = f"repository:{p}r{r}"
            yield f"{repo}#organization@{org}"
            if rng.random() < 0.5:
                yield f"{repo}#internal@{org}"
            for k in rng.sample(range(c.teams), 1 + rng.randrange(2)):
                yield f"{repo}#{rng.choice(ROLES)}@team:{p}k{k}#member"
            for u in rng.sample(range(c.users), rng.randrange(3)):
                yield f"{repo}#{rng.choice(ROLES)}@user:{p}u{u}"
            if rng.random() < 0.05:
                yield f"{repo}#banned@user:{p}u{rng.randrange(c.users)}"
