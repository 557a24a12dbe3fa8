"""The one exception tree of rebac.

Every error the engine, the datastores or the schema compiler raise on purpose is a
`RebacError`. The gRPC layer maps each class to a status code in exactly one table
(`rebac_server.errors`); nothing here imports gRPC.

```
RebacError
├── InvalidRequestError (ValueError)     → INVALID_ARGUMENT   a request or input is malformed
│   ├── SchemaError                      → INVALID_ARGUMENT   (position: line:column)
│   │   ├── SchemaParseError                                  the text is not the language
│   │   └── SchemaCompileError                                the text parses but means nothing valid
│   ├── InvalidRelationshipError                              malformed relationship text or ids
│   ├── InvalidRevisionError                                  malformed revision token
│   └── BatchTooLargeError                                    more updates than the configured max
├── SchemaMissingError                   → FAILED_PRECONDITION no schema has been written yet
├── UnknownDefinitionError               → FAILED_PRECONDITION
├── UnknownRelationError                 → FAILED_PRECONDITION
├── SchemaViolationError                 → FAILED_PRECONDITION a relationship the schema does not allow
├── SchemaChangeRefusedError             → FAILED_PRECONDITION a schema write would orphan relationships
├── PreconditionFailedError              → FAILED_PRECONDITION a write precondition did not hold
├── MaxDepthExceededError                → FAILED_PRECONDITION
├── RelationshipExistsError              → ALREADY_EXISTS
├── LimitExceededError                   → RESOURCE_EXHAUSTED a configured bound was exceeded
│   └── CaveatLimitExceededError                              (also a CaveatEvaluationError)
├── CaveatEvaluationError                → INVALID_ARGUMENT   a caveat could not be evaluated
├── StaleRevisionError                   → OUT_OF_RANGE       the revision was garbage-collected
├── AuthenticationError                  → UNAUTHENTICATED    no credentials, or unknown ones
├── AuthorizationError                   → PERMISSION_DENIED  valid credentials lacking a scope
├── DatastoreError                       → UNAVAILABLE
│   ├── SerializationConflictError       → ABORTED
│   ├── DatastoreUnavailableError        → UNAVAILABLE
│   ├── DatastoreNotMigratedError        → FAILED_PRECONDITION
│   └── ReadOnlyError                    → UNAVAILABLE
└── BugError                             → INTERNAL (generic message to clients; details logged)
```

A check that fails with any of these is an error to the caller, never "allowed".
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "BatchTooLargeError",
    "BugError",
    "CaveatEvaluationError",
    "CaveatLimitExceededError",
    "DatastoreError",
    "DatastoreNotMigratedError",
    "DatastoreUnavailableError",
    "InvalidRelationshipError",
    "InvalidRequestError",
    "InvalidRevisionError",
    "LimitExceededError",
    "MaxDepthExceededError",
    "PreconditionFailedError",
    "ReadOnlyError",
    "RebacError",
    "RelationshipExistsError",
    "SchemaChangeRefusedError",
    "SchemaCompileError",
    "SchemaError",
    "SchemaMissingError",
    "SchemaParseError",
    "SchemaViolationError",
    "SerializationConflictError",
    "SourcePosition",
    "StaleRevisionError",
    "UnknownDefinitionError",
    "UnknownRelationError",
]


@dataclass(frozen=True, slots=True, order=True)
class SourcePosition:
    """A 1-based line and column in a source text (columns count characters, not bytes)."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


class RebacError(Exception):
    """Base class of every error rebac raises on purpose."""


