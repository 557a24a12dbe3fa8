"""The independent reference evaluator: plain set closures over generated relationships.

It shares no code with the rebac engine. Each dataset's permissions are written out by hand
as set algebra over a `Graph` (a dict index of parsed relationship strings), directly from
its schema text, so that it is easy to check by reading. Every permission evaluates to the
`SubjectSet` of users holding it; Check is membership, LookupSubjects is the set itself and
LookupResources tests every resource of the type.

Scope: each dataset's world is tenant-partitioned (see `benchmarks.datasets.base`), so a
question about tenant ``t`` only needs tenant ``t`` and the global tenants in memory;
`materialize` loads exactly those and verifies the isolation invariant while it does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from benchmarks.datasets.base import World, check_tenant_isolation

__all__ = [
    "DriveReference",
    "GithubReference",
    "Graph",
    "Reference",
    "SubjectSet",
    "WideReference",
    "materialize",
    "reference_for",
]

Subject = tuple[str, str, str | None]
"""A subject as (type, id, relation or None)."""


@dataclass(frozen=True, slots=True)
class SubjectSet:
    """A set of user ids, possibly "every user" (wildcard) minus `excluded`.

    Contains u  <=>  u in ids  or  (wildcard and u not in excluded).
    """

    ids: frozenset[str] = frozenset()
    wildcard: bool = False
    excluded: frozenset[str] = frozenset()

    def contains(self, user_id: str) -> bool:
        """True when `user_id` is in the set."""
        return user_id in self.ids or (self.wildcard and user_id not in self.excluded)

    def union(self, other: SubjectSet) -> SubjectSet:
        """Users in either set."""
        ids = self.ids | other.ids
        if self.wildcard and other.wildcard:
            excluded = self.excluded & other.excluded
        elif self.wildcard:
            excluded = self.excluded - other.ids
        elif other.wildcard:
            excluded = other.excluded - self.ids
        else:
            excluded = frozenset()
        return SubjectSet(ids, self.wildcard or other.wildcard, excluded - ids)

    def minus(self, other: SubjectSet) -> SubjectSet:
        """Users in this set and not in `other`."""
        if other.wildcard:
            # Only users `other` explicitly excludes (and does not list) can survive.
            survivors = other.excluded - other.ids
            return SubjectSet(frozenset(u for u in survivors if self.contains(u)))
        if not self.wildcard:
            return SubjectSet(self.ids - other.ids)
        return SubjectSet(self.ids - other.ids, wildcard=True, excluded=self.excluded | other.ids)


EMPTY = SubjectSet()


def union_all(sets: Iterable[SubjectSet]) -> SubjectSet:
    """The union of `sets` (empty for none)."""
    result = EMPTY
    for s in sets:
        result = result.union(s)
    return result


@dataclass(slots=True)
class Graph:
    """Relationships indexed by (resource type, resource id, relation) -> subjects."""

    edges: dict[tuple[str, str, str], list[Subject]] = field(default_factory=lambda: defaultdict(list))
    objects: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    users: set[str] = field(default_factory=set)
    count: int = 0

    def add(self, line: str) -> None:
        """Index one canonical relationship string (no caveats; this data has none)."""
        resource, _, subject = line.partition("@")
        rtype, _, rest = resource.partition(":")
        rid, _, relation = rest.partition("#")
        stype, _, srest = subject.partition(":")
        sid, _, srelation = srest.partition("#")
        if not (rtype and rid and relation and stype and sid):
            raise ValueError(f"not a relationship: {line!r}")
        self.edges[rtype, rid, relation].append((stype, sid, srelation or None))
        self.objects[rtype].add(rid)
        if stype == "user" and sid != "*":
            self.users.add(sid)
        self.count += 1

    def subjects(self, resource_type: str, resource_id: str, relation: str) -> list[Subject]:
        """The subjects written on resource#relation (empty if none)."""
        return self.edges.get((resource_type, resource_id, relation), [])

    def object_ids(self, resource_type: str) -> list[str]:
        """Every id of `resource_type` that appears as a resource, sorted."""
        return sorted(self.objects.get(resource_type, ()))


