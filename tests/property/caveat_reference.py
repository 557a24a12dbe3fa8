"""A three-valued brute-force oracle for caveated worlds (independent of the engine).

Every membership is a Kleene truth value: True, False, or unknown together with the caveat
parameters that would decide it. Relations and permissions are computed to a least
fixpoint over the order False < unknown < True, with SpiceDB's rules: union is OR,
intersection AND, exclusion ``base AND NOT subtracted``, an arrow ORs ``tuple caveat AND
target`` over the tupleset (``.all`` ANDs them, False when empty), and a caveated
relationship contributes its caveat's value under the request context. Unknown values
merge their missing parameters exactly when they stay unknown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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
    TupleToUserset,
    Union,
)
from rebac.tuples import Relationship


@dataclass(frozen=True)
class K:
    """A Kleene value: `value` True/False, or None (unknown) with `missing` parameters."""

    value: bool | None
    missing: frozenset[str] = frozenset()


T, F = K(value=True), K(value=False)


def k_or(*parts: K) -> K:
    """Kleene OR with the missing parameters of the undecided parts."""
    if any(p.value is True for p in parts):
        return T
    unknown = [p for p in parts if p.value is None]
    return K(None, frozenset().union(*(p.missing for p in unknown))) if unknown else F


def k_and(*parts: K) -> K:
    """Kleene AND with the missing parameters of the undecided parts."""
    if any(p.value is False for p in parts):
        return F
    unknown = [p for p in parts if p.value is None]
    return K(None, frozenset().union(*(p.missing for p in unknown))) if unknown else T


def k_not(part: K) -> K:
    """Kleene NOT (unknown stays unknown)."""
    return part if part.value is None else K(value=not part.value)


CaveatSemantics = Mapping[str, Callable[[Mapping[str, bool]], K]]
"""Caveat name → its three-valued value under a (partial) boolean context."""


class CaveatOracle:
    """Three-valued membership of plain users in every (object, relation) of a small world."""

    def __init__(
        self,
        schema: CompiledSchema,
        relationships: list[Relationship],
        objects: set[tuple[str, str]],
        caveats: CaveatSemantics,
        context: Mapping[str, bool],
    ) -> None:
        self.schema = schema
        self.objects = objects
        self.users = sorted(i for t, i in objects if t == "user")
        self.stored: dict[tuple[str, str, str], list[tuple[Relationship, K]]] = defaultdict(list)
        for r in relationships:
            cond = T if r.caveat is None else caveats[r.caveat.name](context)
            self.stored[(r.resource.type, r.resource.id, r.relation)].append((r, cond))
        self.members: dict[tuple[str, str, str], dict[str, K]] = defaultdict(dict)
        for kind in (Relation, Permission):
            nodes = [
                (t, i, m.name)
                for t, i in sorted(objects)
                if (d := schema.definition(t)) is not None
                for m in d.members
                if isinstance(m, kind)
            ]
            for _ in range(10_000):
                changed = False
                for node in nodes:
                    for user in self.users:
                        value = self._eval(node, user)
                        if value != self.get(node, user):
                            self.members[node][user] = value
                            changed = True
                if not changed:
                    break
            else:  # pragma: no cover - a stratified program converges
                raise AssertionError("oracle did not converge")

    def get(self, node: tuple[str, str, str], user: str) -> K:
        """The membership of `user` in `node` (False if never derived)."""
        return self.members.get(node, {}).get(user, F)

    def _eval(self, node: tuple[str, str, str], user: str) -> K:
        otype, oid, name = node
        member = self.schema.definition(otype).member(name)  # type: ignore[union-attr]
        if isinstance(member, Relation):
            return self._stored(otype, oid, name, user)
        assert isinstance(member, Permission)
        return self._rewrite(member.rewrite, otype, oid, user)

    def _stored(self, otype: str, oid: str, name: str, user: str) -> K:
        parts = []
        for r, cond in self.stored.get((otype, oid, name), []):
            s = r.subject
            if s.type == "user" and s.relation is None and s.id in {user, "*"}:
                parts.append(cond)
            elif s.relation is not None:
                parts.append(k_and(cond, self.get((s.type, s.id, s.relation), user)))
        return k_or(*parts)

    def _rewrite(self, node: Rewrite, otype: str, oid: str, user: str) -> K:  # noqa: PLR0911
        if isinstance(node, Nil):
            return F
        if isinstance(node, ComputedUserset):
            return self.get((otype, oid, node.relation), user)
        if isinstance(node, Union):
            return k_or(*(self._rewrite(c, otype, oid, user) for c in node.children))
        if isinstance(node, Intersection):
            return k_and(*(self._rewrite(c, otype, oid, user) for c in node.children))
        if isinstance(node, Exclusion):
            return k_and(self._rewrite(node.base, otype, oid, user), k_not(self._rewrite(node.subtracted, otype, oid, user)))
        assert isinstance(node, TupleToUserset)
        branches = []
        for r, cond in self.stored.get((otype, oid, node.tupleset_relation), []):
            if r.subject.is_wildcard:
                continue
            target = self.schema.definition(r.subject.type)
            has = target is not None and target.member(node.computed_relation) is not None
            inner = self.get((r.subject.type, r.subject.id, node.computed_relation), user) if has else F
            branches.append(k_and(cond, inner))
        if not branches:
            return F
        return k_or(*branches) if node.function is ArrowFunction.ANY else k_and(*branches)
