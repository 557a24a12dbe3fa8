"""CheckBulk by path search: answer union-only items from one statement, hand back the rest.

Every (resource id, subject id) item of a bulk call whose (resource type, permission,
subject type) has a `BulkPathPlan` goes into one `PathSearchReader.search_paths` call per
subject type, the plans of its permissions merged (`PathPlan.merge`). An outcome answers
its item only where the evaluator would surely give the same answer:

- "yes": a match whose whole path fits in the depth limit (the evaluator's union ends on
  it, whatever the other branches do);
- "no": no match at all, every leaf read within the depth limit, and no chain of nested
  groups below an unmatched subject set long enough to exceed it (the evaluator would
  raise MaxDepthExceededError there), asked of `ClosureResolver.chain_reaches`;
- never when the outcome is `marked` (caveats, expirations, unexpected subject sets) or
  `cut` (a cycle or a walk deeper than the limit): the evaluator answers those.

The items left over go to the evaluator unchanged, so every rule it has still applies.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from rebac.datastore.path_search import PathOutcome, PathPlan, PathSearchReader, sorted_matches
from rebac.engine.closure import Closure, ClosureResolver
from rebac.engine.dispatch import DispatchCheckRequest, RequestScope
from rebac.engine.path_plan import BulkPathPlan
from rebac.tuples import SubjectRef

__all__ = ["PathAnswers", "answer_by_paths"]


@dataclass(slots=True)
class PathAnswers:
    """Per request (by index): the ids answered "yes" and the ids answered "no"."""

    members: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    non_members: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))

    def answered(self, index: int) -> set[str]:
        """Every id of request `index` this search answered."""
        return self.members.get(index, set()) | self.non_members.get(index, set())


@dataclass(slots=True)
class _Item:
    index: int  # of the request
    resource_id: str
    plan: BulkPathPlan
    subject: SubjectRef
    # The subject's closures when all were known before the search (then not read again).
    closures: dict[tuple[str, str], Closure] | None = None
    outcome: PathOutcome | None = None

    def resolve(self, outcome: PathOutcome) -> PathOutcome:
        """`outcome` with its unmatched subject sets looked up in the known closures."""
        if self.closures is None or not outcome.unmatched_sets:
            return outcome
        matches = set(outcome.matches)
        unmatched: list[tuple[str, str, str, int]] = []
        for stype, srel, sid, step in outcome.unmatched_sets:
            closure = self.closures.get((stype, srel))
            level = closure.levels.get(sid) if closure is not None else None
            if level is None:
                unmatched.append((stype, srel, sid, step))
            else:
                matches.add((step, level))
        return replace(outcome, matches=sorted_matches(matches), unmatched_sets=tuple(unmatched))


async def answer_by_paths(
    scope: RequestScope,
    requests: Sequence[DispatchCheckRequest],
    plan_of: Callable[[DispatchCheckRequest], BulkPathPlan | None],
) -> PathAnswers:
    """Answer what the path search can of `requests` (plain subjects sharing `scope`).

    Needs a `PathSearchReader` and the scope's closures; answers nothing otherwise.
    Datastore errors propagate (the caller fails the items, as the evaluator would).
    """
    answers = PathAnswers()
    reader = scope.reader
    if not isinstance(reader, PathSearchReader) or scope.closures is None:
        return answers
    closures = scope.closures
    # One search per subject type: the plans of all its (type, permission) pairs merged.
    batches: dict[str, list[_Item]] = defaultdict(list)
    for index, request in enumerate(requests):
        plan = plan_of(request)
        subject = request.subject
        if plan is None or subject.relation is not None:
            continue
        known = _known_closures(closures, plan, subject)
        batches[subject.type].extend(_Item(index, rid, plan, subject, known) for rid in request.resource_ids)

    async def search(items: list[_Item]) -> None:
        scope.stats.datastore_queries += 1
        scope.stats.path_searches += 1
        plans = tuple(dict.fromkeys(item.plan for item in items))
        found = await reader.search_paths(
            _merged(tuple(plan.search for plan in plans)),
            [(item.resource_id, item.subject.id) for item in items],
            max_steps=max(plan.max_steps(scope.max_depth) for plan in plans),
            max_levels=scope.max_depth,
            skip_closures=[item.closures is not None for item in items],
            roots=[(item.plan.search.resource_type, item.plan.search.start) for item in items],
        )
        for item, outcome in zip(items, found, strict=True):
            item.outcome = item.resolve(outcome)

    await asyncio.gather(*(search(items) for items in batches.values()))
    pending: dict[tuple[str, str], list[tuple[_Item, dict[str, int]]]] = defaultdict(list)
    for items in batches.values():
        _decide(scope, items, answers, pending)
    await _check_chains(scope, pending, answers)
    scope.stats.path_answers += sum(len(ids) for ids in answers.members.values()) + sum(
        len(ids) for ids in answers.non_members.values()
    )
    return answers


@lru_cache(maxsize=256)
def _merged(searches: tuple[PathPlan, ...]) -> PathPlan:
    return searches[0] if len(searches) == 1 else PathPlan.merge(searches)


def _known_closures(
    closures: ClosureResolver, plan: BulkPathPlan, subject: SubjectRef
) -> dict[tuple[str, str], Closure] | None:
    """The subject's usable closures in every closure node of `plan`, if all are known now."""
    nodes = plan.search.closure_nodes
    if not nodes:
        return None
    known: dict[tuple[str, str], Closure] = {}
    for node in nodes:
        closure = closures.known(*node, subject)
        if not isinstance(closure, Closure):
            return None  # not read yet, or not usable (caveats, expirations, too large)
        known[node] = closure
    return known


