"""The in-memory reference datastore: versioned rows with Postgres's visibility rule.

Every committed transaction gets the next integer revision. A row is
``(relationship, created, deleted)`` and is visible at revision R when
``created <= R < deleted`` (``deleted`` None means "still alive"); this is the same rule
the Postgres datastore applies with xid8 snapshots, so the conformance suite checks
meaning rather than mechanics. A delete only stamps ``deleted``, which is why a reader
at an old revision keeps seeing exactly its snapshot while writers move on.

Writers are serialized by one asyncio.Lock, so there are never serialization conflicts.
Used for tests, offline validation (`rebac validate`) and as the executable
specification of the Datastore protocol.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Self

from rebac.datastore.filters import RelationshipFilter
from rebac.datastore.graph import (
    subject_set_closure_by_queries,
    subject_set_height_by_queries,
    walk_relations_by_queries,
)
from rebac.datastore.path_search import DEFAULT_MAX_LEVELS, PathOutcome, PathPlan, search_paths_by_queries
from rebac.datastore.protocol import RevisionChanges, TxFn
from rebac.errors import (
    BugError,
    DatastoreUnavailableError,
    InvalidRevisionError,
    RelationshipExistsError,
    SchemaMissingError,
    StaleRevisionError,
)
from rebac.revision import Revision
from rebac.schema import compile_schema
from rebac.schema.definitions import CompiledSchema
from rebac.tuples import Relationship, RelationshipUpdate, UpdateOperation

__all__ = ["DatastoreState", "MemoryDatastore", "MemoryRevision"]

_Key = tuple[str, str, str, str, str, str]
_DEFAULT_GC_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True, order=True)
class MemoryRevision:
    """A memory datastore revision: the count of transactions committed before it.

    `str()` is the decimal number; `MemoryDatastore.revision_from_string` parses it back.
    """

    value: int

    def __str__(self) -> str:
        return str(self.value)

    def greater_than(self, other: Revision) -> bool:
        """True if this revision is strictly newer than `other` (another MemoryRevision).

        InvalidRevisionError if `other` comes from a different kind of datastore.
        """
        if not isinstance(other, MemoryRevision):
            raise InvalidRevisionError(
                f"cannot compare a memory revision with {type(other).__name__}", field="revision"
            )
        return self.value > other.value


class DatastoreState(enum.Enum):
    """Lifecycle of a datastore: NEW → OPEN (on `async with` or first use) → CLOSED."""

    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(slots=True)
class _Row:
    """One version of a stored relationship; only `deleted` ever changes (once)."""

    relationship: Relationship
    created: int
    deleted: int | None = None

    def visible_at(self, revision: int) -> bool:
        return self.created <= revision and (self.deleted is None or revision < self.deleted)


class MemoryDatastore:
    """A Datastore kept in process memory; see the module docstring for the model.

    `gc_window` is how long deleted rows (and the revisions that see them) stay readable;
    `collect_garbage()` drops what is older. Not thread-safe: use it from one event loop.
    """

    def __init__(self, *, gc_window: timedelta = _DEFAULT_GC_WINDOW) -> None:
        self._gc_window = gc_window
        self._state = DatastoreState.NEW
        self._head = 0
        # Revisions below this were garbage-collected (reading them is StaleRevisionError).
        self._min_readable = 0
        self._commit_times: dict[int, datetime] = {0: datetime.now(UTC)}
        self._versions: dict[_Key, list[_Row]] = {}
        # Indexes from type → id → keys, for the forward and the reverse query path.
        self._forward: dict[str, dict[str, set[_Key]]] = {}
        self._reverse: dict[str, dict[str, set[_Key]]] = {}
        self._schemas: list[tuple[int, str]] = []
        self._compiled: dict[str, CompiledSchema] = {}
        # (revision, changes) per commit that changed relationships, in commit order.
        self._changes: list[tuple[int, RevisionChanges]] = []
        self._write_lock = asyncio.Lock()
        self._commits = asyncio.Condition()

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def state(self) -> DatastoreState:
        """Where this datastore is in its lifecycle."""
        return self._state

    async def __aenter__(self) -> Self:
        if self._state is DatastoreState.OPEN:
            raise BugError("the memory datastore was opened twice")
        self._ensure_open()
        return self

    async def __aexit__(self, *_exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the datastore; idempotent. Later use raises DatastoreUnavailableError.

        Running `watch` streams end with DatastoreUnavailableError.
        """
        self._state = DatastoreState.CLOSED
        async with self._commits:
            self._commits.notify_all()

    def _ensure_open(self) -> None:
        if self._state is DatastoreState.CLOSED:
            raise DatastoreUnavailableError("the memory datastore is closed")
        self._state = DatastoreState.OPEN

    # -- revisions ---------------------------------------------------------------------

    def _as_memory_revision(self, revision: Revision) -> int:
        """The integer behind `revision`; InvalidRevisionError if foreign or in the future."""
        if not isinstance(revision, MemoryRevision):
            raise InvalidRevisionError(
                f"revision {revision} does not come from a memory datastore", field="revision"
            )
        if revision.value > self._head:
            raise InvalidRevisionError(
                f"revision {revision} is in the future (head is {self._head})", field="revision"
            )
        return revision.value

    def _check_readable(self, value: int) -> None:
        self._ensure_open()
        if value < self._min_readable:
            raise StaleRevisionError(
                f"revision {value} was garbage-collected (oldest readable is {self._min_readable})"
            )

    async def head_revision(self) -> MemoryRevision:
        """The newest committed revision (0 for a fresh datastore)."""
        self._ensure_open()
        return MemoryRevision(self._head)

    async def optimized_revision(self) -> MemoryRevision:
        """The head revision.

        Quantizing exists so concurrent requests share cache entries without hitting
        storage for the newest snapshot; memory reads cost nothing and the datastore
        serves tests and offline validation, where read-your-writes matters more.
        """
        return await self.head_revision()

    async def check_revision(self, revision: Revision) -> None:
        """Raise InvalidRevisionError (foreign/future) or StaleRevisionError (collected)."""
        self._ensure_open()
        self._check_readable(self._as_memory_revision(revision))

    def revision_from_string(self, value: str) -> MemoryRevision:
        """Parse ``str(revision)``; InvalidRevisionError if malformed or in the future."""
        if not value.isascii() or not value.isdigit() or (len(value) > 1 and value[0] == "0"):
            raise InvalidRevisionError(f"malformed memory revision {value!r}", field="revision")
        revision = MemoryRevision(int(value))
        self._as_memory_revision(revision)
        return revision

    # -- reads -------------------------------------------------------------------------

    def snapshot_reader(self, revision: Revision) -> MemoryReader:
        """A reader at `revision`; InvalidRevisionError if foreign or from the future.

        Staleness is checked on every read, since garbage collection may run later.
        """
        self._ensure_open()
        return MemoryReader(self, self._as_memory_revision(revision))

    def _visible(self, key: _Key, revision: int) -> Relationship | None:
        for row in reversed(self._versions.get(key, ())):
            if row.visible_at(revision):
                return row.relationship
        return None

    def _candidate_keys(self, flt: RelationshipFilter) -> Iterable[_Key]:
        """Keys that might match `flt`, narrowed through the most selective index."""
        if flt.resource_type is not None:
            by_id = self._forward.get(flt.resource_type, {})
            ids = flt.resource_ids if flt.resource_ids is not None else tuple(by_id)
            return [key for rid in ids for key in by_id.get(rid, ())]
        if flt.subject is not None:
            by_id = self._reverse.get(flt.subject.type, {})
            ids = flt.subject.ids if flt.subject.ids is not None else tuple(by_id)
            return [key for sid in ids for key in by_id.get(sid, ())]
        return list(self._versions)

    def _schema_text_at(self, revision: int) -> str | None:
        text: str | None = None
        for written, schema_text in self._schemas:
            if written > revision:
                break
            text = schema_text
        return text

    def _compile(self, text: str) -> CompiledSchema:
        """Compile `text` once; repeated reads of one text return the same object."""
        compiled = self._compiled.get(text)
        if compiled is None:
            compiled = compile_schema(text)
            self._compiled[text] = compiled
        return compiled

    # -- writes ------------------------------------------------------------------------

    async def read_write_tx(self, fn: TxFn) -> MemoryRevision:
        """Run `fn` under the write lock; commit on return, discard everything on raise.

        Writers never conflict (they are serialized), so `fn` runs exactly once. Every
        commit, even an empty one, creates a new revision.
        """
        self._ensure_open()
        async with self._write_lock:
            self._ensure_open()
            tx = MemoryTransaction(self, self._head)
            try:
                await fn(tx)
            finally:
                tx.finished = True
            self._ensure_open()
            return await self._commit(tx)

    async def _commit(self, tx: MemoryTransaction) -> MemoryRevision:
        revision = self._head + 1
        changes: list[RelationshipUpdate] = []
        for key in sorted(tx.overlay):
            new = tx.overlay[key]
            versions = self._versions.get(key)
            live = versions[-1] if versions and versions[-1].deleted is None else None
            if live is not None:
                live.deleted = revision
            if new is not None:
                self._insert(key, _Row(new, revision))
                changes.append(RelationshipUpdate(UpdateOperation.TOUCH, new))
            elif live is not None:
                changes.append(RelationshipUpdate(UpdateOperation.DELETE, live.relationship))
        if tx.schema_text is not None:
            self._schemas.append((revision, tx.schema_text))
        self._head = revision
        self._commit_times[revision] = datetime.now(UTC)
        if changes:
            self._changes.append((revision, RevisionChanges(MemoryRevision(revision), tuple(changes))))
        async with self._commits:
            self._commits.notify_all()
        return MemoryRevision(revision)

    def _insert(self, key: _Key, row: _Row) -> None:
        self._versions.setdefault(key, []).append(row)
        r = row.relationship
        self._forward.setdefault(r.resource.type, {}).setdefault(r.resource.id, set()).add(key)
        self._reverse.setdefault(r.subject.type, {}).setdefault(r.subject.id, set()).add(key)

    # -- watch and garbage collection -------------------------------------------------

    async def watch(self, after: Revision) -> AsyncIterator[RevisionChanges]:
        """Relationship changes committed after `after`, one item per revision, in order.

        Written rows (CREATE or TOUCH) are reported as TOUCH and removed rows as DELETE,
        in key order within a revision; revisions that changed no relationship (a
        schema write) are skipped. Waits for new commits until the consumer stops;
        DatastoreUnavailableError once the datastore closes, StaleRevisionError if
        `after` was garbage-collected.
        """
        cursor = self._as_memory_revision(after)
        self._check_readable(cursor)
        while True:
            seen_head = self._head
            for revision, change in list(self._changes):
                if revision > cursor:
                    yield change
                    cursor = revision
            # Revisions without relationship changes produce no item; move past them.
            cursor = max(cursor, seen_head)
            async with self._commits:
                while self._head <= cursor and self._state is not DatastoreState.CLOSED:
                    await self._commits.wait()
            self._ensure_open()

    async def collect_garbage(self, *, now: datetime | None = None) -> int:
        """Drop rows deleted, or expired, before the GC window; return how many were dropped.

        A relationship whose expiration is older than ``now - gc_window`` is removed from
        every revision, silently: like SpiceDB, neither expiry nor its collection is a Watch
        event (Watch reports writes and deletes only).

        The newest revision committed before ``now - gc_window`` becomes the oldest
        readable one (older revisions raise StaleRevisionError); the head always stays
        readable. `now` defaults to the current time (tests pass it explicitly).
        """
        self._ensure_open()
        cutoff = (now or datetime.now(UTC)) - self._gc_window
        async with self._write_lock:
            horizon = max(
                (rev for rev, at in self._commit_times.items() if at <= cutoff),
                default=self._min_readable,
            )
            horizon = max(horizon, self._min_readable)
            dropped = 0
            for key in list(self._versions):
                rows = self._versions[key]
                kept = [
                    row
                    for row in rows
                    if (row.deleted is None or row.deleted > horizon)
                    # Expired longer than the GC window ago: it grants nothing at any "now"
                    # a reader could still reasonably use, so it goes (no Watch event).
                    and (row.relationship.expiration is None or row.relationship.expiration > cutoff)
                ]
                dropped += len(rows) - len(kept)
                if kept:
                    self._versions[key] = kept
                else:
                    self._drop_key(key)
            self._min_readable = horizon
            self._commit_times = {r: t for r, t in self._commit_times.items() if r >= horizon}
            current = self._schema_text_at(horizon)
            self._schemas = [(r, t) for r, t in self._schemas if r > horizon]
            if current is not None:
                self._schemas.insert(0, (horizon, current))
            self._changes = [(r, c) for r, c in self._changes if r > horizon]
            return dropped

    def _drop_key(self, key: _Key) -> None:
        del self._versions[key]
        rtype, rid, _, stype, sid, _ = key
        self._forward[rtype][rid].discard(key)
        self._reverse[stype][sid].discard(key)


