"""Writes on Postgres: atomicity, conflicts, TOUCH/DELETE, COPY, delete by filter, concurrency."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from rebac.datastore.filters import RelationshipFilter, SubjectFilter
from rebac.datastore.postgres import PostgresDatastore
from rebac.datastore.protocol import Transaction
from rebac.errors import RelationshipExistsError
from rebac.revision import decode_token, encode_token
from rebac.tuples import Relationship, RelationshipUpdate, UpdateOperation, rel

pytestmark = pytest.mark.postgres

SCHEMA = """
definition user {}
definition document {
    relation viewer: user
}
"""


async def write(ds: PostgresDatastore, *texts: str, op: UpdateOperation = UpdateOperation.TOUCH):  # type: ignore[no-untyped-def]
    updates = [RelationshipUpdate(op, rel(t)) for t in texts]

    async def body(tx: Transaction) -> None:
        await tx.write_relationships(updates)

    return await ds.read_write_tx(body)


async def read_all(ds: PostgresDatastore, revision: object = None) -> list[str]:
    rev = revision if revision is not None else await ds.head_revision()
    return [str(r) async for r in ds.snapshot_reader(rev).query_relationships(RelationshipFilter())]  # type: ignore[arg-type]


async def aiter_of(items: list[Relationship]) -> AsyncIterator[Relationship]:
    for item in items:
        yield item


class TestAtomicity:
    async def test_raise_in_body_writes_nothing(self, postgres_datastore: PostgresDatastore) -> None:
        """A body that raises after writing relationships and a schema leaves neither behind."""
        ds = postgres_datastore
        await write(ds, "document:1#viewer@user:ann")

        async def body(tx: Transaction) -> None:
            await tx.write_relationships(
                [RelationshipUpdate(UpdateOperation.TOUCH, rel("document:2#viewer@user:bob"))]
            )
            await tx.write_relationships(
                [RelationshipUpdate(UpdateOperation.DELETE, rel("document:1#viewer@user:ann"))]
            )
            await tx.write_schema(SCHEMA)
            raise LookupError("boom")

        with pytest.raises(LookupError):
            await ds.read_write_tx(body)
        head = await ds.head_revision()
        assert await read_all(ds, head) == ["document:1#viewer@user:ann"]
        assert await ds.snapshot_reader(head).read_schema_text() is None

    async def test_failed_create_in_a_batch_writes_nothing(
        self, postgres_datastore: PostgresDatastore
    ) -> None:
        """A batch with one conflicting CREATE fails whole, naming the existing key."""
        ds = postgres_datastore
        await write(ds, "document:1#viewer@user:ann")
        with pytest.raises(RelationshipExistsError) as info:
            await write(
                ds, "document:2#viewer@user:bob", "document:1#viewer@user:ann", op=UpdateOperation.CREATE
            )
        assert info.value.relationship == "document:1#viewer@user:ann"
        assert await read_all(ds) == ["document:1#viewer@user:ann"]

    async def test_create_conflict_names_subject_relation(
        self, postgres_datastore: PostgresDatastore
    ) -> None:
        """The error for a duplicate subject-set key prints it in canonical text."""
        ds = postgres_datastore
        await write(ds, "document:1#viewer@group:eng#member")
        with pytest.raises(RelationshipExistsError, match=r"document:1#viewer@group:eng#member"):
            await write(ds, "document:1#viewer@group:eng#member", op=UpdateOperation.CREATE)

    async def test_same_key_twice_in_a_batch_applies_in_order(
        self, postgres_datastore: PostgresDatastore
    ) -> None:
        """DELETE then CREATE of one key in one batch leaves it; CREATE then DELETE removes it."""
        ds = postgres_datastore
        await write(ds, "document:1#viewer@user:ann")

        async def body(tx: Transaction) -> None:
            await tx.write_relationships(
                [
                    RelationshipUpdate(UpdateOperation.DELETE, rel("document:1#viewer@user:ann")),
                    RelationshipUpdate(
                        UpdateOperation.CREATE,
                        rel("document:1#viewer@user:ann[expiration:2031-01-01T00:00:00Z]"),
                    ),
                    RelationshipUpdate(UpdateOperation.CREATE, rel("document:2#viewer@user:ann")),
                    RelationshipUpdate(UpdateOperation.DELETE, rel("document:2#viewer@user:ann")),
                ]
            )

        await ds.read_write_tx(body)
        assert await read_all(ds) == ["document:1#viewer@user:ann[expiration:2031-01-01T00:00:00Z]"]


class TestBulkLoad:
    async def test_copy_loads_and_reports_count(self, postgres_datastore: PostgresDatastore) -> None:
        """bulk_load streams through COPY and returns how many rows it wrote."""
        ds = postgres_datastore
        rels = [rel(f"document:{i}#viewer@user:u{i % 7}") for i in range(2500)]
        counts: list[int] = []

        async def body(tx: Transaction) -> None:
            counts.append(await tx.bulk_load(aiter_of(rels)))

        revision = await ds.read_write_tx(body)
        assert counts == [2500]
        assert len(await read_all(ds, revision)) == 2500

    async def test_copy_with_a_duplicate_writes_nothing(self, postgres_datastore: PostgresDatastore) -> None:
        """A COPY batch containing an existing key fails with RelationshipExistsError, all-or-nothing."""
        ds = postgres_datastore
        await write(ds, "document:5#viewer@user:ann")
        rels = [rel(f"document:{i}#viewer@user:ann") for i in range(10)]

        async def body(tx: Transaction) -> None:
            await tx.bulk_load(aiter_of(rels))

        with pytest.raises(RelationshipExistsError, match="document:5#viewer@user:ann"):
            await ds.read_write_tx(body)
        assert await read_all(ds) == ["document:5#viewer@user:ann"]


class TestDeleteByFilter:
    async def test_limit_deletes_the_first_keys_only(self, postgres_datastore: PostgresDatastore) -> None:
        """delete_relationships with a limit removes that many, in key order, and reports it."""
        ds = postgres_datastore
        await write(ds, *(f"document:{i}#viewer@user:ann" for i in range(5)), "document:9#viewer@user:bob")
        deleted: list[int] = []

        async def body(tx: Transaction) -> None:
            flt = RelationshipFilter(resource_type="document", subject=SubjectFilter("user", ("ann",)))
            deleted.append(await tx.delete_relationships(flt, limit=2))

        await ds.read_write_tx(body)
        assert deleted == [2]
        assert await read_all(ds) == [
            "document:2#viewer@user:ann",
            "document:3#viewer@user:ann",
            "document:4#viewer@user:ann",
            "document:9#viewer@user:bob",
        ]


class TestConcurrency:
    async def test_concurrent_touches_of_one_key_all_commit(
        self, postgres_datastore: PostgresDatastore
    ) -> None:
        """Many tasks touching the same key serialize through retries; one live row remains."""
        ds = postgres_datastore
        await asyncio.gather(
            *(
                write(ds, f"document:1#viewer@user:ann[expiration:20{30 + i}-01-01T00:00:00Z]")
                for i in range(8)
            )
        )
        rows = await read_all(ds)
        assert len(rows) == 1
        assert rows[0].startswith("document:1#viewer@user:ann[expiration:20")

    async def test_readers_never_see_part_of_a_transaction(
        self, postgres_datastore: PostgresDatastore, pg_dsn: str
    ) -> None:
        """With writer tasks and a second writer process, every snapshot holds whole batches only."""
        ds = postgres_datastore
        batch = 5
        script = textwrap.dedent(
            f"""
            import asyncio
            from rebac.datastore.postgres import PostgresDatastore
            from rebac.tuples import RelationshipUpdate, UpdateOperation, rel
            async def main():
                async with PostgresDatastore.connect({pg_dsn!r}, max_pool_size=2) as ds:
                    for i in range(15):
                        ups = [RelationshipUpdate(UpdateOperation.CREATE, rel(f"document:p{{i}}#viewer@user:u{{k}}")) for k in range({batch})]
                        async def body(tx, ups=ups):
                            await tx.write_relationships(ups)
                        await ds.read_write_tx(body)
            asyncio.run(main())
            """
        )
        process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)  # noqa: ASYNC220 - must run alongside the writer tasks

        async def writer(n: int) -> None:
            for i in range(10):
                await write(
                    ds,
                    *(f"document:t{n}x{i}#viewer@user:u{k}" for k in range(batch)),
                    op=UpdateOperation.CREATE,
                )

        violations: list[str] = []
        done = asyncio.Event()

        async def reader() -> int:
            snapshots = 0
            while not done.is_set() or snapshots < 3:
                counts = Counter(row.split("#")[0] for row in await read_all(ds))
                violations.extend(f"{k}: {v}" for k, v in counts.items() if v != batch)
                snapshots += 1
            return snapshots

        reading = asyncio.create_task(reader())
        await asyncio.gather(*(writer(n) for n in range(6)))
        _, stderr = await asyncio.to_thread(process.communicate, None, 60)
        done.set()
        assert await reading >= 3
        assert process.returncode == 0, stderr.decode()
        assert violations == []
        assert len(await read_all(ds)) == (6 * 10 + 15) * batch


class TestNewEnemy:
    async def test_revoke_token_is_honoured_by_another_connection(
        self, postgres_datastore: PostgresDatastore, pg_dsn: str
    ) -> None:
        """A read at the revoke's token on another pool no longer sees the revoked row."""
        ds = postgres_datastore
        granted = await write(ds, "document:1#viewer@user:ann")
        revoked = await write(ds, "document:1#viewer@user:ann", op=UpdateOperation.DELETE)
        token = encode_token(revoked)
        async with PostgresDatastore.connect(pg_dsn, max_pool_size=2) as other:
            at_token = other.revision_from_string(decode_token(token))
            await other.check_revision(at_token)
            assert await read_all(other, at_token) == []
            assert await read_all(other, other.revision_from_string(str(granted))) == [
                "document:1#viewer@user:ann"
            ]
            head = await other.head_revision()
            assert head.greater_than(at_token) or head == at_token
            assert await read_all(other, head) == []
