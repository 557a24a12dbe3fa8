"""An independent brute-force oracle: the full membership of every (object, relation).

Written from SpiceDB's documented semantics, not from the engine: every relation and
permission of every object is a set of subjects, computed by iterating to a least
fixpoint (relations first, then permissions: the strategies keep exclusions stratified).

Subjects are ``(type, id, relation | None)``. Rules:

- every userset contains itself (``doc:1#p`` is a member of ``doc:1#p``);
- a stored plain subject is a member; ``user:*`` stands for every user of the universe;
- a stored subject set is a member, and so is everyone in it;
- ``a->b``: the union of ``b`` over the objects stored in ``a`` (subject relation
  ignored); ``a.all(b)``: their intersection, empty when ``a`` is empty; a target type
  without ``b`` contributes nothing (and fails ``.all``);
- ``+``, ``&``, ``-`` are set union, intersection and difference; ``nil`` is empty.
"""

from __future__ import annotations

from collections import defaultdict

from rebac.schema.definitions import (
    ArrowFunction,
    CompiledSchema,
    ComputedUserset,
    Exclusion,
    Intersection,
    Nil,
    Permission,
    Relation,
    Rewrite,
    This,
    TupleToUserset,
    Union,
)
from rebac.tuples import Relationship

Subject = tuple[str, str, str | None]
Node = tuple[str, str, str]  # (type, id, relation)


class Oracle:
    """Memberships of every userset over the objects in `relationships` and `extra_objects`."""

    def __init__(
        self,
        schema: CompiledSchema,
        relationships: list[Relationship],
        extra_objects: tuple[tuple[str, str], ...],
    ) -> None:
        self.schema = schema
        self.objects: set[tuple[str, str]] = set()
        self.stored: dict[tuple[str, str, str], list[Subject]] = defaultdict(list)
        for r in relationships:
            self.objects.add((r.resource.type, r.resource.id))
            if not r.subject.is_wildcard:
                self.objects.add((r.subject.type, r.subject.id))
            self.stored[(r.resource.type, r.resource.id, r.relation)].append(
                (r.subject.type, r.subject.id, r.subject.relation)
            )
        self.objects.update(extra_objects)
        self.members: dict[Node, set[Subject]] = defaultdict(set)
        self._solve()

    def _nodes(self, kind: type[Relation | Permission]) -> list[Node]:
        out = []
        for otype, oid in sorted(self.objects):
            definition = self.schema.definition(otype)
            if definition is None:
                continue
            out.extend((otype, oid, m.name) for m in definition.members if isinstance(m, kind))
        return out

    def _solve(self) -> None:
        for kind in (Relation, Permission):
            nodes = self._nodes(kind)
            for _ in range(10_000):
                changed = False
                for node in nodes:
                    value = self._evaluate(node) | {node}
                    if value != self.members[node]:
                        self.members[node] = value
                        changed = True
                if not changed:
                    break
            else:  # pragma: no cover - a stratified program always converges
                raise AssertionError("oracle did not converge")

    def _evaluate(self, node: Node) -> set[Subject]:
        otype, oid, name = node
        member = self.schema.definition(otype).member(name)  # type: ignore[union-attr]
        if isinstance(member, Relation):
            return self._stored(otype, oid, name)
        assert isinstance(member, Permission)
        return self._rewrite(member.rewrite, otype, oid)

    def _stored(self, otype: str, oid: str, name: str) -> set[Subject]:
        out: set[Subject] = set()
        for stype, sid, srel in self.stored.get((otype, oid, name), []):
            if sid == "*":
                out |= {(t, i, None) for (t, i) in self.objects if t == stype}
            elif srel is None:
                out.add((stype, sid, None))
            else:
                out.add((stype, sid, srel))
                out |= self.members[(stype, sid, srel)]
        return out

    def _rewrite(self, node: Rewrite, otype: str, oid: str) -> set[Subject]:  # noqa: PLR0911
        if isinstance(node, Nil):
            return set()
        if isinstance(node, This):
            raise AssertionError("not generated")
        if isinstance(node, ComputedUserset):
            return set(self.members[(otype, oid, node.relation)])
        if isinstance(node, Union):
            return set().union(*(self._rewrite(c, otype, oid) for c in node.children))
        if isinstance(node, Intersection):
            sets = [self._rewrite(c, otype, oid) for c in node.children]
            return set.intersection(*sets)
        if isinstance(node, Exclusion):
            return self._rewrite(node.base, otype, oid) - self._rewrite(node.subtracted, otype, oid)
        assert isinstance(node, TupleToUserset)
        targets = [s for s in self.stored.get((otype, oid, node.tupleset_relation), []) if s[1] != "*"]
        sets = []
        for stype, sid, _ in targets:
            definition = self.schema.definition(stype)
            has = definition is not None and definition.member(node.computed_relation) is not None
            sets.append(set(self.members[(stype, sid, node.computed_relation)]) if has else set())
        if not sets:
            return set()
        if node.function is ArrowFunction.ANY:
            return set().union(*sets)
        return set.intersection(*sets)

    def has(self, otype: str, oid: str, relation: str, subject: Subject) -> bool:
        """Whether `subject` is a member of ``otype:oid#relation``."""
        if (otype, oid, relation) == subject:
            return True
        return subject in self.members.get((otype, oid, relation), set())