class MemoryReader:
    """A reader of a MemoryDatastore at one revision (see `rebac.datastore.protocol.Reader`).

    Results are computed when iteration starts, so commits that land while a consumer
    is iterating cannot change what it sees.
    """

    def __init__(self, datastore: MemoryDatastore, revision: int) -> None:
        self._ds = datastore
        self._revision = revision

    @property
    def revision(self) -> MemoryRevision:
        """The snapshot this reader sees."""
        return MemoryRevision(self._revision)

    def _lookup(self, key: _Key) -> Relationship | None:
        return self._ds._visible(key, self._revision)  # noqa: SLF001 - reader and store are one unit

    def _candidates(self, flt: RelationshipFilter) -> Iterable[_Key]:
        return self._ds._candidate_keys(flt)  # noqa: SLF001 - reader and store are one unit

    async def read_schema_text(self) -> str | None:
        """The schema text in effect at this revision, or None if none was written."""
        self._ds._check_readable(self._revision)  # noqa: SLF001 - reader and store are one unit
        return self._ds._schema_text_at(self._revision)  # noqa: SLF001 - reader and store are one unit

    async def read_schema(self) -> CompiledSchema:
        """The compiled schema at this revision; SchemaMissingError if none was written.

        Compiled once per distinct text: repeated reads return the same object.
        """
        text = await self.read_schema_text()
        if text is None:
            raise SchemaMissingError("no schema has been written to the datastore")
        return self._ds._compile(text)  # noqa: SLF001 - reader and store are one unit

    def _matching(
        self, flt: RelationshipFilter, limit: int | None, after: Relationship | None
    ) -> list[Relationship]:
        self._ds._check_readable(self._revision)  # noqa: SLF001 - reader and store are one unit
        if limit is not None and limit < 0:
            raise BugError(f"negative query limit {limit}")
        after_key = after.key if after is not None else None
        keys = sorted(
            {k for k in self._candidates(flt) if after_key is None or k > after_key}
        )
        found: list[Relationship] = []
        for key in keys:
            if limit is not None and len(found) >= limit:
                break
            relationship = self._lookup(key)
            if relationship is not None and flt.matches(relationship):
                found.append(relationship)
        return found

    async def query_relationships(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the domain word
        *,
        limit: int | None = None,
        after: Relationship | None = None,
    ) -> AsyncIterator[Relationship]:
        """Live relationships matching `filter`, in key order, strictly after `after`."""
        for relationship in self._matching(filter, limit, after):
            yield relationship

    async def reverse_query_relationships(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the domain word
        *,
        limit: int | None = None,
        after: Relationship | None = None,
    ) -> AsyncIterator[Relationship]:
        """Like `query_relationships` for a filter with `subject` set; BugError otherwise."""
        if filter.subject is None:
            raise BugError("reverse_query_relationships needs a subject filter")
        for relationship in self._matching(filter, limit, after):
            yield relationship

    async def walk_relations(
        self,
        resource_type: str,
        resource_ids: Sequence[str],
        *,
        follow: Sequence[str],
        relations: Sequence[str],
        max_rows: int,
    ) -> list[Relationship] | None:
        """See `rebac.datastore.protocol.GraphReader.walk_relations` (reference semantics)."""
        return await walk_relations_by_queries(
            self, resource_type, resource_ids, follow=follow, relations=relations, max_rows=max_rows
        )

    async def subject_set_closure(
        self,
        resource_type: str,
        relation: str,
        subject_type: str,
        subject_id: str,
        *,
        max_rows: int,
    ) -> list[Relationship] | None:
        """See `rebac.datastore.protocol.GraphReader.subject_set_closure` (reference semantics)."""
        return await subject_set_closure_by_queries(
            self, resource_type, relation, subject_type, subject_id, max_rows=max_rows
        )

    async def walk_with_closure(
        self,
        resource_type: str,
        resource_ids: Sequence[str],
        *,
        follow: Sequence[str],
        relations: Sequence[str],
        max_rows: int,
        closure: tuple[str, str, str, str],
        max_closure_rows: int,
    ) -> tuple[list[Relationship] | None, list[Relationship] | None]:
        """See `rebac.datastore.graph.WalkClosureReader` (the two reference walks)."""
        walked = await self.walk_relations(
            resource_type, resource_ids, follow=follow, relations=relations, max_rows=max_rows
        )
        closed = await self.subject_set_closure(*closure, max_rows=max_closure_rows)
        return walked, closed

    async def search_paths(
        self,
        plan: PathPlan,
        items: Sequence[tuple[str, str]],
        *,
        max_steps: int,
        max_levels: int = DEFAULT_MAX_LEVELS,
        skip_closures: Sequence[bool] = (),
        roots: Sequence[tuple[str, str]] = (),
    ) -> list[PathOutcome]:
        """See `rebac.datastore.path_search.PathSearchReader` (reference semantics)."""
        return await search_paths_by_queries(
            self,
            plan,
            items,
            max_steps=max_steps,
            max_levels=max_levels,
            skip_closures=skip_closures,
            roots=roots,
        )

    async def subject_set_height(
        self,
        resource_type: str,
        relation: str,
        resource_ids: Sequence[str],
        *,
        max_height: int,
    ) -> int:
        """See `rebac.datastore.protocol.GraphReader.subject_set_height` (reference semantics)."""
        return await subject_set_height_by_queries(
            self, resource_type, relation, resource_ids, max_height=max_height
        )

