"""What the schema alone says about a check: which subjects can ever reach T#r, what recurses.

Built once per compiled schema and shared read-only by every request at revisions that
carry that schema. Nodes are ``(type, relation_or_permission)``; there is an edge from a
node to every node whose members can flow into it:

- a relation ``r: group#member`` → ``(group, member)``;
- a computed userset ``permission p = r`` → ``(T, r)``;
- an arrow ``parent->view`` → ``(S, view)`` for every subject type S allowed on ``parent``
  that has ``view`` (arrows ignore subject relations, as SpiceDB's do).

Used to prune: a branch whose node cannot reach the subject's type is answered "no
members" without any I/O (STYLE C8); and to decide which nodes need cycle tracking.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

from rebac.schema.definitions import (
    CompiledSchema,
    ComputedUserset,
    Exclusion,
    Intersection,
    Nil,
    Relation,
    Rewrite,
    This,
    TupleToUserset,
    Union,
)
from rebac.tuples import SubjectRef

__all__ = ["Reachability", "rewrite_references"]

Node = tuple[str, str]


def rewrite_references(node: Rewrite) -> Iterator[ComputedUserset | TupleToUserset | This]:
    """The leaves of a rewrite tree that reference other relations, in source order."""
    match node:
        case Union(children=children) | Intersection(children=children):
            for child in children:
                yield from rewrite_references(child)
        case Exclusion(base=base, subtracted=subtracted):
            yield from rewrite_references(base)
            yield from rewrite_references(subtracted)
        case ComputedUserset() | TupleToUserset() | This():
            yield node
        case Nil():
            return


class Reachability:
    """Schema-level reachability between (type, relation) nodes. Immutable after build."""

    def __init__(self, schema: CompiledSchema) -> None:
        self.schema = schema
        self._edges: dict[Node, set[Node]] = {}
        # Plain subject types (objects or wildcards) stored directly under a relation.
        self._terminals: dict[Node, set[str]] = {}
        # Subject sets (type, relation) allowed directly under a relation.
        self._subject_sets: dict[Node, set[Node]] = {}
        # Memo of can_reach by (type, relation, subject type, subject relation): the hot path.
        self._can_reach: dict[tuple[str, str, str, str | None], bool] = {}
        self._recursive: dict[Node, bool] = {}
        for definition in schema.definitions:
            for member in definition.members:
                node = (definition.name, member.name)
                edges = self._edges.setdefault(node, set())
                terms = self._terminals.setdefault(node, set())
                sets = self._subject_sets.setdefault(node, set())
                if isinstance(member, Relation):
                    for allowed in member.allowed:
                        if allowed.relation is None:
                            terms.add(allowed.type)
                        else:
                            sets.add((allowed.type, allowed.relation))
                            edges.add((allowed.type, allowed.relation))
                    continue
                for ref in rewrite_references(member.rewrite):
                    if isinstance(ref, ComputedUserset):
                        edges.add((definition.name, ref.relation))
                    elif isinstance(ref, TupleToUserset):
                        edges.update(self.arrow_targets(definition.name, ref))

    def arrow_targets(self, resource_type: str, arrow: TupleToUserset) -> set[Node]:
        """The nodes an arrow on `resource_type` walks to (types lacking the relation skipped)."""
        definition = self.schema.definition(resource_type)
        tupleset = definition.member(arrow.tupleset_relation) if definition else None
        if not isinstance(tupleset, Relation):
            return set()
        out: set[Node] = set()
        for allowed in tupleset.allowed:
            target = self.schema.definition(allowed.type)
            if target is not None and target.member(arrow.computed_relation) is not None:
                out.add((allowed.type, arrow.computed_relation))
        return out

    @cached_property
    def _closure(self) -> dict[Node, frozenset[Node]]:
        closure: dict[Node, frozenset[Node]] = {}
        for start in self._edges:
            seen: set[Node] = {start}
            stack = [start]
            while stack:
                for nxt in self._edges.get(stack.pop(), ()):
                    if nxt not in seen:
                        seen.add(nxt)
                        stack.append(nxt)
            closure[start] = frozenset(seen)
        return closure

    def reachable(self, node: Node) -> frozenset[Node]:
        """Every node whose members can flow into `node`, including itself."""
        return self._closure.get(node, frozenset({node}))

    def is_recursive(self, node: Node) -> bool:
        """True if `node` can reach itself through at least one edge (data cycles possible)."""
        known = self._recursive.get(node)
        if known is None:
            known = any(node in self.reachable(nxt) for nxt in self._edges.get(node, ()))
            self._recursive[node] = known
        return known

    def can_reach(self, resource_type: str, relation: str, subject: SubjectRef) -> bool:
        """False only if no relationships could ever make `subject` a member of T#relation.

        Unknown nodes answer True so that the evaluator, not the pruner, reports them.
        """
        key = (resource_type, relation, subject.type, subject.relation)
        known = self._can_reach.get(key)
        if known is None:
            known = self._can_reach[key] = self._compute_can_reach(resource_type, relation, subject)
        return known

    def _compute_can_reach(self, resource_type: str, relation: str, subject: SubjectRef) -> bool:
        node = (resource_type, relation)
        if node not in self._edges:
            return True
        nodes = self.reachable(node)
        if subject.relation is None:
            return any(subject.type in self._terminals.get(n, ()) for n in nodes)
        target = (subject.type, subject.relation)
        # A subject set matches itself, and any relation may store it directly.
        return target in nodes or any(target in self._subject_sets.get(n, ()) for n in nodes)
