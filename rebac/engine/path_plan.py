"""Compile a union-only permission into a `PathPlan` for a datastore path search (CheckBulk).

Where every part of a permission that can lead to the subject is a union of stored
relations, computed usersets and ``->`` arrows, "does the subject have it" is "is there a
path": from the resource, follow arrows from object to object and look for the subject
(or its wildcard, or a nested group holding it) in the relations read on the way. A
`PathSearchReader` answers that for many items in one statement; `bulk_paths.py` turns
its outcomes into answers. Intersections, exclusions, ``.all`` arrows and subject sets
that are not nested-group closures have no plan: the evaluator answers those.

A state of the search is (object, node). Computed usersets within one object are folded
into the state's steps, so a folder state of ``view = edit + viewer + parent->view`` with
``edit = owner + editor + parent->edit`` reads owner, editor and viewer as leaves and
follows parent to ``view`` only: ``parent->edit`` is dropped because every folder's
``view`` already includes its ``edit``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from rebac.datastore.path_search import PathPlan, PathStep
from rebac.engine.closure import is_closure_node
from rebac.engine.reachability import Reachability
from rebac.schema.definitions import (
    ArrowFunction,
    CompiledSchema,
    ComputedUserset,
    Nil,
    Relation,
    Rewrite,
    TupleToUserset,
    Union,
)
from rebac.tuples import SubjectRef

__all__ = ["COMBINED", "BulkPathPlan", "compile_path_plan"]

COMBINED = "|"
"""Joins the computed relations of several arrows over one tupleset into one state's node
(``parent->view + parent->comment`` walks to ``view|comment``); never part of a schema name."""


@dataclass(frozen=True, slots=True)
class BulkPathPlan:
    """A `PathPlan` and the bound the engine needs to reason about depth.

    `object_hops` is the longest chain of computed usersets inside one object over the
    plan's states: a state `n` arrows from the resource sits at most ``n * (object_hops
    + 1)`` dispatch levels below it, and its leaf relations `object_hops` further.
    """

    search: PathPlan
    object_hops: int

    def leaf_hops(self, step: int) -> int:
        """The most dispatch levels below the root a leaf relation read at `step` can be."""
        return step * (self.object_hops + 1) + self.object_hops

    def max_steps(self, max_depth: int) -> int:
        """The first step whose leaves are out of reach of `max_depth` (search no further)."""
        step = 0
        while self.leaf_hops(step) < max_depth:
            step += 1
        return step


class _NoPlan(Exception):  # noqa: N818 - control flow: "the evaluator answers this shape"
    pass


@dataclass(slots=True)
class _Flat:
    """One state's node folded over computed usersets: leaves, arrows, longest chain."""

    leaves: set[str]
    arrows: set[tuple[str, str]]
    hops: int


def compile_path_plan(
    schema: CompiledSchema,
    reachability: Reachability,
    resource_type: str,
    permission: str,
    subject_type: str,
) -> BulkPathPlan | None:
    """The plan for plain `subject_type` subjects of `resource_type#permission`, or None.

    None when any part that can lead to the subject is not a union of relations, computed
    usersets and ``->`` arrows, when a relation there stores subject sets other than
    nested-group closures, and for unknown names (the evaluator reports those).
    """
    try:
        return _Compiler(schema, reachability, subject_type).compile(resource_type, permission)
    except _NoPlan:
        return None


