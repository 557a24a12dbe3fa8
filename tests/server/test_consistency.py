"""resolve_revision: the one place a request's revision is chosen."""

from __future__ import annotations

import pytest

from rebac.datastore.memory import MemoryDatastore
from rebac.errors import InvalidRevisionError
from rebac.revision import AtExactSnapshot, AtLeastAsFresh, FullyConsistent, MinimizeLatency, encode_token
from rebac.writes import write_schema
from rebac_server.consistency import resolve_revision
from rebac_server.cursors import StreamCursor, decode_cursor, encode_cursor


@pytest.fixture
async def ds():
    async with MemoryDatastore() as store:
        await write_schema(store, "definition user {}")
        await write_schema(store, "definition user {}\ndefinition team {}")
        yield store


class TestResolveRevision:
    async def test_fully_consistent_is_head(self, ds):
        """fully_consistent reads the head revision."""
        assert await resolve_revision(FullyConsistent(), ds) == await ds.head_revision()

    async def test_minimize_latency_is_optimized(self, ds):
        """minimize_latency reads the optimized revision."""
        assert await resolve_revision(MinimizeLatency(), ds) == await ds.optimized_revision()

    async def test_exact_snapshot_is_the_token(self, ds):
        """at_exact_snapshot reads exactly the token's (older) revision."""
        head = await ds.head_revision()
        older = ds.revision_from_string(str(int(str(head)) - 1))
        assert await resolve_revision(AtExactSnapshot(encode_token(older)), ds) == older

    async def test_at_least_as_fresh_never_goes_back(self, ds):
        """at_least_as_fresh of the head token reads the head, never an older revision."""
        head = await ds.head_revision()
        resolved = await resolve_revision(AtLeastAsFresh(encode_token(head)), ds)
        assert resolved == head or resolved.greater_than(head)

    async def test_token_from_the_future_is_refused(self, ds):
        """A token naming a revision the datastore has not reached is InvalidRevisionError."""

        class Future:
            def __str__(self) -> str:
                return "999"

        with pytest.raises(InvalidRevisionError):
            await resolve_revision(AtLeastAsFresh(encode_token(Future())), ds)  # type: ignore[arg-type]

    async def test_garbage_token_is_refused(self, ds):
        """A malformed token is InvalidRevisionError, not a silent fallback."""
        with pytest.raises(InvalidRevisionError):
            await resolve_revision(AtExactSnapshot("garbage"), ds)


class TestCursors:
    def test_round_trip(self):
        """encode_cursor/decode_cursor round-trip."""
        cursor = StreamCursor("tok", "document:1#viewer@user:ann")
        assert decode_cursor(encode_cursor(cursor)) == cursor

    @pytest.mark.parametrize("bad", ["", "!!", "eyJ2IjoyfQ"])
    def test_malformed_names_the_field(self, bad):
        """A malformed cursor is InvalidRevisionError naming the field."""
        with pytest.raises(InvalidRevisionError) as info:
            decode_cursor(bad, field="optional_cursor.token")
        assert info.value.field == "optional_cursor.token"
