"""Relationship filters, shared by every datastore and by tests.

`RelationshipFilter.matches(rel)` is the reference semantics; a datastore's query must
return exactly the live relationships for which it is true.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from rebac.tuples import Relationship

__all__ = ["ANY_RELATION", "AnyRelation", "RelationshipFilter", "SubjectFilter"]


class AnyRelation(Enum):
    """Sentinel type for "any subject relation, including none"."""

    ANY = "any"


ANY_RELATION = AnyRelation.ANY
"""Subject relation filter value that matches any relation and plain subjects alike."""


@dataclass(frozen=True, slots=True)
class SubjectFilter:
    """Matches subjects of `type`, optionally restricted by ids and relation.

    `ids=None` matches every id (a wildcard subject ``user:*`` is stored with id ``*`` and is
    matched by ids containing ``"*"``). `relation=None` matches only plain subjects (no
    relation); ``ANY_RELATION`` matches all; a string matches that subject relation.
    """

    type: str
    ids: tuple[str, ...] | None = None
    relation: str | AnyRelation | None = ANY_RELATION

    def matches(self, rel: Relationship) -> bool:
        """True if `rel`'s subject passes this filter."""
        subject = rel.subject
        if subject.type != self.type:
            return False
        if self.ids is not None and subject.id not in self.ids:
            return False
        return self.relation is ANY_RELATION or subject.relation == self.relation


@dataclass(frozen=True, slots=True)
class RelationshipFilter:
    """Matches relationships; every None field matches anything.

    Forward queries (`Reader.query_relationships`) need `resource_type`; reverse queries
    (`Reader.reverse_query_relationships`) need `subject`.
    """

    resource_type: str | None = None
    resource_ids: tuple[str, ...] | None = None
    relation: str | None = None
    subject: SubjectFilter | None = None

    def matches(self, rel: Relationship) -> bool:
        """True if `rel` passes every set field of this filter."""
        if self.resource_type is not None and rel.resource.type != self.resource_type:
            return False
        if self.resource_ids is not None and rel.resource.id not in self.resource_ids:
            return False
        if self.relation is not None and rel.relation != self.relation:
            return False
        return self.subject is None or self.subject.matches(rel)