def materialize(world: World, tenants: Iterable[int]) -> Graph:
    """Load the relationships of `tenants` plus the world's global tenants into a Graph.

    Raises IsolationError if any loaded relationship crosses tenants.
    """
    graph = Graph()
    for tenant in sorted({*tenants, *world.global_tenants}):
        for line in check_tenant_isolation(world, tenant, world.tenant_relationships(tenant)):
            graph.add(line)
    return graph


class Reference:
    """Shared machinery: memoized permission sets, optionally restricted to some users.

    With `among`, every concrete user set is cut down to `among` (wildcards stay), which keeps
    memory small when only a few users' answers are needed (LookupResources). Subclasses
    define `_evaluate(type, id, permission)`.
    """

    def __init__(self, graph: Graph, *, among: frozenset[str] | None = None) -> None:
        self.graph = graph
        self._among = among
        self._memo: dict[tuple[str, str, str], SubjectSet] = {}
        self._in_progress: set[tuple[str, str, str]] = set()

    def permission(self, resource_type: str, resource_id: str, permission: str) -> SubjectSet:
        """The users holding `permission` on the resource; a cycle in the data is a bug here."""
        key = (resource_type, resource_id, permission)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        if key in self._in_progress:
            raise AssertionError(f"cycle in generated data at {key}: the generators make none")
        self._in_progress.add(key)
        try:
            result = self._evaluate(resource_type, resource_id, permission)
        finally:
            self._in_progress.discard(key)
        self._memo[key] = result
        return result

    def check(self, resource_type: str, resource_id: str, permission: str, user_id: str) -> bool:
        """Whether user `user_id` holds `permission` on the resource."""
        return self.permission(resource_type, resource_id, permission).contains(user_id)

    def lookup_resources(self, resource_type: str, permission: str, user_id: str) -> list[str]:
        """Every resource id of `resource_type` on which the user holds `permission`, sorted."""
        return [
            rid
            for rid in self.graph.object_ids(resource_type)
            if self.check(resource_type, rid, permission, user_id)
        ]

    def users(self, user_ids: Iterable[str]) -> SubjectSet:
        """A concrete user set, restricted to `among` when set."""
        ids = frozenset(user_ids)
        return SubjectSet(ids & self._among if self._among is not None else ids)

    def expand(
        self, resource_type: str, resource_id: str, relation: str, userset: Callable[[str, str], SubjectSet]
    ) -> SubjectSet:
        """The users of resource#relation: direct users, wildcards, and `userset(type, id)` for sets."""
        direct: list[str] = []
        result = EMPTY
        for stype, sid, srelation in self.graph.subjects(resource_type, resource_id, relation):
            if srelation is None and stype == "user":
                if sid == "*":
                    result = result.union(SubjectSet(wildcard=True))
                else:
                    direct.append(sid)
            elif srelation is not None:
                result = result.union(userset(stype, sid))
            else:
                raise AssertionError(
                    f"unexpected subject {stype}:{sid} on {resource_type}:{resource_id}#{relation}"
                )
        return result.union(self.users(direct))

    def arrow(self, resource_type: str, resource_id: str, relation: str, permission: str) -> SubjectSet:
        """``relation->permission``: the union of `permission` over the objects in `relation`."""
        return union_all(
            self.permission(stype, sid, permission)
            for stype, sid, _ in self.graph.subjects(resource_type, resource_id, relation)
        )

    def _evaluate(self, resource_type: str, resource_id: str, permission: str) -> SubjectSet:
        raise NotImplementedError


