"""Path search: many (resource, subject) questions over a union-only plan, in one round trip.

CheckBulk asks a hundred unrelated questions at once. Walking each one's rows into
Python and evaluating them there costs more than the walk itself, so a reader with this
capability walks the plan for every item and returns, per item, only the facts the
engine needs to answer: the matches found, the subject sets met that it could not
resolve, how deep the walk went, and whether a row needing the evaluator's rules (a
caveat, an expiration, an unexpected subject set) was met. The engine
(`rebac.engine.bulk_paths`) turns those facts into answers, or hands the item to the
evaluator.

`search_paths_by_queries` is the reference semantics: the memory datastore answers with
it, and the Postgres reader answers the same questions with one recursive statement; the
conformance suite holds both to the same outcomes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from rebac.datastore.filters import RelationshipFilter, SubjectFilter
from rebac.datastore.protocol import Reader
from rebac.tuples import WILDCARD, Relationship

__all__ = [
    "DEFAULT_MAX_LEVELS",
    "PathOutcome",
    "PathPlan",
    "PathSearchReader",
    "PathStep",
    "search_paths_by_queries",
]


@dataclass(frozen=True, slots=True)
class PathStep:
    """From a state at node `node` of a `resource_type` object, read `relation` there.

    `target` set: follow each non-wildcard subject of those rows (whatever its subject
    relation) to the state at node `target` of the subject's object; a subject type with
    no step from that node ends the path. `target` None: the rows are leaves, matched
    against the subject.
    """

    resource_type: str
    node: str
    relation: str
    target: str | None


@dataclass(frozen=True, slots=True)
class PathPlan:
    """What to walk for plain subjects of `subject_type`, from `start` on `resource_type` objects.

    A relation is read at most once per node as a leaf and once as an arrow (ValueError
    otherwise): several arrows over one relation walk to one combined node instead.

    A leaf row matches when its subject is the subject itself or ``subject_type:*``, or a
    subject set of one of `closure_nodes` whose closure (nested members, as in
    `GraphReader.subject_set_closure`) holds the subject. Subject sets of `ignored_sets`
    never lead to the subject and are skipped; any other subject set marks the item.
    """

    resource_type: str
    start: str
    subject_type: str
    steps: tuple[PathStep, ...]
    closure_nodes: tuple[tuple[str, str], ...] = ()
    ignored_sets: tuple[tuple[str, str], ...] = ()
    _by_node: dict[tuple[str, str], tuple[PathStep, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        grouped: dict[tuple[str, str], list[PathStep]] = defaultdict(list)
        actions: set[tuple[str, str, str, bool]] = set()
        for step in self.steps:
            action = (step.resource_type, step.node, step.relation, step.target is None)
            if action in actions:
                kind = "leaf" if step.target is None else "arrow"
                raise ValueError(
                    f"two {kind} steps read {step.resource_type}#{step.relation} at node {step.node}"
                )
            actions.add(action)
            grouped[(step.resource_type, step.node)].append(step)
        self._by_node.update({key: tuple(steps) for key, steps in grouped.items()})

    @classmethod
    def merge(cls, plans: Sequence[PathPlan]) -> PathPlan:
        """One plan walking what each of `plans` (same subject type) walks; it starts where the first does.

        For searching their roots together (`PathSearchReader.search_paths` with `roots`).
        A state's steps depend only on the state, so plans compiled from one schema agree
        wherever they meet; ValueError for plans that disagree.
        """
        if len({plan.subject_type for plan in plans}) != 1:
            raise ValueError("plans for different subject types cannot be merged")
        first = plans[0]
        return cls(
            resource_type=first.resource_type,
            start=first.start,
            subject_type=first.subject_type,
            steps=tuple(dict.fromkeys(step for plan in plans for step in plan.steps)),
            closure_nodes=tuple(sorted({node for plan in plans for node in plan.closure_nodes})),
            ignored_sets=tuple(sorted({node for plan in plans for node in plan.ignored_sets})),
        )

    def steps_from(self, resource_type: str, node: str) -> tuple[PathStep, ...]:
        """The steps from a state at (`resource_type`, `node`), in plan order."""
        return self._by_node.get((resource_type, node), ())


@dataclass(frozen=True, slots=True)
class PathOutcome:
    """What the search found for one (resource id, subject id) item.

    - `matches`: (step, level) of every matching leaf row, where step counts the arrows
      followed from the resource (0: a row on the resource itself) and level is None for
      the subject or its wildcard, else the subject's closure level in the subject set's
      node (0: a direct member). Each pair once, sorted.
    - `unmatched_sets`: (type, relation, id, step) of closure-node subject sets met at
      leaves whose closure does not hold the subject. Each once, sorted.
    - `deepest`: the largest step of any state reached.
    - `marked`: a row met needs the evaluator's rules: a followed arrow row, a matching
      leaf row, a subject-set leaf row or a closure row with a caveat or an expiration,
      or a leaf subject set neither in `closure_nodes` nor in `ignored_sets`.
    - `cut`: a state was reached at `max_steps`, so the walk may be incomplete.
    """

    matches: tuple[tuple[int, int | None], ...] = ()
    unmatched_sets: tuple[tuple[str, str, str, int], ...] = ()
    deepest: int = 0
    marked: bool = False
    cut: bool = False


DEFAULT_MAX_LEVELS = 64
"""Closure levels walked unless the caller says otherwise (the engine passes its depth limit)."""


@runtime_checkable
class PathSearchReader(Protocol):
    """**Protocol (optional capability):** `PathPlan` searches for many items in one round trip."""

    async def search_paths(
        self,
        plan: PathPlan,
        items: Sequence[tuple[str, str]],
        *,
        max_steps: int,
        max_levels: int = DEFAULT_MAX_LEVELS,
        skip_closures: Sequence[bool] = (),
        roots: Sequence[tuple[str, str]] = (),
    ) -> list[PathOutcome]:
        """One outcome per (resource id, subject id) item, in `items` order, at this revision.

        Each item starts at the plan's (`resource_type`, `start`), or at its own (resource
        type, start node) in `roots` (by item; missing: the plan's), so one call can serve
        the roots of several plans merged with `PathPlan.merge`.

        States reached at `max_steps` arrows are not expanded further (`PathOutcome.cut`).
        Closures are read only for items that met a leaf subject set and no plain match
        (the subject or its wildcard), that `skip_closures` (by item; missing: False) does
        not exempt (the caller knows those closures), and only to level `max_levels` - 1: a
        group holding the subject only deeper counts as not holding it. Without closures
        every closure-node subject set met is reported unmatched.
        """
        ...


def _conditional(row: Relationship) -> bool:
    return row.caveat is not None or row.expiration is not None


async def search_paths_by_queries(
    reader: Reader,
    plan: PathPlan,
    items: Sequence[tuple[str, str]],
    *,
    max_steps: int,
    max_levels: int = DEFAULT_MAX_LEVELS,
    skip_closures: Sequence[bool] = (),
    roots: Sequence[tuple[str, str]] = (),
) -> list[PathOutcome]:
    """See `PathSearchReader.search_paths`; one query per state and relation (reference)."""
    return [
        await _search_one(
            reader,
            plan,
            (roots[i] if i < len(roots) else (plan.resource_type, plan.start), rid),
            sid,
            max_steps,
            0 if i < len(skip_closures) and skip_closures[i] else max_levels,
        )
        for i, (rid, sid) in enumerate(items)
    ]


@dataclass(slots=True)
class _Walk:
    """What one item's walk met: plain matches, leaf subject-set rows, depth, marks."""

    matches: set[tuple[int, int | None]] = field(default_factory=set)
    subject_sets: list[tuple[Relationship, int]] = field(default_factory=list)
    deepest: int = 0
    marked: bool = False


async def _search_one(  # noqa: PLR0917 - the reference's arguments, as the protocol has them
    reader: Reader,
    plan: PathPlan,
    start: tuple[tuple[str, str], str],
    subject_id: str,
    max_steps: int,
    max_levels: int,
) -> PathOutcome:
    """One item from `start` ((resource type, node), resource id); `max_levels` 0 reads no closure."""
    walk = await _walk(reader, plan, start, subject_id, max_steps)
    closures: dict[tuple[str, str], dict[str, int]] = {node: {} for node in plan.closure_nodes}
    if walk.subject_sets and not walk.matches and max_levels > 0:
        for node in plan.closure_nodes:
            levels, conditional = await _closure_levels(
                reader, node, plan.subject_type, subject_id, max_levels
            )
            closures[node] = levels
            walk.marked = walk.marked or conditional
    unmatched: set[tuple[str, str, str, int]] = set()
    for row, step_no in walk.subject_sets:
        set_node = (row.subject.type, row.subject.relation or "")
        if set_node in plan.ignored_sets:
            continue
        if set_node not in closures:
            walk.marked = True
            continue
        walk.marked = walk.marked or _conditional(row)
        level = closures[set_node].get(row.subject.id)
        if level is None:
            unmatched.add((*set_node, row.subject.id, step_no))
        else:
            walk.matches.add((step_no, level))
    return PathOutcome(
        matches=tuple(sorted(walk.matches, key=_match_order)),
        unmatched_sets=tuple(sorted(unmatched)),
        deepest=walk.deepest,
        marked=walk.marked,
        cut=walk.deepest >= max_steps,
    )


async def _walk(
    reader: Reader, plan: PathPlan, start: tuple[tuple[str, str], str], subject_id: str, max_steps: int
) -> _Walk:
    """Breadth first by step: each state's relations read one by one, states below `max_steps` expanded."""
    walk = _Walk()
    (resource_type, node), resource_id = start
    frontier = {(resource_type, resource_id, node)}
    for step_no in range(max_steps):
        nxt: set[tuple[str, str, str]] = set()
        for otype, oid, node in sorted(frontier):
            for step in plan.steps_from(otype, node):
                flt = RelationshipFilter(resource_type=otype, resource_ids=(oid,), relation=step.relation)
                async for row in reader.query_relationships(flt):
                    subject = row.subject
                    if step.target is not None:
                        if not subject.is_wildcard:
                            walk.marked = walk.marked or _conditional(row)
                            nxt.add((subject.type, subject.id, step.target))
                    elif subject.relation is not None:
                        walk.subject_sets.append((row, step_no))
                    elif subject.type == plan.subject_type and subject.id in (subject_id, WILDCARD):
                        walk.marked = walk.marked or _conditional(row)
                        walk.matches.add((step_no, None))
        if not nxt:
            break
        frontier = nxt
        walk.deepest = step_no + 1
    return walk


def _match_order(match: tuple[int, int | None]) -> tuple[int, int]:
    return match[0], -1 if match[1] is None else match[1]


async def _closure_levels(
    reader: Reader, node: tuple[str, str], subject_type: str, subject_id: str, max_levels: int
) -> tuple[dict[str, int], bool]:
    """(Level of each group holding the subject, below `max_levels`; whether a row read is conditional)."""
    resource_type, relation = node
    levels: dict[str, int] = {}
    conditional = False
    flt = RelationshipFilter(
        resource_type=resource_type,
        relation=relation,
        subject=SubjectFilter(subject_type, (subject_id, WILDCARD), None),
    )
    for level in range(max_levels):
        fresh: set[str] = set()
        async for row in reader.reverse_query_relationships(flt):
            conditional = conditional or _conditional(row)
            if row.resource.id not in levels:
                fresh.add(row.resource.id)
        if not fresh:
            break
        for gid in fresh:
            levels[gid] = level
        flt = RelationshipFilter(
            resource_type=resource_type,
            relation=relation,
            subject=SubjectFilter(resource_type, tuple(sorted(fresh)), relation),
        )
    return levels, conditional
