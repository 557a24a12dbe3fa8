"""The conformance suite on MemoryDatastore, plus memory-only behaviour (GC, lifecycle)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebac.datastore.filters import RelationshipFilter
from rebac.datastore.memory import DatastoreState, MemoryDatastore, MemoryRevision
from rebac.datastore.protocol import Datastore, Transaction
from rebac.datastore.readonly import ReadOnlyDatastore
from rebac.errors import (
    BugError,
    DatastoreUnavailableError,
    InvalidRevisionError,
    ReadOnlyError,
    RelationshipExistsError,
    StaleRevisionError,
)
from rebac.revision import Revision
from rebac.tuples import RelationshipUpdate, UpdateOperation, rel
from tests.rebac.datastore.conformance import Check, at, check_id, delete, select_checks, write


@pytest.fixture(name="ds")
async def _ds() -> AsyncIterator[MemoryDatastore]:
    ds = MemoryDatastore()
    yield ds
    await ds.aclose()


class TestConformance:
    @pytest.mark.parametrize("check", select_checks(), ids=check_id)
    async def test_conformance(self, check: Check, ds: MemoryDatastore) -> None:
        """The memory datastore passes every conformance check, with no exclusions."""
        await check(ds)

    def test_memory_datastore_satisfies_the_protocol(self) -> None:
        """MemoryDatastore is statically a Datastore (mypy checks this assignment)."""
        ds: Datastore = MemoryDatastore()
        assert ds is not None


class TestMemoryRevision:
    def test_orders_by_value(self) -> None:
        """Revisions compare by their integer and print as it."""
        assert MemoryRevision(3).greater_than(MemoryRevision(2))
        assert not MemoryRevision(2).greater_than(MemoryRevision(2))
        assert str(MemoryRevision(12)) == "12"

    def test_foreign_revision_cannot_be_compared(self) -> None:
        """Comparing with a revision of another datastore kind is an InvalidRevisionError."""

        class Other:
            def greater_than(self, other: object) -> bool:
                return False

        with pytest.raises(InvalidRevisionError, match="memory revision"):
            MemoryRevision(1).greater_than(Other())

    async def test_future_and_foreign_revisions_are_rejected(self, ds: MemoryDatastore) -> None:
        """A revision beyond the head, or not from memory, is refused everywhere."""
        await write(ds, "document:1#viewer@user:ann")
        with pytest.raises(InvalidRevisionError, match="future"):
            ds.revision_from_string("2")
        with pytest.raises(InvalidRevisionError, match="future"):
            await ds.check_revision(MemoryRevision(5))
        with pytest.raises(InvalidRevisionError, match="future"):
            ds.snapshot_reader(MemoryRevision(5))
        with pytest.raises(InvalidRevisionError, match="memory datastore"):
            ds.snapshot_reader("1")  # type: ignore[arg-type]

    def test_non_canonical_numbers_are_malformed(self, ds: MemoryDatastore) -> None:
        """Leading zeros, signs and non-ASCII digits are not revision strings."""
        for text in ["01", "+1", "\u0661"]:
            with pytest.raises(InvalidRevisionError, match="malformed"):
                ds.revision_from_string(text)


class TestSchemaCache:
    async def test_repeated_reads_return_the_same_compiled_schema(self, ds: MemoryDatastore) -> None:
        """Reading one schema text twice compiles it once and returns the same object."""

        async def body(tx: Transaction) -> None:
            await tx.write_schema("definition user {}")

        first = await ds.read_write_tx(body)
        second = await write(ds, "user:a#self@user:b")
        assert await ds.snapshot_reader(first).read_schema() is await ds.snapshot_reader(second).read_schema()


class TestGarbageCollection:
    async def test_collects_rows_deleted_before_the_window(self) -> None:
        """GC drops rows deleted before the window and makes older revisions stale."""
        ds = MemoryDatastore(gc_window=timedelta(hours=1))
        created = await write(ds, "document:1#viewer@user:ann", "document:2#viewer@user:ann")
        deleted = await delete(ds, "document:1#viewer@user:ann")
        dropped = await ds.collect_garbage(now=datetime.now(UTC) + timedelta(hours=2))
        assert dropped == 1
        with pytest.raises(StaleRevisionError, match="garbage-collected"):
            await ds.check_revision(created)
        with pytest.raises(StaleRevisionError):
            await at(ds, created)
        await ds.check_revision(deleted)
        assert await at(ds, deleted) == ["document:2#viewer@user:ann"]

    async def test_keeps_everything_inside_the_window(self, ds: MemoryDatastore) -> None:
        """Within the window nothing is dropped and old revisions stay readable."""
        created = await write(ds, "document:1#viewer@user:ann")
        await delete(ds, "document:1#viewer@user:ann")
        assert await ds.collect_garbage() == 0
        assert await at(ds, created) == ["document:1#viewer@user:ann"]

    async def test_schema_in_effect_survives_collection(self) -> None:
        """The schema written before the horizon stays readable at the horizon."""
        ds = MemoryDatastore(gc_window=timedelta(0))

        async def body(tx: Transaction) -> None:
            await tx.write_schema("definition user {}")

        await ds.read_write_tx(body)
        head = await write(ds, "document:1#viewer@user:ann")
        await ds.collect_garbage(now=datetime.now(UTC) + timedelta(seconds=1))
        assert await ds.snapshot_reader(head).read_schema_text() == "definition user {}"

    async def test_watch_from_a_collected_revision_is_stale(self) -> None:
        """Watching from before the GC horizon raises StaleRevisionError."""
        ds = MemoryDatastore(gc_window=timedelta(0))
        first = await write(ds, "document:1#viewer@user:ann")
        await write(ds, "document:2#viewer@user:ann")
        await ds.collect_garbage(now=datetime.now(UTC) + timedelta(seconds=1))
        with pytest.raises(StaleRevisionError):
            await anext(ds.watch(first))


class TestLifecycle:
    async def test_states(self) -> None:
        """A datastore is NEW, OPEN on `async with`, and CLOSED after it."""
        ds = MemoryDatastore()
        assert ds.state is DatastoreState.NEW
        async with ds as opened:
            assert opened.state is DatastoreState.OPEN
            with pytest.raises(BugError, match="twice"):
                await ds.__aenter__()
        assert ds.state.name == "CLOSED"
        with pytest.raises(DatastoreUnavailableError):
            await ds.__aenter__()

    async def test_close_ends_running_watch(self, ds: MemoryDatastore) -> None:
        """Closing the datastore ends a waiting watch with DatastoreUnavailableError."""
        stream = ds.watch(await ds.head_revision())

        async def next_change() -> object:
            return await anext(stream)

        waiter = asyncio.create_task(next_change())
        await asyncio.sleep(0.01)
        await ds.aclose()
        with pytest.raises(DatastoreUnavailableError):
            await asyncio.wait_for(waiter, timeout=5)

    async def test_leaked_transaction_is_a_bug(self, ds: MemoryDatastore) -> None:
        """Using a transaction after its function returned raises BugError."""
        leaked: list[Transaction] = []

        async def body(tx: Transaction) -> None:
            leaked.append(tx)

        await ds.read_write_tx(body)
        with pytest.raises(BugError, match="after its function returned"):
            await leaked[0].write_relationships([])
        with pytest.raises(BugError):
            [r async for r in leaked[0].query_relationships(RelationshipFilter())]

    async def test_writers_are_serialized(self, ds: MemoryDatastore) -> None:
        """Concurrent transactions run one at a time and each gets its own revision."""
        active = 0
        overlap = False

        async def body(tx: Transaction) -> None:
            nonlocal active, overlap
            active += 1
            overlap = overlap or active > 1
            await asyncio.sleep(0)
            active -= 1

        revisions = await asyncio.gather(*(ds.read_write_tx(body) for _ in range(10)))
        assert not overlap
        assert sorted(r.value for r in revisions) == list(range(1, 11))


class TestReadOnlyDatastore:
    async def test_refuses_writes_and_passes_reads(self, ds: MemoryDatastore) -> None:
        """The proxy raises ReadOnlyError without running the function, and reads go through."""
        revision = await write(ds, "document:1#viewer@user:ann")
        proxy = ReadOnlyDatastore(ds)
        ran = False

        async def body(tx: Transaction) -> None:
            nonlocal ran
            ran = True

        with pytest.raises(ReadOnlyError, match="read-only"):
            await proxy.read_write_tx(body)
        assert not ran
        assert await proxy.head_revision() == revision
        assert await proxy.optimized_revision() == revision
        await proxy.check_revision(revision)
        assert proxy.revision_from_string(str(revision)) == revision
        assert await at(proxy, revision) == ["document:1#viewer@user:ann"]
        stream = proxy.watch(await ds.head_revision())
        changed = await write(ds, "document:2#viewer@user:ann")
        change = await asyncio.wait_for(anext(stream), timeout=5)
        assert change.revision == changed
        await proxy.aclose()
        assert ds.state is DatastoreState.CLOSED

    def test_proxy_satisfies_the_protocol(self) -> None:
        """ReadOnlyDatastore is statically a Datastore (mypy checks this assignment)."""
        ds: Datastore = ReadOnlyDatastore(MemoryDatastore())
        assert ds is not None


class TestSelectChecks:
    def test_exclusions_need_known_names_and_reasons(self) -> None:
        """Excluding needs a known category or check and a reason; excluded checks disappear."""
        everything = select_checks()
        without_watch = select_checks({"watch": "no change feed"})
        assert len(without_watch) == len(everything) - 1
        without_one = select_checks({"check_bulk_load": "no COPY"})
        assert [check_id(c) for c in everything if c not in without_one] == ["bulk_load"]
        with pytest.raises(ValueError, match="unknown"):
            select_checks({"telepathy": "not a thing"})
        with pytest.raises(ValueError, match="reason"):
            select_checks({"watch": " "})


class TestMemoryReader:
    async def test_negative_limit_is_a_bug(self, ds: MemoryDatastore) -> None:
        """A negative limit is a programming error, not an empty result."""
        reader = ds.snapshot_reader(await ds.head_revision())
        with pytest.raises(BugError, match="negative"):
            [r async for r in reader.query_relationships(RelationshipFilter(), limit=-1)]


_KEYS = [f"document:{d}#viewer@user:{u}" for d in "12" for u in ("ann", "bob", "*")]
_OPS = st.lists(
    st.lists(st.tuples(st.sampled_from(list(UpdateOperation)), st.sampled_from(_KEYS)), max_size=4),
    max_size=8,
)


class TestAgainstModel:
    @settings(max_examples=60, deadline=None)
    @given(_OPS)
    def test_every_revision_matches_a_naive_model(self, batches: list[list[tuple[UpdateOperation, str]]]) -> None:
        """Random write batches: each revision's snapshot equals a dict-of-sets model, CREATE conflicts included."""
        asyncio.run(self._run(batches))

    @staticmethod
    async def _run(batches: list[list[tuple[UpdateOperation, str]]]) -> None:
        ds = MemoryDatastore()
        model: set[str] = set()
        snapshots: list[tuple[Revision, set[str]]] = [(await ds.head_revision(), set())]
        for batch in batches:
            staged = set(model)
            conflict = False
            for op, text in batch:
                if op is UpdateOperation.CREATE and text in staged:
                    conflict = True
                    break
                if op is UpdateOperation.DELETE:
                    staged.discard(text)
                else:
                    staged.add(text)
            updates = [RelationshipUpdate(op, rel(t)) for op, t in batch]

            async def body(tx: Transaction, updates: list[RelationshipUpdate] = updates) -> None:
                await tx.write_relationships(updates)

            try:
                revision = await ds.read_write_tx(body)
            except RelationshipExistsError:
                assert conflict
                continue
            assert not conflict
            model = staged
            snapshots.append((revision, set(model)))
        for snapshot, expected in snapshots:
            assert set(await at(ds, snapshot)) == expected
        await ds.aclose()
