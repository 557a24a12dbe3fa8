"""Writes inside one read-write transaction: relationship updates, deletes, COPY, schema.

MVCC bookkeeping: a delete never removes a row, it sets ``deleted_xid`` to the writing
transaction's xid; an insert's ``created_xid`` defaults to it. A TOUCH is a delete of the
live row (if any) plus an insert, so readers at older revisions keep seeing the old
caveat/expiration. Garbage collection removes the dead versions later (gc.py).

The transaction runs at REPEATABLE READ: its reads see its start snapshot plus its own
writes, and an update of a row that a concurrent transaction changed fails with a
serialization error, which `read_write_tx` retries.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence

from rebac.datastore.filters import RelationshipFilter
from rebac.datastore.postgres._connection import AnyConnection
from rebac.datastore.postgres.errors import map_asyncpg_errors
from rebac.datastore.postgres.reader import PostgresReader, SchemaCache, build_query, schema_hash
from rebac.datastore.postgres.revisions import PostgresRevision
from rebac.errors import BugError
from rebac.tuples import Relationship, RelationshipUpdate, UpdateOperation

__all__ = ["PostgresTransaction"]

_LIVE = "deleted_xid = '9223372036854775807'"
_KEY_COLUMNS = "resource_type, resource_id, relation, subject_type, subject_id, subject_relation"
_ROW_COLUMNS = f"{_KEY_COLUMNS}, caveat_name, caveat_context, expiration"

# Mark live rows with the given keys deleted (DELETE, and the first half of TOUCH).
_DELETE_KEYS_SQL = f"""
UPDATE rebac_relationship SET deleted_xid = pg_current_xact_id()
WHERE {_LIVE} AND ({_KEY_COLUMNS}) IN (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]))
"""  # noqa: S608 - built from constants only

# CREATE: a live duplicate key raises unique_violation → RelationshipExistsError.
_INSERT_SQL = f"""
INSERT INTO rebac_relationship ({_ROW_COLUMNS})
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::jsonb[], $9::timestamptz[])
"""  # noqa: S608 - built from constants only

# TOUCH inserts after deleting the visible live row. A conflict left over can only be a row
# a concurrent transaction inserted (invisible to our snapshot): at REPEATABLE READ,
# ON CONFLICT DO NOTHING then raises a serialization failure, and the retry sees the row.
_TOUCH_INSERT_SQL = _INSERT_SQL + (f" ON CONFLICT ({_KEY_COLUMNS}) WHERE {_LIVE} DO NOTHING")


def _columns(relationships: Sequence[Relationship]) -> list[list[object]]:
    """Column arrays (for unnest) of the full rows."""
    cols: list[list[object]] = [[] for _ in range(9)]
    for rel in relationships:
        values = (
            *rel.key,
            rel.caveat.name if rel.caveat else None,
            rel.caveat.context_json if rel.caveat else None,
            rel.expiration,
        )
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    return cols


def _key_columns(relationships: Sequence[Relationship]) -> list[list[object]]:
    return _columns(relationships)[:6]


class PostgresTransaction(PostgresReader):
    """A Transaction bound to one connection inside an open database transaction.

    Reads see the start snapshot plus this transaction's own writes (its revision marks its
    own xid complete). Owned by `read_write_tx`; not safe to use after `fn` returns.
    """

    def __init__(self, conn: AnyConnection, revision: PostgresRevision, schemas: SchemaCache) -> None:
        super().__init__(conn, revision, schemas)
        self._conn = conn
        self.bulk_loaded = 0
        """Rows this transaction COPYed in (read by the datastore after commit)."""

    async def write_relationships(self, updates: Sequence[RelationshipUpdate]) -> None:
        """Apply CREATE/TOUCH/DELETE updates atomically with the rest of the transaction.

        RelationshipExistsError for a CREATE of a live key. A batch naming one key several
        times is applied update by update, in order; otherwise in three statements.
        """
        keys = [u.relationship.key for u in updates]
        if len(set(keys)) != len(keys):
            for update in updates:
                await self._apply((update,))
            return
        await self._apply(updates)

    async def _apply(self, updates: Sequence[RelationshipUpdate]) -> None:
        to_delete = [u.relationship for u in updates if u.operation is not UpdateOperation.CREATE]
        creates = [u.relationship for u in updates if u.operation is UpdateOperation.CREATE]
        touches = [u.relationship for u in updates if u.operation is UpdateOperation.TOUCH]
        with map_asyncpg_errors():
            if to_delete:
                await self._conn.execute(_DELETE_KEYS_SQL, *_key_columns(to_delete))
            if creates:
                await self._conn.execute(_INSERT_SQL, *_columns(creates))
            if touches:
                await self._conn.execute(_TOUCH_INSERT_SQL, *_columns(touches))

    async def delete_relationships(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the domain word
        *,
        limit: int | None = None,
    ) -> int:
        """Delete live relationships matching `filter` (at most `limit`, in key order).

        Returns how many were deleted.
        """
        if limit is not None and limit < 0:
            raise BugError(f"negative limit {limit}")
        select, args = build_query(
            filter, after=None, limit=limit if limit is not None else 2**62, reverse=False
        )
        # Reuse the reader's filter SQL to pick the rows, then mark them deleted by key.
        sql = (
            f"UPDATE rebac_relationship SET deleted_xid = pg_current_xact_id() "  # noqa: S608 - constants; values are parameters
            f"WHERE {_LIVE} AND ({_KEY_COLUMNS}) IN (SELECT {_KEY_COLUMNS} FROM ({select}) AS chosen)"
        )
        with map_asyncpg_errors():
            status = await self._conn.execute(sql, str(self.revision.snapshot), *args)
        return int(status.split()[-1])

    async def bulk_load(self, relationships: AsyncIterable[Relationship]) -> int:
        """COPY `relationships` into the table inside this transaction; return how many.

        RelationshipExistsError if any key is already live (or repeats); the whole
        transaction then rolls back, so nothing of the batch is written.
        """
        count = 0

        async def records() -> AsyncIterator[tuple[object, ...]]:
            nonlocal count
            async for rel in relationships:
                count += 1
                yield (
                    *rel.key,
                    rel.caveat.name if rel.caveat else None,
                    rel.caveat.context_json if rel.caveat else None,
                    rel.expiration,
                )

        with map_asyncpg_errors():
            await self._conn.copy_records_to_table(
                "rebac_relationship",
                records=records(),
                columns=[*_KEY_COLUMNS.split(", "), "caveat_name", "caveat_context", "expiration"],
            )
        self.bulk_loaded += count
        return count

    async def write_schema(self, text: str) -> None:
        """Store `text` as the schema from this transaction's revision on."""
        with map_asyncpg_errors():
            await self._conn.execute(
                f"UPDATE rebac_schema SET deleted_xid = pg_current_xact_id() WHERE {_LIVE}"  # noqa: S608 - constants
            )
            await self._conn.execute(
                "INSERT INTO rebac_schema (text, hash) VALUES ($1, $2)", text, schema_hash(text)
            )
