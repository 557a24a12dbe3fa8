"""Questions about a compiled schema, and validation of relationships against it.

`TypeSystem(schema)` answers "what is `type#name`?", "which subjects may `type#relation`
hold?" and "may this relationship be written?" with SpiceDB's rules: a caveated relationship
needs a `with caveat` entry for its subject, a plain one needs a plain entry, an expiring one
needs `with expiration`, and a non-expiring one needs an entry without it.
"""

from __future__ import annotations

from rebac.errors import SchemaViolationError, UnknownDefinitionError, UnknownRelationError
from rebac.schema.definitions import (
    AllowedSubject,
    CompiledSchema,
    Definition,
    Member,
    Permission,
    Relation,
)
from rebac.tuples import WILDCARD, Relationship

__all__ = ["TypeSystem", "describe_allowed"]


def describe_allowed(subject: AllowedSubject) -> str:
    """An allowed-subject entry as schema text: `user`, `group#member`, `user:* with c and expiration`."""
    text = (
        subject.type
        + (":*" if subject.wildcard else "")
        + (f"#{subject.relation}" if subject.relation else "")
    )
    traits = [t for t in (subject.caveat, "expiration" if subject.expiration else None) if t]
    return text + (" with " + " and ".join(traits) if traits else "")


class TypeSystem:
    """Lookups and relationship validation over one compiled schema (immutable; share freely)."""

    def __init__(self, schema: CompiledSchema) -> None:
        self.schema = schema

    def definition(self, type_name: str) -> Definition:
        """The definition called `type_name`; raises UnknownDefinitionError."""
        definition = self.schema.definition(type_name)
        if definition is None:
            raise UnknownDefinitionError(type_name)
        return definition

    def member(self, type_name: str, name: str) -> Member:
        """The relation or permission `type_name#name`; raises UnknownDefinitionError/UnknownRelationError."""
        member = self.definition(type_name).member(name)
        if member is None:
            raise UnknownRelationError(type_name, name)
        return member

    def is_permission(self, type_name: str, name: str) -> bool:
        """Whether `type_name#name` is a permission (False for a relation); raises Unknown*."""
        return isinstance(self.member(type_name, name), Permission)

    def relation(self, type_name: str, name: str) -> Relation:
        """The relation `type_name#name`; raises Unknown* or SchemaViolationError for a permission."""
        member = self.member(type_name, name)
        if not isinstance(member, Relation):
            raise SchemaViolationError(
                f"`{type_name}#{name}` is a permission; relationships can only be written to relations"
            )
        return member

    def allowed_subjects(self, type_name: str, relation: str) -> tuple[AllowedSubject, ...]:
        """The type annotation of relation `type_name#relation`, in source order."""
        return self.relation(type_name, relation).allowed

    def validate_relationship(self, rel: Relationship) -> None:
        """Raise unless the schema allows `rel` as written (resource, relation, subject, caveat, expiry).

        Raises UnknownDefinitionError / UnknownRelationError for unknown names and
        SchemaViolationError naming the relationship and what the relation allows otherwise.
        """
        allowed = self.allowed_subjects(rel.resource.type, rel.relation)
        subject = rel.subject
        wildcard = subject.id == WILDCARD
        caveat = rel.caveat.name if rel.caveat is not None else None
        expires = rel.expiration is not None
        for entry in allowed:
            if (
                entry.type == subject.type
                and entry.wildcard == wildcard
                and entry.relation == (None if wildcard else subject.relation)
                and entry.caveat == caveat
                and entry.expiration == expires
            ):
                return
        wanted = describe_allowed(AllowedSubject(subject.type, subject.relation, wildcard, caveat, expires))
        options = " | ".join(describe_allowed(entry) for entry in allowed)
        raise SchemaViolationError(
            f"relationship `{rel}`: subjects of type `{wanted}` are not allowed on relation "
            f"`{rel.resource.type}#{rel.relation}` (allowed: {options})"
        )