def _decide(
    scope: RequestScope,
    items: list[_Item],
    answers: PathAnswers,
    pending: dict[tuple[str, str], list[tuple[_Item, dict[str, int]]]],
) -> None:
    """Answer the items whose outcome settles them; add "no" candidates with subject sets to `pending`.

    `pending` maps a closure node to (item, cap per unmatched subject set id) pairs.
    """
    max_depth = scope.max_depth
    for item in items:
        plan, outcome = item.plan, item.outcome
        if outcome is None or outcome.marked or outcome.cut:
            continue
        if outcome.matches:
            if any(_fits(plan, match, max_depth) for match in outcome.matches):
                answers.members[item.index].add(item.resource_id)
            continue  # a member deeper than the limit: the evaluator decides
        if plan.leaf_hops(outcome.deepest) >= max_depth:
            continue
        if not outcome.unmatched_sets:
            answers.non_members[item.index].add(item.resource_id)
            continue
        by_node: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for stype, srel, sid, step in outcome.unmatched_sets:
            left = max_depth - plan.leaf_hops(step) - 1  # levels left at the subject set
            caps = by_node[(stype, srel)]
            caps[sid] = min(left, caps.get(sid, left))
        if all(min(caps.values()) >= 1 for caps in by_node.values()):
            for node, caps in by_node.items():
                pending[node].append((item, caps))


def _fits(plan: BulkPathPlan, match: tuple[int, int | None], max_depth: int) -> bool:
    """True if the evaluator reaches this match within `max_depth` dispatch levels."""
    step, level = match
    hops = plan.leaf_hops(step)
    if level is None:
        return hops < max_depth
    return level < max_depth - hops - 1


async def _check_chains(
    scope: RequestScope,
    pending: dict[tuple[str, str], list[tuple[_Item, dict[str, int]]]],
    answers: PathAnswers,
) -> None:
    """Answer "no" for items whose unmatched subject sets have no chain as long as the depth left.

    Per closure node: ids whose chain height bound (recorded at this revision) is below
    their cap need nothing; one `chain_reaches` over the others, at the smallest of their
    caps (a chain shorter than that is shorter than each item's own). When some chain
    reaches it, the items that met one of those ids are left to the evaluator.
    """
    closures = scope.closures
    assert closures is not None  # noqa: S101 - answer_by_paths checked it
    blocked: set[int] = set()
    for (stype, srel), entries in pending.items():
        caps: dict[str, int] = {}
        for _, item_caps in entries:
            for sid, cap in item_caps.items():
                caps[sid] = min(cap, caps.get(sid, cap))
        unbounded = closures.unbounded(stype, srel, caps)
        if not unbounded:
            continue
        ids = tuple(sorted(unbounded))
        if await closures.chain_reaches(stype, srel, ids, min(caps[sid] for sid in ids), pool=frozenset(ids)):
            asked = set(ids)
            blocked.update(id(item) for item, item_caps in entries if not asked.isdisjoint(item_caps))
    for entries in pending.values():
        for item, _ in entries:
            if id(item) not in blocked:
                answers.non_members[item.index].add(item.resource_id)
