"""CoalescedHeadRevision and RevisionResolver: shared head reads that never return a stale revision."""

from __future__ import annotations

import asyncio

import pytest

from rebac.datastore.memory import MemoryDatastore
from rebac.errors import DatastoreUnavailableError
from rebac.revision import FullyConsistent, MinimizeLatency, Revision
from rebac.writes import write_schema
from rebac_server.consistency import CoalescedHeadRevision, RevisionResolver


@pytest.fixture
async def ds():
    async with MemoryDatastore() as store:
        await write_schema(store, "definition user {}")
        yield store


class _GatedHead:
    """A real head read that takes its revision first and then waits for `gate` (a slow round trip)."""

    def __init__(self, ds: MemoryDatastore) -> None:
        self.ds = ds
        self.gate = asyncio.Event()
        self.started = 0
        self.failure: Exception | None = None

    async def __call__(self) -> Revision:
        self.started += 1
        revision = await self.ds.head_revision()
        await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        return revision


async def _until(condition, *, limit: int = 100) -> None:
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


class TestCoalescedHeadRevision:
    async def test_a_lone_caller_reads_once_per_call(self, ds):
        """Without concurrency every call is one read of the current head."""
        head = CoalescedHeadRevision(ds.head_revision)
        first = await head()
        second_written = await write_schema(ds, "definition user {}\ndefinition team {}")
        assert await head() == second_written
        assert first != second_written
        assert (head.calls, head.reads) == (2, 2)

    async def test_concurrent_callers_share_reads(self, ds):
        """Twenty callers at once cost at most two reads and all get the head."""
        head = CoalescedHeadRevision(ds.head_revision)
        results = await asyncio.gather(*(head() for _ in range(20)))
        assert head.reads <= 2
        assert set(results) == {await ds.head_revision()}

    async def test_a_write_before_the_call_is_always_seen(self, ds):
        """A caller arriving while an older read is in flight waits for a newer read: no stale revision."""
        fetch = _GatedHead(ds)
        head = CoalescedHeadRevision(fetch)
        early = asyncio.create_task(head())
        await _until(lambda: fetch.started == 1)
        written = await write_schema(ds, "definition user {}\ndefinition team {}")
        late = asyncio.create_task(head())
        fetch.gate.set()
        assert await late == written
        assert await early != written
        assert fetch.started == 2

    async def test_failure_fails_its_callers_and_the_next_call_retries(self, ds):
        """A failed read raises in the callers it served; a later call reads again and succeeds."""
        fetch = _GatedHead(ds)
        fetch.failure = DatastoreUnavailableError("database is down")
        head = CoalescedHeadRevision(fetch)
        fetch.gate.set()
        with pytest.raises(DatastoreUnavailableError, match="database is down"):
            await head()
        fetch.failure = None
        assert await head() == await ds.head_revision()

    async def test_a_cancelled_caller_does_not_cancel_the_shared_read(self, ds):
        """Cancelling one waiter leaves the read running for the others."""
        fetch = _GatedHead(ds)
        head = CoalescedHeadRevision(fetch)
        quitter = asyncio.create_task(head())
        stayer = asyncio.create_task(head())
        await _until(lambda: fetch.started == 1)
        quitter.cancel()
        fetch.gate.set()
        assert await stayer == await ds.head_revision()
        with pytest.raises(asyncio.CancelledError):
            await quitter


class TestRevisionResolver:
    async def test_fully_consistent_reads_the_head_after_a_write(self, ds):
        """fully_consistent through the resolver returns the revision of the latest write."""
        resolver = RevisionResolver(ds)
        written = await write_schema(ds, "definition user {}\ndefinition team {}")
        assert await resolver.resolve(FullyConsistent()) == written

    async def test_minimize_latency_is_the_optimized_revision(self, ds):
        """minimize_latency through the resolver is the datastore's optimized revision."""
        assert await RevisionResolver(ds).resolve(MinimizeLatency()) == await ds.optimized_revision()
