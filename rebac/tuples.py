r"""Relationships as frozen value objects, and their one canonical text form.

The text form is SpiceDB's:

    document:42#viewer@user:ann
    document:42#viewer@group:eng#member
    document:42#viewer@user:*
    document:42#viewer@user:bo[only_on_tuesday:{"day":"tue"}]
    document:42#viewer@user:bo[expiration:2030-01-01T00:00:00Z]

`Relationship.parse(text)` and `str(rel)` round-trip. Ids follow SpiceDB's rules:

- object type: ``([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]``
- relation:    ``[a-z][a-z0-9_]{1,62}[a-z0-9]`` (``...`` on a subject means "no relation")
- object id:   ``[a-zA-Z0-9/_|\\-=+]{1,1024}``; ``*`` (wildcard) only as a subject id
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Self

from rebac.errors import InvalidRelationshipError

__all__ = [
    "WILDCARD",
    "ObjectRef",
    "Relationship",
    "RelationshipCaveat",
    "RelationshipUpdate",
    "SubjectRef",
    "UpdateOperation",
    "format_expiration",
    "parse_object",
    "parse_subject",
    "rel",
    "validate_object_id",
    "validate_object_type",
    "validate_relation_name",
]

WILDCARD = "*"
"""The subject id that stands for every object of a type (``user:*``)."""

_TYPE_RE = re.compile(r"([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]")
_RELATION_RE = re.compile(r"[a-z][a-z0-9_]{1,62}[a-z0-9]")
_ID_RE = re.compile(r"[a-zA-Z0-9/_|\-=+]{1,1024}")
_CAVEAT_NAME_RE = re.compile(r"([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]")


def validate_object_type(value: str, *, field_name: str = "object_type") -> str:
    """Return `value` if it is a valid object type name, else raise InvalidRelationshipError."""
    if not _TYPE_RE.fullmatch(value):
        raise InvalidRelationshipError(
            f"invalid object type {value!r}: expected lowercase letters, digits and `_`, "
            "3 to 64 characters, optionally prefixed like `tenant/document`",
            field=field_name,
        )
    return value


def validate_relation_name(value: str, *, field_name: str = "relation") -> str:
    """Return `value` if it is a valid relation/permission name, else raise."""
    if not _RELATION_RE.fullmatch(value):
        raise InvalidRelationshipError(
            f"invalid relation {value!r}: expected lowercase letters, digits and `_`, "
            "3 to 64 characters, starting with a letter",
            field=field_name,
        )
    return value


def validate_object_id(value: str, *, allow_wildcard: bool = False, field_name: str = "object_id") -> str:
    """Return `value` if it is a valid object id (``*`` only when `allow_wildcard`), else raise."""
    if value == WILDCARD:
        if allow_wildcard:
            return value
        raise InvalidRelationshipError(
            "the wildcard `*` is only allowed as a subject id", field=field_name
        )
    if not _ID_RE.fullmatch(value):
        raise InvalidRelationshipError(
            f"invalid object id {value!r}: expected 1 to 1024 characters from "
            "a-z A-Z 0-9 / _ | - = +",
            field=field_name,
        )
    return value


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    """An object: a type and an id (``document:42``). Ids are never the wildcard."""

    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse ``type:id``; raise InvalidRelationshipError naming what is wrong."""
        return parse_object(text)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class SubjectRef:
    """A subject: an object, a wildcard (``user:*``) or a subject set (``group:eng#member``).

    `relation` is None for a plain object; a wildcard never has a relation. Subjects order
    by (type, id, relation) with a plain subject ("" relation) first, as in `Relationship.key`.
    """

    type: str
    id: str
    relation: str | None = None

    def _order(self) -> tuple[str, str, str]:
        return (self.type, self.id, self.relation or "")

    def __lt__(self, other: SubjectRef) -> bool:
        return self._order() < other._order()

    def __le__(self, other: SubjectRef) -> bool:
        return self._order() <= other._order()

    def __gt__(self, other: SubjectRef) -> bool:
        return self._order() > other._order()

    def __ge__(self, other: SubjectRef) -> bool:
        return self._order() >= other._order()

    @property
    def is_wildcard(self) -> bool:
        """True for ``type:*``."""
        return self.id == WILDCARD

    @property
    def object(self) -> ObjectRef:
        """The object part, without the relation (invalid for a wildcard id)."""
        return ObjectRef(self.type, self.id)

    def __str__(self) -> str:
        base = f"{self.type}:{self.id}"
        return f"{base}#{self.relation}" if self.relation is not None else base

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse ``type:id`` or ``type:id#relation`` or ``type:*``."""
        return parse_subject(text)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class RelationshipCaveat:
    """A caveat on a relationship: its name and the context stored with the tuple.

    The context is kept as canonical JSON text (sorted keys) so the value stays hashable;
    `context` decodes it. An empty context is ``"{}"``.
    """

    name: str
    context_json: str = "{}"

    @classmethod
    def of(cls, name: str, context: dict[str, Any] | None = None) -> RelationshipCaveat:
        """Build from a decoded context mapping."""
        return cls(name, json.dumps(context or {}, sort_keys=True, separators=(",", ":")))

    @property
    def context(self) -> dict[str, Any]:
        """The stored context as a fresh dict (safe to mutate)."""
        value: dict[str, Any] = json.loads(self.context_json)
        return value

    def __str__(self) -> str:
        if self.context_json == "{}":
            return f"[{self.name}]"
        return f"[{self.name}:{self.context_json}]"


