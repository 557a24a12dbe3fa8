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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

from rebac.datastore.filters import RelationshipFilter, SubjectFilter
from rebac.datastore.protocol import Reader
from rebac.tuples import WILDCARD, Relationship

__all__ = [
    "DEFAULT_MAX_LEVELS",
    "OutcomeFacts",
    "PathOutcome",
    "PathPlan",
    "PathSearchReader",
    "PathStep",
    "per_item",
    "search_paths_by_queries",
    "sorted_matches",
]

_T = TypeVar("_T")


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


def sorted_matches(matches: Iterable[tuple[int, int | None]]) -> tuple[tuple[int, int | None], ...]:
    """`PathOutcome.matches` order: by step, then level (the subject itself, level None, first)."""
    return tuple(sorted(matches, key=lambda match: (match[0], -1 if match[1] is None else match[1])))


@dataclass(slots=True)
class OutcomeFacts:
    """What one item's search met, folded into its `PathOutcome` by the plan's rules.

    Each implementation gathers the facts its own way (rows read one by one, or a
    statement's rows); the rules of what they mean live here once.
    """

    matches: set[tuple[int, int | None]] = field(default_factory=set)
    unmatched: set[tuple[str, str, str, int]] = field(default_factory=set)
    deepest: int = 0
    marked: bool = False

    def mark_if(self, conditional: bool) -> None:  # noqa: FBT001 - a fact, not an option
        """A row on the item's way had a caveat or an expiration (when `conditional`)."""
        self.marked = self.marked or conditional

    def plain_match(self, step: int, conditional: bool) -> None:  # noqa: FBT001 - a fact, not an option
        """A leaf row at `step` holds the subject itself or its wildcard."""
        self.matches.add((step, None))
        self.mark_if(conditional)

    def subject_set(  # noqa: PLR0917 - one leaf row's facts
        self,
        plan: PathPlan,
        node: tuple[str, str],
        subject_id: str,
        step: int,
        conditional: bool,  # noqa: FBT001 - a fact, not an option
        level: int | None,
    ) -> None:
        """A leaf row at `step` holds the subject set `node[0]:subject_id#node[1]`.

        `level`: the subject's closure level in that group, None when the closure does not
        hold it (or was not read). Ignored sets are skipped; sets of no closure node mark.
        """
        if node in plan.ignored_sets:
            return
        if node not in plan.closure_nodes:
            self.marked = True
            return
        self.mark_if(conditional)
        if level is None:
            self.unmatched.add((*node, subject_id, step))
        else:
            self.matches.add((step, level))

    def outcome(self, max_steps: int) -> PathOutcome:
        """The `PathOutcome` of these facts, for a search that expanded states below `max_steps`."""
        return PathOutcome(
            matches=sorted_matches(self.matches),
            unmatched_sets=tuple(sorted(self.unmatched)),
            deepest=self.deepest,
            marked=self.marked,
            cut=self.deepest >= max_steps,
        )


def per_item(values: Sequence[_T], count: int, *, default: _T) -> list[_T]:
    """`values` by item for `count` items, `default` for the items it does not reach."""
    return [*values[:count], *[default] * (count - len(values))]


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
    count = len(items)
    starts = per_item(roots, count, default=(plan.resource_type, plan.start))
    skipped = per_item(skip_closures, count, default=False)
    return [
        await _search_one(reader, plan, (start, rid), sid, max_steps, 0 if skip else max_levels)
        for (rid, sid), start, skip in zip(items, starts, skipped, strict=True)
    ]


async def _search_one(  # noqa: PLR0917 - the reference's arguments, as the protocol has them
    reader: Reader,
    plan: PathPlan,
    start: tuple[tuple[str, str], str],
    subject_id: str,
    max_steps: int,
    max_levels: int,
) -> PathOutcome:
    """One item from `start` ((resource type, node), resource id); `max_levels` 0 reads no closure."""
    facts = OutcomeFacts()
    subject_sets = await _walk(reader, plan, start, subject_id, max_steps, facts)
    closures: dict[tuple[str, str], dict[str, int]] = {node: {} for node in plan.closure_nodes}
    if subject_sets and not facts.matches and max_levels > 0:
        for node in plan.closure_nodes:
            levels, conditional = await _closure_levels(
                reader, node, plan.subject_type, subject_id, max_levels
            )
            closures[node] = levels
            facts.mark_if(conditional)
    for row, step in subject_sets:
        node = (row.subject.type, row.subject.relation or "")
        level = closures.get(node, {}).get(row.subject.id)
        facts.subject_set(plan, node, row.subject.id, step, _conditional(row), level)
    return facts.outcome(max_steps)


async def _walk(  # noqa: PLR0917 - the walk and where its facts go
    reader: Reader,
    plan: PathPlan,
    start: tuple[tuple[str, str], str],
    subject_id: str,
    max_steps: int,
    facts: OutcomeFacts,
) -> list[tuple[Relationship, int]]:
    """The leaf subject-set rows met, with their steps (their closures are read after the walk).

    Breadth first by step, each state's relations read one by one, states below `max_steps`
    expanded; arrow rows, plain matches and the depth reached go to `facts`.
    """
    subject_sets: list[tuple[Relationship, int]] = []
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
                            facts.mark_if(_conditional(row))
                            nxt.add((subject.type, subject.id, step.target))
                    elif subject.relation is not None:
                        subject_sets.append((row, step_no))
                    elif subject.type == plan.subject_type and subject.id in (subject_id, WILDCARD):
                        facts.plain_match(step_no, _conditional(row))
        if not nxt:
            break
        frontier = nxt
        facts.deepest = step_no + 1
    return subject_sets


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
