"""The I/O seam: the Datastore, Reader and Transaction protocols.

Reads happen only through a `Reader` bound to one revision; writes only inside
`Datastore.read_write_tx(fn)`, which commits when `fn` returns, rolls back when it
raises, may retry `fn` after a serialization conflict, and returns the new revision.

Ordering contract (both query methods): relationships come out ordered by
`Relationship.key` (resource type, resource id, relation, subject type, subject id,
subject relation with "" for none), which makes `after=` keyset pagination exact.

Expired relationships (`expiration` in the past) are returned like any other; the
engine, which is handed "now" explicitly, decides what they mean.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

from rebac.datastore.filters import RelationshipFilter
from rebac.revision import Revision
from rebac.schema.definitions import CompiledSchema
from rebac.tuples import Relationship, RelationshipUpdate

__all__ = ["Datastore", "GraphReader", "Reader", "RevisionChanges", "Transaction", "TxFn"]


class Reader(Protocol):
    """**Protocol:** reads relationships and the schema as of exactly one revision.

    A reader is cheap, safe to share between tasks of one request, and never sees writes
    committed after its revision.
    """

    @property
    def revision(self) -> Revision:
        """The snapshot this reader sees."""
        ...

    async def read_schema(self) -> CompiledSchema:
        """The compiled schema at this revision; SchemaMissingError if none was written."""
        ...

    async def read_schema_text(self) -> str | None:
        """The schema text as written, or None if no schema was written yet."""
        ...

    def query_relationships(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the domain word
        *,
        limit: int | None = None,
        after: Relationship | None = None,
    ) -> AsyncIterator[Relationship]:
        """Live relationships matching `filter`, in key order, strictly after `after`.

        Uses the forward index when `filter.resource_type` is set (batch many ids through
        `filter.resource_ids` in one call); an empty filter streams everything (export).
        """
        ...

    def reverse_query_relationships(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the domain word
        *,
        limit: int | None = None,
        after: Relationship | None = None,
    ) -> AsyncIterator[Relationship]:
        """Like `query_relationships`, planned for a filter whose `subject` is set.

        BugError if `filter.subject` is None.
        """
        ...


@runtime_checkable
class GraphReader(Reader, Protocol):
    """**Protocol (optional capability):** graph walks answered in one round trip.

    A reader may offer these so the engine can fetch a whole parent chain or a subject's
    nested-group closure at once (recursive SQL on Postgres); the engine falls back to
    plain queries for readers without them. `rebac.datastore.graph` holds the reference
    semantics (built on `query_relationships`). Both return live rows only, each once, in
    key order, or None when more than `max_rows` rows would be returned (the caller then
    walks step by step).
    """

    async def walk_relations(
        self,
        resource_type: str,
        resource_ids: Sequence[str],
        *,
        follow: Sequence[str],
        relations: Sequence[str],
        max_rows: int,
    ) -> list[Relationship] | None:
        """Every relationship with a relation in `relations` on every reached object.

        Reached objects: ``resource_type:resource_ids``, and transitively the subject
        objects (any type; subject relation ignored; wildcards not followed) of the
        relationships with a relation in `follow` on reached objects.
        """
        ...

    async def subject_set_closure(
        self,
        resource_type: str,
        relation: str,
        subject_type: str,
        subject_id: str,
        *,
        max_rows: int,
    ) -> list[Relationship] | None:
        """The relationships of `resource_type#relation` that lead up from a plain subject.

        Those whose subject is ``subject_type:subject_id`` or ``subject_type:*`` (no
        subject relation), and transitively those whose subject is
        ``resource_type:X#relation`` for an X that is the resource of one already included.
        """
        ...

    async def subject_set_height(
        self,
        resource_type: str,
        relation: str,
        resource_ids: Sequence[str],
        *,
        max_height: int,
    ) -> int:
        """The most subject-set rows chained down from `resource_ids`, at most `max_height`.

        A chain is ``T:a#r@T:b#r``, ``T:b#r@T:c#r``, ... (T, r = `resource_type`,
        `relation`) starting at one of `resource_ids`; a cycle counts as reaching
        `max_height`. 0 when no id has a subject-set row.
        """
        ...


class Transaction(Reader, Protocol):
    """**Protocol:** a reader plus writes, all applied atomically at commit.

    Reads inside the transaction see the snapshot it started at plus its own writes.
    """

    async def write_relationships(self, updates: Sequence[RelationshipUpdate]) -> None:
        """Apply CREATE/TOUCH/DELETE updates.

        CREATE of a live key raises RelationshipExistsError; DELETE of a missing key is a
        no-op. The caller validates against the schema first (see `rebac.writes`).
        """
        ...

    async def delete_relationships(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the domain word
        *,
        limit: int | None = None,
    ) -> int:
        """Delete live relationships matching `filter` (at most `limit`); return how many."""
        ...

    async def bulk_load(self, relationships: AsyncIterable[Relationship]) -> int:
        """Insert many new relationships fast (COPY on Postgres); return how many.

        RelationshipExistsError if any already exists; the transaction then writes nothing.
        """
        ...

    async def write_schema(self, text: str) -> None:
        """Store `text` as the schema from this transaction's revision on.

        The caller has compiled and checked it (see `rebac.writes.write_schema`).
        """
        ...


TxFn: TypeAlias = Callable[[Transaction], Awaitable[None]]
"""A transaction body; it may run more than once (retries after serialization conflicts)."""


@dataclass(frozen=True, slots=True)
class RevisionChanges:
    """The relationship changes one transaction committed, for Watch."""

    revision: Revision
    updates: tuple[RelationshipUpdate, ...]


class Datastore(Protocol):
    """**Protocol:** versioned relationship storage.

    Lifecycle: open (constructor or `connect` context manager) → use → `aclose()`; use
    after close raises DatastoreUnavailableError.
    """

    def snapshot_reader(self, revision: Revision) -> Reader:
        """A reader at `revision` (which must come from this datastore)."""
        ...

    async def read_write_tx(self, fn: TxFn) -> Revision:
        """Run `fn` in a transaction; commit on return, roll back on raise; the new revision.

        Retries `fn` a bounded number of times on SerializationConflictError, then raises it.
        """
        ...

    async def head_revision(self) -> Revision:
        """The newest committed revision."""
        ...

    async def optimized_revision(self) -> Revision:
        """A recent revision, rounded to the quantization window so requests share caches."""
        ...

    async def check_revision(self, revision: Revision) -> None:
        """Raise if `revision` cannot be read.

        StaleRevisionError if it was garbage-collected; InvalidRevisionError if it is from
        the future or from another datastore.
        """
        ...

    def revision_from_string(self, value: str) -> Revision:
        """Parse `str(revision)` back; InvalidRevisionError if malformed."""
        ...

    def watch(self, after: Revision) -> AsyncIterator[RevisionChanges]:
        """Changes committed after `after`, in commit order, until the consumer stops."""
        ...

    async def aclose(self) -> None:
        """Release connections; idempotent."""
        ...