def format_expiration(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z` suffix, seconds precision unless sub-second parts exist."""
    value = value.astimezone(UTC)
    text = value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


@dataclass(frozen=True, slots=True, order=True)
class Relationship:
    """One relationship tuple: `resource#relation@subject`, optionally caveated or expiring.

    Two relationships with the same `key` are the same stored row: a TOUCH replaces the
    caveat and expiration of an existing row.
    """

    resource: ObjectRef
    relation: str
    subject: SubjectRef
    caveat: RelationshipCaveat | None = field(default=None, compare=False)
    expiration: datetime | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str, str, str, str, str]:
        """The identity of the stored row: resource, relation and subject (no caveat/expiry)."""
        return (
            self.resource.type,
            self.resource.id,
            self.relation,
            self.subject.type,
            self.subject.id,
            self.subject.relation or "",
        )

    def __str__(self) -> str:
        text = f"{self.resource}#{self.relation}@{self.subject}"
        if self.caveat is not None:
            text += str(self.caveat)
        if self.expiration is not None:
            text += f"[expiration:{format_expiration(self.expiration)}]"
        return text

    @classmethod
    def parse(cls, text: str) -> Relationship:
        """Parse the canonical text form; raise InvalidRelationshipError with the column."""
        return _parse_relationship(text)


class UpdateOperation(Enum):
    """What a RelationshipUpdate does."""

    CREATE = "create"
    """Insert; RelationshipExistsError if a live row with the same key exists."""
    TOUCH = "touch"
    """Insert or replace (caveat and expiration are overwritten)."""
    DELETE = "delete"
    """Delete if present; deleting a missing row is not an error."""


@dataclass(frozen=True, slots=True)
class RelationshipUpdate:
    """One operation of an atomic write batch."""

    operation: UpdateOperation
    relationship: Relationship


def rel(text: str) -> Relationship:
    """Parse a relationship; a short helper for tests and examples."""
    return Relationship.parse(text)


def _split_once(text: str, sep: str, what: str, offset: int) -> tuple[str, str]:
    index = text.find(sep)
    if index < 0:
        raise InvalidRelationshipError(
            f"expected `{sep}` in {what} {text!r}", column=offset + len(text) + 1
        )
    return text[:index], text[index + 1 :]


def parse_object(text: str, *, offset: int = 0, field_name: str = "resource") -> ObjectRef:
    """Parse ``type:id`` (no wildcard)."""
    type_, id_ = _split_once(text, ":", "object", offset)
    try:
        validate_object_type(type_, field_name=f"{field_name}.object_type")
        validate_object_id(id_, field_name=f"{field_name}.object_id")
    except InvalidRelationshipError as err:
        column = offset + 1 if "type" in (err.field or "") else offset + len(type_) + 2
        raise InvalidRelationshipError(str(err), column=column, field=err.field) from None
    return ObjectRef(type_, id_)


def parse_subject(text: str, *, offset: int = 0, field_name: str = "subject") -> SubjectRef:
    """Parse ``type:id``, ``type:id#relation`` (``#...`` means none) or ``type:*``."""
    body, sep, relation = text.partition("#")
    type_, id_ = _split_once(body, ":", "subject", offset)
    try:
        validate_object_type(type_, field_name=f"{field_name}.object_type")
    except InvalidRelationshipError as err:
        raise InvalidRelationshipError(str(err), column=offset + 1, field=err.field) from None
    try:
        validate_object_id(id_, allow_wildcard=True, field_name=f"{field_name}.object_id")
    except InvalidRelationshipError as err:
        raise InvalidRelationshipError(
            str(err), column=offset + len(type_) + 2, field=err.field
        ) from None
    rel_name: str | None = None
    if sep and relation != "...":
        try:
            rel_name = validate_relation_name(relation, field_name=f"{field_name}.relation")
        except InvalidRelationshipError as err:
            raise InvalidRelationshipError(
                str(err), column=offset + len(body) + 2, field=err.field
            ) from None
        if id_ == WILDCARD:
            raise InvalidRelationshipError(
                "a wildcard subject cannot have a relation",
                column=offset + len(body) + 1,
                field=f"{field_name}.relation",
            )
    return SubjectRef(type_, id_, rel_name)


def _parse_suffixes(
    text: str, offset: int
) -> tuple[RelationshipCaveat | None, datetime | None]:
    """Parse the ``[caveat:{json}]`` / ``[caveat]`` / ``[expiration:RFC3339]`` suffixes."""
    caveat: RelationshipCaveat | None = None
    expiration: datetime | None = None
    pos = 0
    while pos < len(text):
        if text[pos] != "[":
            raise InvalidRelationshipError(
                f"unexpected {text[pos:]!r} after the subject", column=offset + pos + 1
            )
        end = _matching_bracket(text, pos, offset)
        inner = text[pos + 1 : end]
        name, colon, value = inner.partition(":")
        if name == "expiration":
            if expiration is not None:
                raise InvalidRelationshipError("expiration given twice", column=offset + pos + 1)
            expiration = _parse_expiration(value, offset + pos + len("[expiration:") + 1)
        else:
            if caveat is not None:
                raise InvalidRelationshipError("caveat given twice", column=offset + pos + 1)
            if not _CAVEAT_NAME_RE.fullmatch(name):
                raise InvalidRelationshipError(
                    f"invalid caveat name {name!r}", column=offset + pos + 2
                )
            context: Any = {}
            if colon:
                try:
                    context = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise InvalidRelationshipError(
                        f"invalid caveat context JSON: {exc.msg}",
                        column=offset + pos + len(name) + 3 + exc.pos,
                    ) from None
                if not isinstance(context, dict):
                    raise InvalidRelationshipError(
                        "caveat context must be a JSON object",
                        column=offset + pos + len(name) + 3,
                    )
            caveat = RelationshipCaveat.of(name, context)
        pos = end + 1
    return caveat, expiration


def _matching_bracket(text: str, start: int, offset: int) -> int:
    """Index of the `]` closing the `[` at `start`, skipping JSON strings and nested brackets."""
    depth = 0
    in_string = False
    escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return i
    raise InvalidRelationshipError("unclosed `[`", column=offset + start + 1)


def _parse_expiration(value: str, column: int) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRelationshipError(
            f"invalid expiration {value!r}: expected RFC 3339 like 2030-01-01T00:00:00Z",
            column=column,
        ) from None
    if parsed.tzinfo is None:
        raise InvalidRelationshipError(
            f"expiration {value!r} needs a time zone (e.g. a trailing Z)", column=column
        )
    return parsed.astimezone(UTC)


def _parse_relationship(text: str) -> Relationship:
    stripped = text.strip()
    lead = len(text) - len(text.lstrip())
    if not stripped:
        raise InvalidRelationshipError("empty relationship", column=1)
    at = stripped.find("@")
    if at < 0:
        raise InvalidRelationshipError(
            f"expected `@` between resource and subject in {stripped!r}",
            column=lead + len(stripped) + 1,
        )
    left, right = stripped[:at], stripped[at + 1 :]
    resource_text, hash_, relation = left.partition("#")
    if not hash_:
        raise InvalidRelationshipError(
            f"expected `#relation` after the resource in {stripped!r}", column=lead + at + 1
        )
    resource = parse_object(resource_text, offset=lead)
    try:
        validate_relation_name(relation)
    except InvalidRelationshipError as err:
        raise InvalidRelationshipError(
            str(err), column=lead + len(resource_text) + 2, field="relation"
        ) from None
    bracket = right.find("[")
    subject_text = right if bracket < 0 else right[:bracket]
    subject_offset = lead + at + 1
    subject = parse_subject(subject_text, offset=subject_offset)
    caveat, expiration = (None, None)
    if bracket >= 0:
        caveat, expiration = _parse_suffixes(right[bracket:], subject_offset + bracket)
    return Relationship(resource, relation, subject, caveat, expiration)
