"""The write use cases: relationships, deletes by filter, schema changes and bulk import.

Each function runs in one datastore transaction (import: one per batch) and validates
inside it, against the schema at the write's own revision, so a concurrent schema change
cannot slip between validation and commit. Any error rolls the transaction back: a
failed call writes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from rebac.datastore.filters import ANY_RELATION, RelationshipFilter
from rebac.datastore.protocol import Datastore, Reader, Transaction
from rebac.errors import (
    BatchTooLargeError,
    InvalidRequestError,
    PreconditionFailedError,
    RebacError,
    SchemaChangeRefusedError,
    UnknownDefinitionError,
    UnknownRelationError,
)
from rebac.revision import Revision
from rebac.schema import TypeSystem, compile_schema
from rebac.schema.definitions import AllowedSubject, CompiledSchema, Relation
from rebac.tuples import Relationship, RelationshipUpdate, UpdateOperation

__all__ = [
    "DEFAULT_MAX_UPDATES",
    "ImportResult",
    "Precondition",
    "delete_relationships",
    "describe_filter",
    "import_relationships",
    "validate_filter",
    "write_relationships",
    "write_schema",
]

DEFAULT_MAX_UPDATES = 1000
"""SpiceDB's default bound on the updates of one WriteRelationships call."""


@dataclass(frozen=True, slots=True)
class Precondition:
    """A condition checked inside the write's transaction before anything is written.

    `must_match=True`: at least one relationship matches `filter`; False: none does.
    """

    filter: RelationshipFilter
    must_match: bool


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import wrote: how many relationships, and the revision of the last batch."""

    count: int
    revision: Revision


def describe_filter(flt: RelationshipFilter) -> str:
    """A readable one-line form of a filter, like ``document:{1,2}#viewer@user:*``.

    `*` stands for "any" in a position the filter leaves open.
    """
    resource_type = flt.resource_type or "*"
    ids = "*" if flt.resource_ids is None else "{" + ",".join(flt.resource_ids) + "}"
    text = f"{resource_type}:{ids}#{flt.relation or '*'}"
    if flt.subject is not None:
        sub = flt.subject
        sub_ids = "*" if sub.ids is None else "{" + ",".join(sub.ids) + "}"
        text += f"@{sub.type}:{sub_ids}"
        if sub.relation is ANY_RELATION:
            text += "#*"
        elif sub.relation is not None:
            text += f"#{sub.relation}"
    return text


def _query(
    reader: Reader, flt: RelationshipFilter, *, limit: int | None = None
) -> AsyncIterator[Relationship]:
    """Query through the index that fits `flt` (reverse when only the subject is known)."""
    if flt.resource_type is None and flt.subject is not None:
        return reader.reverse_query_relationships(flt, limit=limit)
    return reader.query_relationships(flt, limit=limit)


async def _first(reader: Reader, flt: RelationshipFilter) -> Relationship | None:
    async for found in _query(reader, flt, limit=1):
        return found
    return None


async def _check_preconditions(tx: Transaction, preconditions: Sequence[Precondition]) -> None:
    for precondition in preconditions:
        found = await _first(tx, precondition.filter)
        described = describe_filter(precondition.filter)
        if precondition.must_match and found is None:
            raise PreconditionFailedError(
                f"precondition failed: no relationship matches `{described}`"
            )
        if not precondition.must_match and found is not None:
            raise PreconditionFailedError(
                f"precondition failed: relationship `{found}` matches `{described}`, "
                "which must match nothing"
            )


def _validate(schema: CompiledSchema, updates: Sequence[RelationshipUpdate]) -> None:
    """Validate updates against `schema`; a DELETE only needs an existing relation.

    A DELETE ignores caveat and expiration, so it is not held to the subject rules: it
    may name a row that a since-narrowed schema no longer allows.
    """
    types = TypeSystem(schema)
    for index, update in enumerate(updates):
        relationship = update.relationship
        try:
            if update.operation is UpdateOperation.DELETE:
                _require_relation(schema, relationship.resource.type, relationship.relation)
            else:
                types.validate_relationship(relationship)
        except RebacError as err:
            # Name the culprit: in a batch of a thousand, "relation `readr` not found" alone
            # leaves the caller searching. The error keeps its class (and status code).
            err.args = (f"updates[{index}] `{relationship}`: {err}",)
            raise


def validate_filter(schema: CompiledSchema, filter: RelationshipFilter) -> None:  # noqa: A002 - the domain word
    """Raise UnknownDefinitionError/UnknownRelationError if `filter` names what `schema` lacks.

    A filter on a type that does not exist matches nothing; saying so beats an empty answer.
    """
    if filter.resource_type is not None:
        _require_relation(schema, filter.resource_type, filter.relation)
    if filter.subject is not None:
        _require_relation(schema, filter.subject.type, None)


def _require_relation(schema: CompiledSchema, type_name: str, relation: str | None) -> None:
    definition = schema.definition(type_name)
    if definition is None:
        raise UnknownDefinitionError(type_name)
    if relation is not None and definition.member(relation) is None:
        raise UnknownRelationError(type_name, relation)


async def write_relationships(
    ds: Datastore,
    updates: Sequence[RelationshipUpdate],
    *,
    preconditions: Sequence[Precondition] = (),
    max_updates: int = DEFAULT_MAX_UPDATES,
) -> Revision:
    """Apply `updates` atomically after checking `preconditions`; the new revision.

    Errors (nothing is written on any of them): BatchTooLargeError above `max_updates`;
    InvalidRequestError if two updates name the same relationship; PreconditionFailedError
    naming the filter; SchemaMissingError / UnknownDefinitionError / UnknownRelationError /
    SchemaViolationError from validation against the schema at the write's revision;
    RelationshipExistsError for a CREATE of a live relationship.
    """
    if len(updates) > max_updates:
        raise BatchTooLargeError(
            f"{len(updates)} updates exceed the limit of {max_updates} per write",
            field="updates",
        )
    seen: set[tuple[str, ...]] = set()
    for update in updates:
        if update.relationship.key in seen:
            raise InvalidRequestError(
                f"relationship `{update.relationship}` appears more than once in one write",
                field="updates",
            )
        seen.add(update.relationship.key)

    async def body(tx: Transaction) -> None:
        await _check_preconditions(tx, preconditions)
        _validate(await tx.read_schema(), updates)
        await tx.write_relationships(updates)

    return await ds.read_write_tx(body)


async def delete_relationships(
    ds: Datastore,
    filter: RelationshipFilter,  # noqa: A002 - the domain word
    *,
    preconditions: Sequence[Precondition] = (),
    limit: int | None = None,
) -> tuple[Revision, int]:
    """Delete the relationships matching `filter` (at most `limit`, in key order).

    Returns the new revision and how many were deleted. InvalidRequestError for a filter
    that sets no field (it would delete everything) or a negative limit;
    UnknownDefinitionError / UnknownRelationError if the filter names what the schema
    lacks; PreconditionFailedError as for writes.
    """
    if filter == RelationshipFilter():
        raise InvalidRequestError(
            "refusing to delete every relationship: the filter sets no field", field="filter"
        )
    if limit is not None and limit < 0:
        raise InvalidRequestError(f"limit must not be negative, got {limit}", field="limit")
    deleted = 0

    async def body(tx: Transaction) -> None:
        nonlocal deleted
        validate_filter(await tx.read_schema(), filter)
        await _check_preconditions(tx, preconditions)
        deleted = await tx.delete_relationships(filter, limit=limit)

    revision = await ds.read_write_tx(body)
    return revision, deleted


def _allowed_key(allowed: AllowedSubject) -> tuple[object, ...]:
    return (allowed.type, allowed.relation, allowed.wildcard, allowed.caveat, allowed.expiration)


async def _refuse_orphans(tx: Transaction, old: CompiledSchema, new: CompiledSchema) -> None:
    """SchemaChangeRefusedError if a stored relationship would not be valid under `new`.

    Only relations whose definition disappeared, that disappeared or became a
    permission, or whose allowed subject types lost an entry are read, so an unrelated
    schema edit costs no relationship reads.
    """
    types = TypeSystem(new)
    for definition in old.definitions:
        for relation in definition.relations:
            where = f"{definition.name}#{relation.name}"
            flt = RelationshipFilter(resource_type=definition.name, relation=relation.name)
            new_def = new.definition(definition.name)
            new_member = new_def.member(relation.name) if new_def is not None else None
            if not isinstance(new_member, Relation):
                example = await _first(tx, flt)
                if example is not None:
                    what = "definition" if new_def is None else "relation"
                    name = definition.name if new_def is None else where
                    raise SchemaChangeRefusedError(
                        f"cannot remove {what} `{name}`: relationship `{example}` still uses it",
                        relationship=str(example),
                    )
                continue
            kept = {_allowed_key(a) for a in new_member.allowed}
            if all(_allowed_key(a) in kept for a in relation.allowed):
                continue
            async for stored in tx.query_relationships(flt):
                try:
                    types.validate_relationship(stored)
                except RebacError:
                    raise SchemaChangeRefusedError(
                        f"cannot narrow the allowed subjects of relation `{where}`: "
                        f"relationship `{stored}` would no longer be allowed",
                        relationship=str(stored),
                    ) from None


async def write_schema(ds: Datastore, text: str) -> Revision:
    """Compile `text` and store it; the new revision.

    SchemaError (parse/compile, with line:column) on bad text; SchemaChangeRefusedError
    naming the relation and one example relationship if stored relationships would be
    orphaned (a removed definition or relation, or narrowed allowed subject types).
    """
    compiled = compile_schema(text)

    async def body(tx: Transaction) -> None:
        if await tx.read_schema_text() is not None:
            await _refuse_orphans(tx, await tx.read_schema(), compiled)
        await tx.write_schema(text)

    return await ds.read_write_tx(body)


async def _aiter(items: Sequence[Relationship]) -> AsyncIterator[Relationship]:
    for item in items:
        yield item


async def import_relationships(
    ds: Datastore,
    rels: AsyncIterable[Relationship],
    *,
    batch_size: int = 1000,
    on_progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Validate and insert new relationships, one transaction per batch of `batch_size`.

    `on_progress(total)` runs after each committed batch with the running count. A failed
    batch writes nothing; the batches before it stay committed, and the error carries a
    note saying how many. Errors: as `write_relationships` for validation, and
    RelationshipExistsError if a relationship exists already or repeats in the input.
    With no input, nothing is written and the revision is the head.
    """
    if batch_size < 1:
        raise InvalidRequestError(f"batch_size must be positive, got {batch_size}", field="batch_size")
    count = 0
    revision: Revision | None = None
    batch: list[Relationship] = []

    async def flush() -> None:
        nonlocal count, revision
        # The batch is a list, not the caller's stream, so a retried transaction sees it again.
        items = list(batch)

        async def body(tx: Transaction) -> None:
            schema = await tx.read_schema()
            _validate(schema, [RelationshipUpdate(UpdateOperation.CREATE, r) for r in items])
            await tx.bulk_load(_aiter(items))

        try:
            revision = await ds.read_write_tx(body)
        except RebacError as err:
            err.add_note(f"{count} relationships of earlier batches were committed")
            raise
        count += len(items)
        batch.clear()
        if on_progress is not None:
            on_progress(count)

    async for relationship in rels:
        batch.append(relationship)
        if len(batch) >= batch_size:
            await flush()
    if batch:
        await flush()
    return ImportResult(count, revision if revision is not None else await ds.head_revision())