class MemoryTransaction(MemoryReader):
    """A transaction of a MemoryDatastore: its start snapshot plus buffered writes.

    Writes go to `overlay` (key → new relationship, or None for deleted) and reach the
    store only at commit. Each write method is atomic on its own: when it raises, none
    of its updates are buffered. Using the transaction after its function returned is a
    BugError.
    """

    def __init__(self, datastore: MemoryDatastore, revision: int) -> None:
        super().__init__(datastore, revision)
        self.overlay: dict[_Key, Relationship | None] = {}
        self.schema_text: str | None = None
        self.finished = False

    def _guard(self) -> None:
        if self.finished:
            raise BugError("a transaction was used after its function returned")

    def _matching(
        self, flt: RelationshipFilter, limit: int | None, after: Relationship | None
    ) -> list[Relationship]:
        self._guard()
        return super()._matching(flt, limit, after)

    def _lookup(self, key: _Key) -> Relationship | None:
        if key in self.overlay:
            return self.overlay[key]
        return super()._lookup(key)

    def _candidates(self, flt: RelationshipFilter) -> Iterable[_Key]:
        return [*super()._candidates(flt), *self.overlay]

    async def read_schema_text(self) -> str | None:
        """The schema text this transaction wrote, else the one at its start revision."""
        self._guard()
        if self.schema_text is not None:
            return self.schema_text
        return await super().read_schema_text()

    async def write_relationships(self, updates: Sequence[RelationshipUpdate]) -> None:
        """Buffer CREATE/TOUCH/DELETE updates, in order.

        RelationshipExistsError if a CREATE names a live key (nothing is buffered then).
        """
        self._guard()
        staged: dict[_Key, Relationship | None] = {}
        for update in updates:
            relationship = update.relationship
            key = relationship.key
            current = staged[key] if key in staged else self._lookup(key)
            match update.operation:
                case UpdateOperation.CREATE:
                    if current is not None:
                        raise RelationshipExistsError(str(current))
                    staged[key] = relationship
                case UpdateOperation.TOUCH:
                    staged[key] = relationship
                case UpdateOperation.DELETE:
                    staged[key] = None
        self.overlay.update(staged)

    async def delete_relationships(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the domain word
        *,
        limit: int | None = None,
    ) -> int:
        """Delete live relationships matching `filter` in key order (at most `limit`)."""
        self._guard()
        doomed = self._matching(filter, limit, None)
        for relationship in doomed:
            self.overlay[relationship.key] = None
        return len(doomed)

    async def bulk_load(self, relationships: AsyncIterable[Relationship]) -> int:
        """Buffer many new relationships; RelationshipExistsError if any exists already."""
        self._guard()
        staged: dict[_Key, Relationship] = {}
        async for relationship in relationships:
            key = relationship.key
            if key in staged or self._lookup(key) is not None:
                raise RelationshipExistsError(str(relationship))
            staged[key] = relationship
        self.overlay.update(staged)
        return len(staged)

    async def write_schema(self, text: str) -> None:
        """Store `text` as the schema from the commit revision on."""
        self._guard()
        self.schema_text = text
