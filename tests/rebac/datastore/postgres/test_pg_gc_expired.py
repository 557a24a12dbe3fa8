"""PostgreSQL GC removes relationships that expired before the GC window (and nothing else)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rebac.datastore.filters import RelationshipFilter
from rebac.datastore.postgres import PostgresDatastore, collect_garbage
from rebac.tuples import RelationshipUpdate, UpdateOperation, rel
from rebac.writes import write_relationships, write_schema

pytestmark = pytest.mark.postgres

SCHEMA = "use expiration\ndefinition user {}\ndefinition doc { relation admin: user with expiration | user }"


class TestExpiredGc:
    async def test_expired_removed_live_kept(self, postgres_datastore: PostgresDatastore) -> None:
        """A relationship expired longer than the window ago is collected; live and plain ones stay."""
        ds = postgres_datastore
        await write_schema(ds, SCHEMA)
        texts = (
            "doc:1#admin@user:old[expiration:2001-01-01T00:00:00Z]",
            "doc:1#admin@user:soon[expiration:2999-01-01T00:00:00Z]",
            "doc:1#admin@user:bob",
        )
        await write_relationships(ds, [RelationshipUpdate(UpdateOperation.TOUCH, rel(t)) for t in texts])
        kept_by_window = await collect_garbage(ds, window=timedelta(days=365_000))
        assert kept_by_window.expired == 0
        result = await collect_garbage(ds, window=timedelta(days=1))
        assert result.expired == 1
        reader = ds.snapshot_reader(await ds.head_revision())
        left = sorted([str(r) async for r in reader.query_relationships(RelationshipFilter(resource_type="doc"))])
        assert left == [
            "doc:1#admin@user:bob",
            "doc:1#admin@user:soon[expiration:2999-01-01T00:00:00Z]",
        ]
