"""Prefetch: read everything a check may read along recursive arrows in one round trip.

Without it a check walks a folder chain one level per round trip (`parent->view` reads
`parent`, then dispatches to the parent folder, which reads its relations, ...). The plan
below lists, from the schema alone, the relations a permission may read through computed
usersets and arrows, and the arrow relations it may follow; `GraphReader.walk_relations`
then returns all of those rows for the requested objects and every object reached through
the arrows, at once. The checker keeps running unchanged: its reads are answered from
this request's `PrefetchStore` when the store holds the complete rows, so every rule
(caveats, expirations, cycles, depth) applies exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rebac.engine.reachability import Reachability, rewrite_references
from rebac.schema.definitions import CompiledSchema, ComputedUserset, Relation, This, TupleToUserset
from rebac.tuples import Relationship

__all__ = ["PrefetchStore", "WalkPlan", "walk_plan"]


@dataclass(frozen=True, slots=True)
class WalkPlan:
    """Relations to fetch on every reached object, and the arrow relations to follow."""

    relations: tuple[str, ...]
    follow: tuple[str, ...]


def walk_plan(
    schema: CompiledSchema, reachability: Reachability, resource_type: str, permission: str
) -> WalkPlan | None:
    """The plan for `resource_type#permission`, or None when it follows no arrow.

    Subject sets (``group#member``) are not walked: their fan-out is unbounded and the
    nested-group closure (`closure.py`) answers them.
    """
    relations: set[str] = set()
    follow: set[str] = set()
    seen: set[tuple[str, str]] = set()
    stack = [(resource_type, permission)]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        definition = schema.definition(node[0])
        member = definition.member(node[1]) if definition is not None else None
        if member is None:
            continue
        if isinstance(member, Relation):
            relations.add(member.name)
            continue
        for ref in rewrite_references(member.rewrite):
            if isinstance(ref, ComputedUserset):
                stack.append((node[0], ref.relation))
            elif isinstance(ref, TupleToUserset):
                relations.add(ref.tupleset_relation)
                follow.add(ref.tupleset_relation)
                stack.extend(reachability.arrow_targets(node[0], ref))
            elif isinstance(ref, This):
                relations.add(node[1])
    if not follow:
        return None
    return WalkPlan(tuple(sorted(relations)), tuple(sorted(follow)))


class PrefetchStore:
    """The complete live rows of some (type, relation, id) triples, for one request.

    Filled by `add`; `take` answers a read from it when it can. Not shared between
    requests (it would need the revision in its key) and used by one event loop only.
    """

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str, str], list[Relationship]] = {}
        self._subject_sets: dict[tuple[str, str], set[str]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def add(
        self, resource_type: str, resource_ids: Sequence[str], plan: WalkPlan, rows: Sequence[Relationship]
    ) -> None:
        """Record the result of `walk_relations(resource_type, resource_ids, plan...)`.

        Every reached object then has complete rows for every relation of the plan.
        """
        reached = {(resource_type, rid) for rid in resource_ids}
        reached.update(
            (row.subject.type, row.subject.id)
            for row in rows
            if row.relation in plan.follow and not row.subject.is_wildcard
        )
        fresh: set[tuple[str, str, str]] = set()
        for otype, oid in reached:
            for relation in plan.relations:
                key = (otype, relation, oid)
                if key not in self._rows:
                    self._rows[key] = []
                    fresh.add(key)
        for row in rows:
            key = (row.resource.type, row.relation, row.resource.id)
            if key in fresh:
                self._rows[key].append(row)
            subject = row.subject
            if subject.relation is not None and not subject.is_wildcard:
                self._subject_sets.setdefault((subject.type, subject.relation), set()).add(subject.id)

    def subject_set_ids(self, subject_type: str, relation: str) -> frozenset[str]:
        """The ids of every ``subject_type:id#relation`` subject among the rows added so far.

        The checker asks about nested groups only below these (and the request's own ids),
        so one depth query over all of them (`ClosureResolver.chain_reaches`) serves them all.
        """
        return frozenset(self._subject_sets.get((subject_type, relation), ()))

    def get(self, resource_type: str, relation: str, resource_id: str) -> list[Relationship] | None:
        """The complete rows of one object's relation, or None when they are not known."""
        return self._rows.get((resource_type, relation, resource_id))

    def put(self, resource_type: str, relation: str, resource_id: str, rows: Sequence[Relationship]) -> None:
        """Record the complete rows of one object's relation (read outside a walk)."""
        key = (resource_type, relation, resource_id)
        if key in self._rows:
            return  # complete already: the same rows at this revision
        self._rows[key] = list(rows)
        for row in rows:
            subject = row.subject
            if subject.relation is not None and not subject.is_wildcard:
                self._subject_sets.setdefault((subject.type, subject.relation), set()).add(subject.id)

    def take(
        self, resource_type: str, relation: str, resource_ids: Sequence[str]
    ) -> tuple[list[Relationship], list[str]]:
        """(rows known for `resource_ids`, the ids whose rows are not known)."""
        rows: list[Relationship] = []
        missing: list[str] = []
        for rid in resource_ids:
            known = self._rows.get((resource_type, relation, rid))
            if known is None:
                missing.append(rid)
            else:
                rows.extend(known)
        return rows, missing