class _Compiler:
    def __init__(self, schema: CompiledSchema, reachability: Reachability, subject_type: str) -> None:
        self.schema = schema
        self.reachability = reachability
        self.subject_type = subject_type
        self.probe = SubjectRef(subject_type, "probe")
        self.closure_nodes: set[tuple[str, str]] = set()
        self.ignored: set[tuple[str, str]] = set()

    def compile(self, resource_type: str, permission: str) -> BulkPathPlan:
        self._member(resource_type, permission)
        if not self._reaches(resource_type, permission):
            raise _NoPlan  # the evaluator answers "no" without reading anything
        steps: list[PathStep] = []
        hops = 0
        queue = [(resource_type, permission)]
        planned: set[tuple[str, str]] = set(queue)
        while queue:
            otype, node = queue.pop(0)
            flat = self._flatten(otype, node)
            hops = max(hops, flat.hops)
            for relation in sorted(flat.leaves):
                self._check_subject_sets(otype, relation)
                steps.append(PathStep(otype, node, relation, None))
            by_tupleset: dict[str, set[str]] = defaultdict(set)
            for tupleset, computed in self._needed_arrows(otype, flat.arrows):
                by_tupleset[tupleset].add(computed)
            for tupleset, computed_set in sorted(by_tupleset.items()):
                # Several arrows over one tupleset: one state at their combined node.
                combined = COMBINED.join(sorted(computed_set))
                steps.append(PathStep(otype, node, tupleset, combined))
                for target_type in sorted(
                    {t for c in computed_set for t, _ in self._targets(otype, tupleset, c)}
                ):
                    if (target_type, combined) not in planned:
                        planned.add((target_type, combined))
                        queue.append((target_type, combined))
        search = PathPlan(
            resource_type=resource_type,
            start=permission,
            subject_type=self.subject_type,
            steps=tuple(steps),
            closure_nodes=tuple(sorted(self.closure_nodes)),
            ignored_sets=tuple(sorted(self.ignored)),
        )
        return BulkPathPlan(search, hops)

    def _member(self, resource_type: str, name: str) -> Relation | Rewrite:
        definition = self.schema.definition(resource_type)
        member = definition.member(name) if definition is not None else None
        if member is None:
            raise _NoPlan
        return member if isinstance(member, Relation) else member.rewrite

    def _reaches(self, resource_type: str, name: str) -> bool:
        return self.reachability.can_reach(resource_type, name, self.probe)

    def _flatten(self, resource_type: str, node: str) -> _Flat:
        """`node` folded over computed usersets (those that cannot reach the subject skipped).

        A combined node (``view|comment``) is the union of its parts that the type has and
        that can reach the subject (`compile` checked the start node; arrows only lead to
        nodes that are both).
        """
        flat = _Flat(set(), set(), 0)
        definition = self.schema.definition(resource_type)
        for part in node.split(COMBINED):
            defined = definition is not None and definition.member(part) is not None
            if defined and self._reaches(resource_type, part):
                self._fold(resource_type, part, 0, (), flat)
        return flat

    def _fold(self, resource_type: str, node: str, depth: int, path: tuple[str, ...], flat: _Flat) -> None:
        if node in path:
            raise _NoPlan  # computed usersets in a cycle: the evaluator's cycle rules apply
        flat.hops = max(flat.hops, depth)
        member = self._member(resource_type, node)
        if isinstance(member, Relation):
            flat.leaves.add(node)
            return
        self._fold_rewrite(resource_type, member, depth, (*path, node), flat)

    def _fold_rewrite(
        self, resource_type: str, rewrite: Rewrite, depth: int, path: tuple[str, ...], flat: _Flat
    ) -> None:
        match rewrite:
            case Union(children=children):
                for child in children:
                    self._fold_rewrite(resource_type, child, depth, path, flat)
            case ComputedUserset(relation=relation):
                if self._reaches(resource_type, relation):
                    self._fold(resource_type, relation, depth + 1, path, flat)
            case TupleToUserset(function=ArrowFunction.ANY):
                tupleset = self._member(resource_type, rewrite.tupleset_relation)
                if not isinstance(tupleset, Relation):
                    raise _NoPlan  # the evaluator reports an arrow over a permission
                flat.arrows.add((rewrite.tupleset_relation, rewrite.computed_relation))
            case Nil():
                return
            case _:
                raise _NoPlan  # intersection, exclusion, `.all`, `this`: the evaluator's rules

    def _targets(self, resource_type: str, tupleset: str, computed: str) -> list[tuple[str, str]]:
        arrow = TupleToUserset(tupleset, computed)
        return sorted(t for t in self.reachability.arrow_targets(resource_type, arrow) if self._reaches(*t))

    def _needed_arrows(self, resource_type: str, arrows: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """`arrows` without those another arrow over the same tupleset already covers."""
        needed: set[tuple[str, str]] = set()
        for tupleset, computed in arrows:
            targets = self._targets(resource_type, tupleset, computed)
            if not targets:
                continue
            covered = any(
                other != computed
                and (tupleset, other) in arrows
                and all(self._includes(t, other, computed) for t, _ in targets)
                and not (  # two arrows covering each other: keep the first by name
                    all(self._includes(t, computed, other) for t, _ in targets) and computed < other
                )
                for _, other in arrows
            )
            if not covered:
                needed.add((tupleset, computed))
        return needed

    def _includes(self, resource_type: str, outer: str, inner: str) -> bool:
        """True if `outer` on `resource_type` includes `inner` through computed usersets alone."""
        definition = self.schema.definition(resource_type)
        if definition is None or definition.member(outer) is None:
            return False
        seen: set[str] = set()
        stack = [outer]
        while stack:
            name = stack.pop()
            if name == inner:
                return True
            if name in seen:
                continue
            seen.add(name)
            member = definition.member(name)
            if member is None or isinstance(member, Relation):
                continue
            stack.extend(_union_computed(member.rewrite))
        return False

    def _check_subject_sets(self, resource_type: str, relation: str) -> None:
        """Sort the subject sets `relation` may store into closure nodes and ignored ones."""
        member = self._member(resource_type, relation)
        assert isinstance(member, Relation)  # noqa: S101 - leaves are relations
        for allowed in member.allowed:
            if allowed.relation is None:
                continue
            node = (allowed.type, allowed.relation)
            if not self._reaches(*node):
                self.ignored.add(node)
            elif is_closure_node(self.schema, allowed.type, allowed.relation, self.subject_type):
                self.closure_nodes.add(node)
            else:
                raise _NoPlan  # a subject set the search would have to walk into


def _union_computed(rewrite: Rewrite) -> list[str]:
    """Computed usersets reached through unions only (what a member of the node surely has)."""
    match rewrite:
        case Union(children=children):
            return [name for child in children for name in _union_computed(child)]
        case ComputedUserset(relation=relation):
            return [relation]
    return []