class InvalidRequestError(RebacError, ValueError):
    """A request or an input is malformed.

    `field` names the offending request field (e.g. ``"resource.object_id"``) when known.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SchemaError(InvalidRequestError):
    """A schema text is invalid; `position` says where (None only for whole-text problems).

    `str(err)` is ``"line:column: message"`` when the position is known.
    """

    def __init__(
        self, message: str, *, position: SourcePosition | None = None, source: str = "schema"
    ) -> None:
        super().__init__(f"{position}: {message}" if position else message, field="schema")
        self.message = message
        self.position = position
        self.source = source


class SchemaParseError(SchemaError):
    """The schema text is not in the language (lexing or parsing failed)."""


class SchemaCompileError(SchemaError):
    """The schema parses but is not valid: an undefined type or relation, a duplicate, ..."""


class InvalidRelationshipError(InvalidRequestError):
    """A relationship's text or one of its ids is malformed.

    `column` is the 1-based column in the relationship text where the problem is, when known.
    """

    def __init__(
        self, message: str, *, column: int | None = None, field: str | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.column = column


class InvalidRevisionError(InvalidRequestError):
    """A revision token is malformed or belongs to another datastore."""


class BatchTooLargeError(InvalidRequestError):
    """A write carries more updates than the configured maximum."""


class SchemaMissingError(RebacError):
    """No schema has been written to the datastore yet."""


class UnknownDefinitionError(RebacError):
    """A request names an object type that the schema does not define."""

    def __init__(self, definition: str) -> None:
        super().__init__(f"object definition `{definition}` not found")
        self.definition = definition


class UnknownRelationError(RebacError):
    """A request names a relation or permission that the definition does not have."""

    def __init__(self, definition: str, relation: str) -> None:
        super().__init__(f"relation/permission `{relation}` not found under definition `{definition}`")
        self.definition = definition
        self.relation = relation


class SchemaViolationError(RebacError):
    """A relationship is not allowed by the schema (wrong subject type, permission as relation...)."""


class SchemaChangeRefusedError(RebacError):
    """A schema write would remove or narrow something that stored relationships still use.

    `relationship` is one example relationship (canonical text) that blocks the change.
    """

    def __init__(self, message: str, *, relationship: str | None = None) -> None:
        super().__init__(message)
        self.relationship = relationship


class PreconditionFailedError(RebacError):
    """A write's precondition (must match / must not match a filter) did not hold."""


class MaxDepthExceededError(RebacError):
    """Resolution needed more nested dispatches than the configured depth limit.

    Raised instead of answering: a truncated walk could deny what should be allowed.
    """

    def __init__(self, max_depth: int) -> None:
        super().__init__(
            f"max depth of {max_depth} exceeded: the relationship graph is too deep or cyclic"
        )
        self.max_depth = max_depth


class RelationshipExistsError(RebacError):
    """A CREATE update names a relationship that already exists."""

    def __init__(self, relationship: str) -> None:
        super().__init__(f"relationship `{relationship}` already exists")
        self.relationship = relationship


class LimitExceededError(RebacError):
    """A configured bound was exceeded (contextual relationships, caveat cost, page size...)."""


class CaveatEvaluationError(RebacError):
    """A caveat could not be evaluated: a context value of the wrong type, a runtime error.

    `caveat` names the caveat when known. Never treated as "allowed".
    """

    def __init__(self, message: str, *, caveat: str | None = None) -> None:
        super().__init__(f"caveat `{caveat}`: {message}" if caveat else message)
        self.caveat = caveat


class CaveatLimitExceededError(CaveatEvaluationError, LimitExceededError):
    """A caveat's evaluation would exceed its cost bound (hostile or runaway expression)."""


class StaleRevisionError(RebacError):
    """The requested revision is older than the garbage-collection window."""


class AuthenticationError(RebacError):
    """The caller presented no credentials, or credentials the server does not know."""


class AuthorizationError(RebacError):
    """The caller's credentials are valid but lack the scope the operation needs."""


class DatastoreError(RebacError):
    """The datastore failed; the request may be retried."""


class SerializationConflictError(DatastoreError):
    """A transaction lost a serialization race; retry it."""


class DatastoreUnavailableError(DatastoreError):
    """The datastore cannot be reached (connection refused, lost, or closed)."""


class DatastoreNotMigratedError(DatastoreError):
    """The database schema is missing, older or newer than this version of rebac knows."""


class ReadOnlyError(DatastoreError):
    """A write was attempted on a read-only datastore."""


class BugError(RebacError):
    """An internal invariant was violated: a bug in rebac, never the caller's fault."""
