"""Membership sets and caveat expressions: the pure set algebra of check (no I/O).

A check over many resource ids answers with a `MembershipSet`: for each resource id that
*may* contain the subject, either ``None`` (a determined member: no caveat stands in the
way) or a `CaveatExpr` (a member exactly when that expression is true for the request's
caveat context). Ids absent from the set are not members.

The algebra mirrors SpiceDB's membership set:

- union: a determined member on either side wins; two caveats combine with OR;
- intersection: ids on both sides; caveats combine with AND;
- exclusion: ``base - subtracted``; a determined member of `subtracted` removes the id;
  a caveated one leaves ``base AND NOT subtracted``.

Caveat expressions are frozen and hashable, so membership sets can be cached and shared
between tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "CaveatAnd",
    "CaveatExpr",
    "CaveatLeaf",
    "CaveatNot",
    "CaveatOr",
    "MembershipSet",
    "caveat_and",
    "caveat_or",
]


@dataclass(frozen=True, slots=True)
class CaveatLeaf:
    """One caveated relationship: the caveat's name and the context stored with the tuple."""

    name: str
    context_json: str = "{}"


@dataclass(frozen=True, slots=True)
class CaveatAnd:
    """True when every child is true."""

    children: tuple[CaveatExpr, ...]


@dataclass(frozen=True, slots=True)
class CaveatOr:
    """True when any child is true."""

    children: tuple[CaveatExpr, ...]


@dataclass(frozen=True, slots=True)
class CaveatNot:
    """True when the child is false."""

    child: CaveatExpr


CaveatExpr: TypeAlias = CaveatLeaf | CaveatAnd | CaveatOr | CaveatNot
"""A boolean expression over caveated relationships."""

Condition: TypeAlias = CaveatExpr | None
"""A member's condition: None means unconditional (a determined member)."""


def caveat_and(left: Condition, right: Condition) -> Condition:
    """Both conditions must hold; None (unconditional) is the identity."""
    if left is None:
        return right
    if right is None or left == right:
        return left
    return CaveatAnd(_flatten(CaveatAnd, (left, right)))


def caveat_or(left: CaveatExpr, right: CaveatExpr) -> CaveatExpr:
    """Either condition suffices (callers handle the unconditional case first)."""
    if left == right:
        return left
    return CaveatOr(_flatten(CaveatOr, (left, right)))


def _flatten(kind: type[CaveatAnd | CaveatOr], items: Iterable[CaveatExpr]) -> tuple[CaveatExpr, ...]:
    out: list[CaveatExpr] = []
    for item in items:
        children = item.children if isinstance(item, kind) else (item,)
        out.extend(child for child in children if child not in out)
    return tuple(out)


class MembershipSet(Mapping[str, Condition]):
    """An immutable map of resource id to its condition (None = determined member).

    Operations return new sets; instances are safe to share between tasks and to cache.
    Iteration order is sorted by resource id, so results are deterministic.
    """

    __slots__ = ("_members",)

    def __init__(self, members: Mapping[str, Condition] | None = None) -> None:
        self._members: dict[str, Condition] = dict(sorted((members or {}).items()))

    @classmethod
    def of(cls, *ids: str) -> MembershipSet:
        """Determined members `ids`."""
        return cls(dict.fromkeys(ids))

    def __getitem__(self, key: str) -> Condition:
        return self._members[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __repr__(self) -> str:
        return f"MembershipSet({self._members!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MembershipSet):
            return self._members == other._members
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._members.items()))

    def is_determined(self, resource_id: str) -> bool:
        """True if `resource_id` is a member with no caveat in the way."""
        return resource_id in self._members and self._members[resource_id] is None

    def all_determined(self, resource_ids: Iterable[str]) -> bool:
        """True if every id in `resource_ids` is a determined member."""
        members = self._members
        for rid in resource_ids:  # noqa: SIM110 - a plain loop: runs for every branch of every union
            if rid not in members or members[rid] is not None:
                return False
        return True

    def union_with(self, other: Mapping[str, Condition]) -> MembershipSet:
        """Members of either set; a determined member wins, two caveats combine with OR."""
        merged = dict(self._members)
        for rid, cond in other.items():
            if rid not in merged:
                merged[rid] = cond
                continue
            existing = merged[rid]
            if existing is None or cond is None:
                merged[rid] = None
            else:
                merged[rid] = caveat_or(existing, cond)
        return MembershipSet(merged)

    def intersect_with(self, other: Mapping[str, Condition]) -> MembershipSet:
        """Members of both sets; caveats combine with AND."""
        return MembershipSet(
            {rid: caveat_and(cond, other[rid]) for rid, cond in self._members.items() if rid in other}
        )

    def subtract(self, other: Mapping[str, Condition]) -> MembershipSet:
        """Members of this set not in `other`; a caveated removal leaves AND NOT."""
        out: dict[str, Condition] = {}
        for rid, cond in self._members.items():
            if rid not in other:
                out[rid] = cond
                continue
            removed = other[rid]
            if removed is None:
                continue  # a determined member of the subtracted side is never a member
            out[rid] = caveat_and(cond, CaveatNot(removed))
        return MembershipSet(out)

    def map_condition(self, condition: Condition) -> MembershipSet:
        """Every member additionally requires `condition` (e.g. the caveat of an arrow's tuple)."""
        if condition is None:
            return self
        return MembershipSet({rid: caveat_and(cond, condition) for rid, cond in self._members.items()})

    def restrict(self, resource_ids: Iterable[str]) -> MembershipSet:
        """Only the members among `resource_ids`."""
        wanted = set(resource_ids)
        return MembershipSet({rid: c for rid, c in self._members.items() if rid in wanted})


EMPTY = MembershipSet()
"""The set with no members."""
