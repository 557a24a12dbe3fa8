"""Reference semantics of the `GraphReader` walks, built on plain `query_relationships`.

The memory datastore answers with these directly; the Postgres reader answers the same
questions with one recursive SQL query each, and the conformance suite holds both to
these results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from rebac.datastore.filters import RelationshipFilter, SubjectFilter
from rebac.datastore.protocol import Reader
from rebac.tuples import WILDCARD, Relationship

__all__ = [
    "BatchClosureReader",
    "WalkClosureReader",
    "subject_set_closure_by_queries",
    "subject_set_closures_by_queries",
    "subject_set_height_by_queries",
    "walk_relations_by_queries",
]


@runtime_checkable
class BatchClosureReader(Protocol):
    """**Protocol (optional capability):** many subjects' nested-group closures at once.

    CheckBulk asks for the closures of every subject of a batch in one round trip; readers
    without it are asked once per subject (`GraphReader.subject_set_closure`).
    """

    async def subject_set_closures(
        self,
        resource_type: str,
        relation: str,
        subject_type: str,
        subject_ids: Sequence[str],
        *,
        max_rows: int,
    ) -> dict[str, list[Relationship]] | None:
        """For each of `subject_ids`, exactly what `GraphReader.subject_set_closure` returns.

        Live rows, each once per subject, in key order. None when the answer is too large:
        more than `max_rows` rows in total (implementations may count rows shared by several
        subjects once); then no subject's list is over `max_rows` when not None, and the
        caller asks subject by subject.
        """
        ...


@runtime_checkable
class WalkClosureReader(Protocol):
    """**Protocol (optional capability):** a walk and a subject's closure in one round trip.

    A cold check needs both before it can evaluate (`Engine._warm`); readers without it
    are asked the two questions concurrently, which costs a second statement.
    """

    async def walk_with_closure(
        self,
        resource_type: str,
        resource_ids: Sequence[str],
        *,
        follow: Sequence[str],
        relations: Sequence[str],
        max_rows: int,
        closure: tuple[str, str, str, str],
        max_closure_rows: int,
    ) -> tuple[list[Relationship] | None, list[Relationship] | None]:
        """Exactly ``(walk_relations(...), subject_set_closure(*closure, max_rows=max_closure_rows))``.

        `closure` is (resource type, relation, subject type, subject id), the arguments of
        `GraphReader.subject_set_closure`; each result is None when over its own bound.
        """
        ...


async def walk_relations_by_queries(
    reader: Reader,
    resource_type: str,
    resource_ids: Sequence[str],
    *,
    follow: Sequence[str],
    relations: Sequence[str],
    max_rows: int,
) -> list[Relationship] | None:
    """See `GraphReader.walk_relations`; one query per (type, relation) per step."""
    wanted = set(relations) | set(follow)
    reached: set[tuple[str, str]] = set()
    frontier = {(resource_type, rid) for rid in resource_ids}
    found: dict[tuple[str, ...], Relationship] = {}
    while frontier:
        reached |= frontier
        by_type: dict[str, list[str]] = {}
        for otype, oid in sorted(frontier):
            by_type.setdefault(otype, []).append(oid)
        step: set[tuple[str, str]] = set()
        for otype, ids in by_type.items():
            for relation in sorted(wanted):
                flt = RelationshipFilter(resource_type=otype, resource_ids=tuple(ids), relation=relation)
                async for row in reader.query_relationships(flt):
                    if relation in relations:
                        found[row.key] = row
                    if relation in follow and not row.subject.is_wildcard:
                        step.add((row.subject.type, row.subject.id))
            if len(found) > max_rows:
                return None
        frontier = step - reached
    return [found[key] for key in sorted(found)]


async def subject_set_closure_by_queries(
    reader: Reader,
    resource_type: str,
    relation: str,
    subject_type: str,
    subject_id: str,
    *,
    max_rows: int,
) -> list[Relationship] | None:
    """See `GraphReader.subject_set_closure`; one reverse query per level."""
    found: dict[tuple[str, ...], Relationship] = {}
    first = RelationshipFilter(
        resource_type=resource_type,
        relation=relation,
        subject=SubjectFilter(subject_type, (subject_id, WILDCARD), None),
    )
    rows = [r async for r in reader.reverse_query_relationships(first)]
    seen: set[str] = set()
    while rows:
        for row in rows:
            found[row.key] = row
        if len(found) > max_rows:
            return None
        frontier = {row.resource.id for row in rows} - seen
        seen |= frontier
        if not frontier:
            break
        nxt = RelationshipFilter(
            resource_type=resource_type,
            relation=relation,
            subject=SubjectFilter(resource_type, tuple(sorted(frontier)), relation),
        )
        rows = [r async for r in reader.reverse_query_relationships(nxt)]
    return [found[key] for key in sorted(found)]


async def subject_set_height_by_queries(
    reader: Reader,
    resource_type: str,
    relation: str,
    resource_ids: Sequence[str],
    *,
    max_height: int,
) -> int:
    """See `GraphReader.subject_set_height`; one query per level."""
    frontier = set(resource_ids)
    height = 0
    while frontier and height < max_height:
        flt = RelationshipFilter(
            resource_type=resource_type,
            resource_ids=tuple(sorted(frontier)),
            relation=relation,
            subject=SubjectFilter(resource_type, None, relation),
        )
        frontier = {row.subject.id async for row in reader.query_relationships(flt)}
        if frontier:
            height += 1
    return height


async def subject_set_closures_by_queries(
    reader: Reader,
    resource_type: str,
    relation: str,
    subject_type: str,
    subject_ids: Sequence[str],
    *,
    max_rows: int,
) -> dict[str, list[Relationship]] | None:
    """See `BatchClosureReader.subject_set_closures`; one closure per subject."""
    out: dict[str, list[Relationship]] = {}
    total = 0
    for sid in subject_ids:
        rows = await subject_set_closure_by_queries(
            reader, resource_type, relation, subject_type, sid, max_rows=max_rows
        )
        if rows is None:
            return None
        total += len(rows)
        out[sid] = rows
    return out if total <= max_rows else None
