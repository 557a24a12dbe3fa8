"""PostgresDatastore: lifecycle, migrations, revisions, schema caching, failures, index plans."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from rebac.cli import main as cli_main
from rebac.datastore.filters import RelationshipFilter, SubjectFilter
from rebac.datastore.memory import MemoryRevision
from rebac.datastore.postgres import (
    DatastoreState,
    PostgresDatastore,
    PostgresOptions,
    PostgresRevision,
    available_migrations,
    migrate,
)
from rebac.datastore.postgres.reader import build_query
from rebac.datastore.protocol import Transaction
from rebac.errors import (
    DatastoreNotMigratedError,
    DatastoreUnavailableError,
    InvalidRevisionError,
)
from rebac.tuples import Relationship, RelationshipUpdate, UpdateOperation, rel
from tests.postgres_helpers import with_query

pytestmark = pytest.mark.postgres


SCHEMA = """
definition user {}
definition document {
    relation viewer: user
}
"""


async def write(
    ds: PostgresDatastore, *texts: str, op: UpdateOperation = UpdateOperation.TOUCH
) -> PostgresRevision:
    updates = [RelationshipUpdate(op, rel(t)) for t in texts]

    async def body(tx: Transaction) -> None:
        await tx.write_relationships(updates)

    return await ds.read_write_tx(body)


async def read_all(ds: PostgresDatastore, revision: PostgresRevision) -> list[str]:
    return [str(r) async for r in ds.snapshot_reader(revision).query_relationships(RelationshipFilter())]


class TestLifecycle:
    async def test_unmigrated_database_is_refused_with_advice(self, pg_dsn: str) -> None:
        """Opening an empty schema without migrate=True raises DatastoreNotMigratedError naming the fix."""
        with pytest.raises(DatastoreNotMigratedError, match="rebac migrate"):
            async with PostgresDatastore.connect(pg_dsn):
                pass

    async def test_newer_database_is_refused(self, pg_dsn: str) -> None:
        """A database migrated past what this rebac knows is refused, even with migrate=True."""
        await migrate(pg_dsn)
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute("INSERT INTO rebac_migration (version, name) VALUES (999, 'future')")
        finally:
            await conn.close()
        for flag in (False, True):
            with pytest.raises(DatastoreNotMigratedError, match="newer"):
                async with PostgresDatastore.connect(pg_dsn, migrate=flag):
                    pass

    async def test_migrate_is_idempotent(self, pg_dsn: str) -> None:
        """The first migrate applies every file in order; the second applies nothing."""
        applied = await migrate(pg_dsn)
        assert [m.version for m in applied] == [m.version for m in available_migrations()]
        assert await migrate(pg_dsn) == []

    def test_cli_migrate_prints_what_it_applied(
        self, pg_dsn: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`rebac migrate --dsn` prints applied migrations, then reports up to date on a rerun."""
        assert cli_main(["migrate", "--dsn", pg_dsn]) == 0
        assert "applied migration 0001_initial" in capsys.readouterr().out
        assert cli_main(["migrate", "--dsn", pg_dsn]) == 0
        assert "up to date" in capsys.readouterr().out

    def test_cli_migrate_unreachable_server_is_one_line_error(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unreachable DSN exits 3 with a one-line error, no traceback."""
        code = cli_main(["migrate", "--dsn", "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2"])
        err = capsys.readouterr().err
        assert code == 3
        assert err.startswith("rebac: error: PostgreSQL is unavailable")
        assert "Traceback" not in err

    async def test_unreachable_server_raises_unavailable(self) -> None:
        """Opening against a port with no server raises DatastoreUnavailableError."""
        with pytest.raises(DatastoreUnavailableError):
            async with PostgresDatastore.connect("postgresql://postgres@127.0.0.1:1/none"):
                pass

    async def test_states_and_double_open(self, pg_dsn: str) -> None:
        """NEW → OPEN → CLOSED; opening twice or after close is refused precisely."""
        ds = PostgresDatastore.connect(pg_dsn, migrate=True)
        assert ds.state is DatastoreState.NEW
        async with ds:
            assert ds.state is DatastoreState.OPEN
            with pytest.raises(DatastoreUnavailableError, match="open"):
                await ds.open()
        assert ds.state is DatastoreState.CLOSED
        with pytest.raises(DatastoreUnavailableError, match="closed"):
            await ds.open()


class TestRevisions:
    async def test_optimized_revision_is_shared_within_the_window(self, pg_dsn: str) -> None:
        """With a quantization window, the optimized revision stays put across a write."""
        async with PostgresDatastore.connect(pg_dsn, migrate=True, quantization=timedelta(hours=1)) as ds:
            first = await ds.optimized_revision()
            written = await write(ds, "document:1#viewer@user:ann")
            again = await ds.optimized_revision()
            assert again == first
            assert written.greater_than(again)
            assert await read_all(ds, again) == []

    async def test_future_revision_is_invalid(self, postgres_datastore: PostgresDatastore) -> None:
        """A revision that sees xids the server has not assigned yet is rejected by check_revision."""
        head = await postgres_datastore.head_revision()
        future = PostgresRevision.parse(f"{head.snapshot.xmax + 1000}:{head.snapshot.xmax + 1000}:")
        with pytest.raises(InvalidRevisionError, match="future"):
            await postgres_datastore.check_revision(future)

    async def test_snapshot_reader_rejects_foreign_revisions(
        self, postgres_datastore: PostgresDatastore
    ) -> None:
        """A revision of another datastore type is an InvalidRevisionError, not a wrong read."""
        with pytest.raises(InvalidRevisionError):
            postgres_datastore.snapshot_reader(MemoryRevision(1))


class TestSchemaStorage:
    async def test_schema_is_compiled_once_per_text(self, postgres_datastore: PostgresDatastore) -> None:
        """Many reads of one stored schema compile it once; a new text compiles once more."""
        ds = postgres_datastore

        async def put(text: str) -> PostgresRevision:
            async def body(tx: Transaction) -> None:
                await tx.write_schema(text)

            return await ds.read_write_tx(body)

        first = await put(SCHEMA)
        for _ in range(5):
            schema = await ds.snapshot_reader(await ds.head_revision()).read_schema()
        assert schema.definition("document") is not None
        assert ds.schema_cache.compilations == 1
        second = await put(SCHEMA + "\ndefinition folder {}\n")
        await ds.snapshot_reader(second).read_schema()
        await ds.snapshot_reader(first).read_schema()
        assert ds.schema_cache.compilations == 2
        assert await ds.snapshot_reader(first).read_schema_text() == SCHEMA


class TestFailures:
    async def test_terminated_backends_fail_cleanly_then_recover(self, pg_dsn: str) -> None:
        """Killing the pool's backends mid-transaction fails that request with Unavailable and writes
        nothing; the next requests succeed on fresh connections."""
        app = f"rebac_kill_{secrets.token_hex(4)}"
        dsn = with_query(pg_dsn, application_name=app)
        async with PostgresDatastore.connect(dsn, migrate=True, min_pool_size=2, max_pool_size=3) as ds:
            await write(ds, "document:1#viewer@user:ann")
            inside = asyncio.Event()

            async def slow(tx: Transaction) -> None:
                await tx.write_relationships(
                    [RelationshipUpdate(UpdateOperation.TOUCH, rel("document:2#viewer@user:bob"))]
                )
                inside.set()
                await asyncio.sleep(0.5)
                await tx.write_relationships(
                    [RelationshipUpdate(UpdateOperation.TOUCH, rel("document:3#viewer@user:bob"))]
                )

            task = asyncio.create_task(ds.read_write_tx(slow))
            await inside.wait()
            killer = await asyncpg.connect(pg_dsn)
            try:
                killed = await killer.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                    app,
                )
            finally:
                await killer.close()
            assert killed >= 1
            with pytest.raises(DatastoreUnavailableError):
                await task
            head = await ds.head_revision()
            assert await read_all(ds, head) == ["document:1#viewer@user:ann"]
            await write(ds, "document:4#viewer@user:cy")
            assert len(await read_all(ds, await ds.head_revision())) == 2


class TestIndexUse:
    @pytest.fixture(name="loaded")
    async def _loaded(self, postgres_datastore: PostgresDatastore) -> PostgresDatastore:
        async def rows() -> AsyncIterator[Relationship]:
            for i in range(20_000):
                yield rel(f"document:d{i}#{'viewer' if i % 2 else 'editor'}@user:u{i % 997}")

        async def body(tx: Transaction) -> None:
            await tx.bulk_load(rows())

        await postgres_datastore.read_write_tx(body)
        async with postgres_datastore.pool.acquire() as conn:
            await conn.execute("ANALYZE rebac_relationship")
        return postgres_datastore

    @pytest.mark.parametrize(
        ("flt", "index"),
        [
            (
                RelationshipFilter("document", ("d1", "d3", "d5"), "viewer"),
                "rebac_relationship_forward_idx|rebac_relationship_key_idx",
            ),
            (
                RelationshipFilter("document", None, "viewer", SubjectFilter("user", ("u3",))),
                "rebac_relationship_reverse_idx",
            ),
            (
                RelationshipFilter(subject=SubjectFilter("user", ("u3", "u4"), None)),
                "rebac_relationship_reverse_idx",
            ),
        ],
        ids=["forward-batched", "reverse-typed", "reverse-any-resource"],
    )
    async def test_hot_queries_use_an_index(
        self, loaded: PostgresDatastore, flt: RelationshipFilter, index: str
    ) -> None:
        """EXPLAIN of the batched forward and the reverse queries shows an index scan, no seq scan."""
        head = await loaded.head_revision()
        sql, args = build_query(flt, after=None, limit=1000, reverse=flt.subject is not None)
        async with loaded.pool.acquire() as conn:
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", str(head.snapshot), *args))
        assert "Seq Scan" not in plan, plan
        assert any(name in plan for name in index.split("|")), plan


class TestPlannerStatistics:
    async def _bulk(self, ds: PostgresDatastore, start: int, count: int) -> None:
        async def rows() -> AsyncIterator[Relationship]:
            for i in range(start, start + count):
                yield rel(f"document:d{i}#viewer@user:u{i}")

        async def body(tx: Transaction) -> None:
            await tx.bulk_load(rows())

        await ds.read_write_tx(body)

    async def _analyzed(self, ds: PostgresDatastore) -> bool:
        async with ds.pool.acquire() as conn:
            when = await conn.fetchval(
                "SELECT last_analyze FROM pg_stat_user_tables"
                " WHERE relname = 'rebac_relationship' AND schemaname = current_schema()"
            )
        return when is not None

    async def test_bulk_loads_past_the_threshold_refresh_statistics(self, pg_dsn: str) -> None:
        """Once bulk loads add `analyze_after_rows` rows in total, the table is ANALYZEd; not before."""
        async with PostgresDatastore(pg_dsn, PostgresOptions(migrate=True, analyze_after_rows=300)) as ds:
            await self._bulk(ds, 0, 200)
            assert not await self._analyzed(ds)
            await self._bulk(ds, 200, 200)
            assert await self._analyzed(ds)

    async def test_statements_get_generic_plans_unless_turned_off(self, pg_dsn: str) -> None:
        """Every pool connection plans a prepared statement once (the DSN's own settings kept)."""
        for generic, mode in ((True, "force_generic_plan"), (False, "auto")):
            options = PostgresOptions(migrate=True, generic_plans=generic, min_pool_size=2)
            async with PostgresDatastore(with_query(pg_dsn, application_name="rebac-plans"), options) as ds:
                for _ in range(2):
                    async with ds.pool.acquire() as conn:
                        assert await conn.fetchval("SHOW plan_cache_mode") == mode
                        assert await conn.fetchval("SHOW application_name") == "rebac-plans"

    async def test_a_released_connection_is_usable_after_a_failed_transaction(
        self, postgres_datastore: PostgresDatastore
    ) -> None:
        """With the no-op pool reset, a rolled-back transaction still leaves clean connections."""
        await postgres_datastore.read_write_tx(_write_schema)

        async def failing(tx: Transaction) -> None:
            await tx.write_relationships([RelationshipUpdate(UpdateOperation.TOUCH, rel("document:1#viewer@user:a"))])
            raise RuntimeError("boom")

        for _ in range(postgres_datastore.options.max_pool_size + 2):
            with pytest.raises(RuntimeError):
                await postgres_datastore.read_write_tx(failing)
        head = await write(postgres_datastore, "document:2#viewer@user:b")
        assert await read_all(postgres_datastore, head) == ["document:2#viewer@user:b"]


async def _write_schema(tx: Transaction) -> None:
    await tx.write_schema(SCHEMA)
