"""Watch: the relationship changes of each transaction committed after a revision.

Implemented by polling (every `PostgresOptions.watch_interval` seconds): take the head
snapshot, list the transactions it sees that the last one did not, and read the rows each
created or deleted. Transactions still running at a poll are picked up by a later one, so
nothing is skipped. Transactions are emitted in xid order, which for concurrent writers can
differ from commit order; each carries its own revision.

A created row is reported as TOUCH (its full relationship); a deleted row as DELETE; a key
deleted and re-created by one transaction (a TOUCH) as one TOUCH.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import asyncpg

from rebac.datastore.postgres.errors import map_asyncpg_errors
from rebac.datastore.postgres.reader import relationship_from_row
from rebac.datastore.postgres.revisions import PgSnapshot, PostgresRevision
from rebac.datastore.protocol import RevisionChanges
from rebac.tuples import RelationshipUpdate, UpdateOperation

if TYPE_CHECKING:
    from rebac.datastore.postgres.datastore import PostgresDatastore

__all__ = ["watch_changes"]

_NEW_TRANSACTIONS_SQL = """
SELECT xid::text, snapshot::text FROM rebac_transaction
WHERE xid >= $1::text::xid8
  AND pg_visible_in_snapshot(xid, $2::text::pg_snapshot)
  AND NOT pg_visible_in_snapshot(xid, $3::text::pg_snapshot)
ORDER BY xid
"""
_CHANGED_ROWS_SQL = """
SELECT resource_type, resource_id, relation, subject_type, subject_id, subject_relation,
       caveat_name, caveat_context::text, expiration, created_xid::text, deleted_xid::text
FROM rebac_relationship
WHERE created_xid = ANY($1::text[]::xid8[]) OR deleted_xid = ANY($1::text[]::xid8[])
ORDER BY resource_type, resource_id, relation, subject_type, subject_id, subject_relation
"""


async def watch_changes(
    datastore: PostgresDatastore, after: PostgresRevision
) -> AsyncIterator[RevisionChanges]:
    """Yield one RevisionChanges per transaction committed after `after`, forever.

    StaleRevisionError / InvalidRevisionError up front if `after` cannot be read;
    DatastoreUnavailableError if the database goes away (the consumer may resume from the
    last revision it received). Transactions that changed no relationship (schema writes)
    are yielded with no updates.
    """
    await datastore.check_revision(after)
    last = after.snapshot
    while True:
        head = (await datastore.head_revision()).snapshot
        with map_asyncpg_errors():
            transactions = await datastore.pool.fetch(
                _NEW_TRANSACTIONS_SQL, str(last.xmin), str(head), str(last)
            )
            rows = (
                await datastore.pool.fetch(_CHANGED_ROWS_SQL, [t[0] for t in transactions])
                if transactions
                else []
            )
        for xid_text, snapshot_text in transactions:
            xid = int(xid_text)
            revision = PostgresRevision(PgSnapshot.parse(snapshot_text).mark_complete(xid), xid)
            yield RevisionChanges(revision, _updates_of(xid_text, rows))
        last = head
        await asyncio.sleep(datastore.options.watch_interval)


def _updates_of(xid: str, rows: list[asyncpg.Record]) -> tuple[RelationshipUpdate, ...]:
    touched: dict[tuple[str, ...], RelationshipUpdate] = {}
    deleted: dict[tuple[str, ...], RelationshipUpdate] = {}
    for row in rows:
        values = tuple(row.values())
        created_xid, deleted_xid = values[9], values[10]
        if created_xid == xid and deleted_xid == xid:
            continue  # created and removed inside the transaction: no visible change
        rel = relationship_from_row(values[:9])
        if created_xid == xid:
            touched[rel.key] = RelationshipUpdate(UpdateOperation.TOUCH, rel)
        elif deleted_xid == xid:
            deleted[rel.key] = RelationshipUpdate(UpdateOperation.DELETE, rel)
    merged = {**deleted, **touched}
    return tuple(merged[key] for key in sorted(merged))