class DriveReference(Reference):
    """The drive schema, by hand: group#member closes over nested groups; view/edit inherit."""

    def _evaluate(self, resource_type: str, resource_id: str, permission: str) -> SubjectSet:
        t, i = resource_type, resource_id
        members = self._group_members
        match (t, permission):
            case ("group", "member"):
                return self.expand(t, i, "member", members)
            case ("folder" | "document", "edit"):
                # edit = owner + editor + parent->edit
                return union_all(
                    (
                        self.expand(t, i, "owner", members),
                        self.expand(t, i, "editor", members),
                        self.arrow(t, i, "parent", "edit"),
                    )
                )
            case ("folder" | "document", "view"):
                # view = edit + viewer + parent->view
                return union_all(
                    (
                        self.permission(t, i, "edit"),
                        self.expand(t, i, "viewer", members),
                        self.arrow(t, i, "parent", "view"),
                    )
                )
        raise ValueError(f"drive has no {resource_type}#{permission}")

    def _group_members(self, subject_type: str, subject_id: str) -> SubjectSet:
        if subject_type != "group":
            raise AssertionError(f"drive usersets are group#member, got {subject_type}")
        return self.permission("group", subject_id, "member")


class GithubReference(Reference):
    """The github schema, by hand: nested teams, org inheritance, bans subtract."""

    def _evaluate(self, resource_type: str, resource_id: str, permission: str) -> SubjectSet:  # noqa: PLR0911 - one case per schema permission
        t, i = resource_type, resource_id
        members = self._team_members
        match (t, permission):
            case ("team", "member"):
                # schema: member is maintainer plus direct_member
                return self.expand(t, i, "maintainer", members).union(
                    self.expand(t, i, "direct_member", members)
                )
            case ("organization", "admin"):
                return self.expand(t, i, "owner", members)
            case ("organization", "base_read"):
                return self.expand(t, i, "owner", members).union(self.expand(t, i, "member", members))
            case ("organization", "banned"):
                return self.expand(t, i, "banned", members)
            case ("repository", "manage"):
                return self.expand(t, i, "admin", members).union(self.arrow(t, i, "organization", "admin"))
            case ("repository", "maintain"):
                return self.expand(t, i, "maintainer", members).union(self.permission(t, i, "manage"))
            case ("repository", "write"):
                granted = self.expand(t, i, "writer", members).union(self.permission(t, i, "maintain"))
                return granted.minus(self._banned(i))
            case ("repository", "triage"):
                return self.expand(t, i, "triager", members).union(self.permission(t, i, "write"))
            case ("repository", "read"):
                granted = union_all(
                    (
                        self.expand(t, i, "reader", members),
                        self.permission(t, i, "triage"),
                        self.arrow(t, i, "internal", "base_read"),
                    )
                )
                return granted.minus(self._banned(i))
        raise ValueError(f"github has no {resource_type}#{permission}")

    def _banned(self, repository_id: str) -> SubjectSet:
        # banned + organization->banned
        own = self.expand("repository", repository_id, "banned", self._team_members)
        return own.union(self.arrow("repository", repository_id, "organization", "banned"))

    def _team_members(self, subject_type: str, subject_id: str) -> SubjectSet:
        if subject_type != "team":
            raise AssertionError(f"github usersets are team#member, got {subject_type}")
        return self.permission("team", subject_id, "member")


class WideReference(Reference):
    """The wide schema, by hand: flat groups, wildcard viewers."""

    def _evaluate(self, resource_type: str, resource_id: str, permission: str) -> SubjectSet:
        t, i = resource_type, resource_id
        members = self._group_members
        match (t, permission):
            case ("group", "member"):
                return self.expand(t, i, "member", members)
            case ("document", "edit"):
                return self.expand(t, i, "editor", members)
            case ("document", "view"):
                return self.expand(t, i, "viewer", members).union(self.permission(t, i, "edit"))
        raise ValueError(f"wide has no {resource_type}#{permission}")

    def _group_members(self, subject_type: str, subject_id: str) -> SubjectSet:
        if subject_type != "group":
            raise AssertionError(f"wide usersets are group#member, got {subject_type}")
        return self.permission("group", subject_id, "member")


_REFERENCES: dict[str, type[Reference]] = {
    "drive": DriveReference,
    "github": GithubReference,
    "wide": WideReference,
}


def reference_for(dataset: str, graph: Graph, *, among: frozenset[str] | None = None) -> Reference:
    """The reference evaluator of `dataset` over `graph`; ValueError for an unknown dataset."""
    try:
        return _REFERENCES[dataset](graph, among=among)
    except KeyError:
        raise ValueError(f"no reference evaluator for dataset {dataset!r}") from None
