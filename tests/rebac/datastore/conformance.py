"""The datastore conformance suite: plain async checks that every Datastore must pass.

Each check takes a fresh, empty, open datastore and may close it. Run them with::

    @pytest.mark.parametrize("check", select_checks(), ids=check_id)
    async def test_conformance(check, datastore):
        await check(datastore)

A datastore that cannot support a category (or one check) excludes it by name with a
reason: ``select_checks(exclude={"watch": "no change feed yet"})``; an unknown name or an
empty reason is an error, so exclusions stay deliberate and visible.

The checks write through `Transaction` directly (no schema validation) except the
schema checks, so they test storage semantics and nothing else. Conventions the checks
pin down beyond the protocol docstrings:

- Watch reports a written row (CREATE or TOUCH) as TOUCH and a removed row as DELETE,
  as SpiceDB does; the order inside one revision is unspecified.
- Every committed transaction, even one that writes nothing, yields a revision newer
  than the previous head.
- Key order compares strings by code point (``document:10`` < ``document:2``; Postgres
  needs ``COLLATE "C"``), with a plain subject ("" relation) before subject sets.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime

from rebac.datastore.filters import ANY_RELATION, RelationshipFilter, SubjectFilter
from rebac.datastore.protocol import Datastore, Reader, Transaction
from rebac.errors import (
    BugError,
    DatastoreUnavailableError,
    InvalidRevisionError,
    RelationshipExistsError,
    SchemaMissingError,
)
from rebac.revision import Revision
from rebac.tuples import Relationship, RelationshipCaveat, RelationshipUpdate, UpdateOperation, rel

Check = Callable[[Datastore], Awaitable[None]]

CATEGORIES: dict[str, list[Check]] = {}
ALL_CHECKS: list[Check] = []

SCHEMA_V1 = """
definition user {}
definition document {
    relation viewer: user
}
"""
SCHEMA_V2 = """
definition user {}
definition document {
    relation viewer: user
    relation editor: user
}
"""


def conformance(category: str) -> Callable[[Check], Check]:
    """Register a check under `category`."""

    def register(check: Check) -> Check:
        CATEGORIES.setdefault(category, []).append(check)
        ALL_CHECKS.append(check)
        return check

    return register


def select_checks(exclude: Mapping[str, str] | None = None) -> list[Check]:
    """ALL_CHECKS minus exclusions, each a category or a check name mapped to its reason.

    ValueError for an unknown name or an empty reason.
    """
    exclude = exclude or {}
    by_name = {check_name(check): check for check in ALL_CHECKS}
    skipped: set[Check] = set()
    for name, reason in exclude.items():
        if not reason.strip():
            raise ValueError(f"excluding {name!r} needs a reason")
        if name in CATEGORIES:
            skipped.update(CATEGORIES[name])
        elif name in by_name:
            skipped.add(by_name[name])
        else:
            raise ValueError(f"unknown conformance category or check {name!r}")
    return [check for check in ALL_CHECKS if check not in skipped]


def check_name(check: Check) -> str:
    """The function name of a check (``check_read_your_writes``)."""
    return getattr(check, "__name__", repr(check))


def check_id(check: Check) -> str:
    """A readable pytest id for a check."""
    return check_name(check).removeprefix("check_")


# -- helpers ----------------------------------------------------------------------------


async def collect(items: AsyncIterable[Relationship]) -> list[Relationship]:
    return [item async for item in items]


async def read_all(reader: Reader, flt: RelationshipFilter | None = None, **kw: object) -> list[str]:
    return [str(r) async for r in reader.query_relationships(flt or RelationshipFilter(), **kw)]  # type: ignore[arg-type]


async def write(ds: Datastore, *texts: str, op: UpdateOperation = UpdateOperation.TOUCH) -> Revision:
    updates = [RelationshipUpdate(op, rel(t)) for t in texts]

    async def body(tx: Transaction) -> None:
        await tx.write_relationships(updates)

    return await ds.read_write_tx(body)


async def delete(ds: Datastore, *texts: str) -> Revision:
    return await write(ds, *texts, op=UpdateOperation.DELETE)


async def at(ds: Datastore, revision: Revision) -> list[str]:
    return await read_all(ds.snapshot_reader(revision))


async def _aiter(items: list[Relationship]) -> AsyncIterator[Relationship]:
    for item in items:
        yield item


# -- reads and writes -------------------------------------------------------------------


@conformance("reads")
async def check_empty_datastore_reads_nothing(ds: Datastore) -> None:
    """A fresh datastore has a head revision and no relationships."""
    head = await ds.head_revision()
    assert await at(ds, head) == []
    assert await read_all(ds.snapshot_reader(head), RelationshipFilter(resource_type="document")) == []


@conformance("reads")
async def check_read_your_writes(ds: Datastore) -> None:
    """A reader at the revision a write returned sees that write."""
    revision = await write(ds, "document:1#viewer@user:ann", "document:1#viewer@group:eng#member")
    assert ds.snapshot_reader(revision).revision == revision
    assert await at(ds, revision) == [
        "document:1#viewer@group:eng#member",
        "document:1#viewer@user:ann",
    ]
    head = await ds.head_revision()
    assert head == revision or head.greater_than(revision)


@conformance("reads")
async def check_snapshot_isolation(ds: Datastore) -> None:
    """A reader at an older revision sees exactly that snapshot, not later writes."""
    first = await write(ds, "document:1#viewer@user:ann")
    second = await write(ds, "document:2#viewer@user:bob")
    assert second.greater_than(first)
    assert not first.greater_than(second)
    assert await at(ds, first) == ["document:1#viewer@user:ann"]
    assert await at(ds, second) == ["document:1#viewer@user:ann", "document:2#viewer@user:bob"]
    old_reader = ds.snapshot_reader(first)
    await write(ds, "document:3#viewer@user:cat")
    assert await read_all(old_reader) == ["document:1#viewer@user:ann"]


@conformance("reads")
async def check_delete_visibility(ds: Datastore) -> None:
    """A delete hides the row from its revision on; older revisions still see it."""
    created = await write(ds, "document:1#viewer@user:ann", "document:1#viewer@user:bob")
    deleted = await delete(ds, "document:1#viewer@user:ann")
    assert await at(ds, deleted) == ["document:1#viewer@user:bob"]
    assert await at(ds, created) == ["document:1#viewer@user:ann", "document:1#viewer@user:bob"]
    recreated = await write(ds, "document:1#viewer@user:ann")
    assert await at(ds, recreated) == ["document:1#viewer@user:ann", "document:1#viewer@user:bob"]
    assert await at(ds, deleted) == ["document:1#viewer@user:bob"]


@conformance("reads")
async def check_key_ordering_and_keyset_pagination(ds: Datastore) -> None:
    """Results come in key order and `limit`/`after` page through them exactly."""
    texts = [
        "folder:a#viewer@user:ann",
        "document:2#viewer@user:ann",
        "document:10#viewer@user:ann",
        "document:1#editor@user:ann",
        "document:1#viewer@user:bob",
        "document:1#viewer@user:ann",
        "document:1#viewer@group:eng#member",
        "document:1#viewer@group:eng",
    ]
    revision = await write(ds, *texts)
    reader = ds.snapshot_reader(revision)
    expected = sorted((rel(t) for t in texts), key=lambda r: r.key)
    assert await collect(reader.query_relationships(RelationshipFilter())) == expected
    pages: list[Relationship] = []
    after: Relationship | None = None
    while True:
        page = await collect(reader.query_relationships(RelationshipFilter(), limit=3, after=after))
        assert len(page) <= 3
        if not page:
            break
        pages.extend(page)
        after = page[-1]
    assert pages == expected
    docs = await collect(
        reader.query_relationships(RelationshipFilter(resource_type="document"), limit=2, after=expected[1])
    )
    assert docs == expected[2:4]
    assert await collect(reader.query_relationships(RelationshipFilter(), limit=0)) == []


@conformance("filters")
async def check_filter_by_resource_ids_and_relation(ds: Datastore) -> None:
    """A batch of resource ids returns exactly the rows of those ids (and relation)."""
    revision = await write(
        ds,
        "document:1#viewer@user:ann",
        "document:2#viewer@user:ann",
        "document:2#editor@user:ann",
        "document:3#viewer@user:ann",
        "folder:1#viewer@user:ann",
    )
    reader = ds.snapshot_reader(revision)
    batch = RelationshipFilter(resource_type="document", resource_ids=("1", "2", "missing"))
    assert await read_all(reader, batch) == [
        "document:1#viewer@user:ann",
        "document:2#editor@user:ann",
        "document:2#viewer@user:ann",
    ]
    viewers = RelationshipFilter(resource_type="document", resource_ids=("2", "3"), relation="viewer")
    assert await read_all(reader, viewers) == ["document:2#viewer@user:ann", "document:3#viewer@user:ann"]
    assert await read_all(reader, RelationshipFilter(resource_type="document", resource_ids=())) == []
    assert await read_all(reader, RelationshipFilter(resource_type="nothing")) == []


@conformance("filters")
async def check_filter_subject_relation(ds: Datastore) -> None:
    """Subject relation None matches plain subjects, ANY matches all, a name matches it."""
    revision = await write(
        ds,
        "document:1#viewer@group:eng",
        "document:1#viewer@group:eng#member",
        "document:1#viewer@group:eng#admin",
        "document:1#viewer@user:ann",
    )
    reader = ds.snapshot_reader(revision)

    async def subjects(relation: object) -> list[str]:
        flt = RelationshipFilter(
            resource_type="document", subject=SubjectFilter("group", relation=relation)  # type: ignore[arg-type]
        )
        forward = await read_all(reader, flt)
        reverse = [str(r) async for r in reader.reverse_query_relationships(flt)]
        assert forward == reverse
        return forward

    assert await subjects(None) == ["document:1#viewer@group:eng"]
    assert await subjects("member") == ["document:1#viewer@group:eng#member"]
    assert await subjects(ANY_RELATION) == [
        "document:1#viewer@group:eng",
        "document:1#viewer@group:eng#admin",
        "document:1#viewer@group:eng#member",
    ]


@conformance("filters")
async def check_reverse_query_by_subject(ds: Datastore) -> None:
    """A reverse query finds every resource of a subject, across types, in key order."""
    revision = await write(
        ds,
        "folder:f#viewer@user:ann",
        "document:2#viewer@user:ann",
        "document:1#editor@user:ann",
        "document:1#viewer@user:bob",
    )
    reader = ds.snapshot_reader(revision)
    flt = RelationshipFilter(subject=SubjectFilter("user", ids=("ann",), relation=None))
    found = [str(r) async for r in reader.reverse_query_relationships(flt)]
    assert found == ["document:1#editor@user:ann", "document:2#viewer@user:ann", "folder:f#viewer@user:ann"]
    limited = [str(r) async for r in reader.reverse_query_relationships(flt, limit=1, after=rel(found[0]))]
    assert limited == found[1:2]


@conformance("filters")
async def check_reverse_query_without_subject_is_a_bug(ds: Datastore) -> None:
    """A reverse query without a subject filter is a programming error (BugError)."""
    reader = ds.snapshot_reader(await ds.head_revision())
    try:
        await collect(reader.reverse_query_relationships(RelationshipFilter(resource_type="document")))
    except BugError:
        return
    raise AssertionError("reverse_query_relationships accepted a filter without a subject")


@conformance("filters")
async def check_filter_wildcard_ids(ds: Datastore) -> None:
    """A wildcard subject is stored with id `*` and matched only by ids containing `*`."""
    revision = await write(ds, "document:1#viewer@user:*", "document:1#viewer@user:ann")
    reader = ds.snapshot_reader(revision)

    def by(ids: tuple[str, ...] | None) -> RelationshipFilter:
        return RelationshipFilter(resource_type="document", subject=SubjectFilter("user", ids=ids, relation=None))

    assert await read_all(reader, by(("*",))) == ["document:1#viewer@user:*"]
    assert await read_all(reader, by(("ann",))) == ["document:1#viewer@user:ann"]
    assert await read_all(reader, by(("ann", "*"))) == ["document:1#viewer@user:*", "document:1#viewer@user:ann"]
    assert await read_all(reader, by(None)) == ["document:1#viewer@user:*", "document:1#viewer@user:ann"]
    assert await read_all(reader, by(("bob",))) == []


@conformance("writes")
async def check_create_conflict(ds: Datastore) -> None:
    """CREATE of a live key raises RelationshipExistsError and the transaction writes nothing."""
    revision = await write(ds, "document:1#viewer@user:ann", op=UpdateOperation.CREATE)
    try:
        await write(ds, "document:2#viewer@user:bob", "document:1#viewer@user:ann", op=UpdateOperation.CREATE)
    except RelationshipExistsError as err:
        message = str(err)
    else:
        raise AssertionError("CREATE of an existing relationship succeeded")
    assert "document:1#viewer@user:ann" in message
    head = await ds.head_revision()
    assert await at(ds, head) == await at(ds, revision) == ["document:1#viewer@user:ann"]
    deleted = await delete(ds, "document:1#viewer@user:ann")
    recreated = await write(ds, "document:1#viewer@user:ann", op=UpdateOperation.CREATE)
    assert recreated.greater_than(deleted)
    assert await at(ds, recreated) == ["document:1#viewer@user:ann"]


@conformance("writes")
async def check_touch_replaces_caveat_and_expiration(ds: Datastore) -> None:
    """TOUCH inserts a missing row and replaces caveat and expiration of an existing one."""
    plain = await write(ds, "document:1#viewer@user:ann")
    caveated = await write(ds, 'document:1#viewer@user:ann[on_tuesday:{"day":"tue"}]')
    expiring = await write(ds, "document:1#viewer@user:ann[expiration:2030-01-01T00:00:00Z]")
    assert await at(ds, plain) == ["document:1#viewer@user:ann"]
    assert await at(ds, caveated) == ['document:1#viewer@user:ann[on_tuesday:{"day":"tue"}]']
    [stored] = await collect(ds.snapshot_reader(expiring).query_relationships(RelationshipFilter()))
    assert stored.caveat is None
    assert stored.expiration == datetime(2030, 1, 1, tzinfo=UTC)


@conformance("writes")
async def check_caveat_and_expiration_round_trip(ds: Datastore) -> None:
    """A caveat with its context and an expiration are stored and read back unchanged."""
    text = 'document:1#viewer@user:ann[ip_allowlist:{"allowed":["10.0.0.0/8"],"n":1.5}][expiration:2031-02-03T04:05:06Z]'
    revision = await write(ds, text, op=UpdateOperation.CREATE)
    [stored] = await collect(ds.snapshot_reader(revision).query_relationships(RelationshipFilter()))
    assert stored.caveat == RelationshipCaveat.of("ip_allowlist", {"allowed": ["10.0.0.0/8"], "n": 1.5})
    assert str(stored) == str(rel(text))


@conformance("writes")
async def check_delete_of_missing_is_noop(ds: Datastore) -> None:
    """DELETE of a key that does not exist commits and changes nothing."""
    before = await write(ds, "document:1#viewer@user:ann")
    after = await delete(ds, "document:1#viewer@user:bob")
    assert after.greater_than(before)
    assert await at(ds, after) == ["document:1#viewer@user:ann"]


@conformance("writes")
async def check_rollback_on_raise(ds: Datastore) -> None:
    """A transaction function that raises leaves nothing written, not even earlier writes."""
    base = await write(ds, "document:1#viewer@user:ann")

    class BoomError(Exception):
        pass

    async def body(tx: Transaction) -> None:
        await tx.write_relationships([RelationshipUpdate(UpdateOperation.TOUCH, rel("document:2#viewer@user:bob"))])
        await tx.write_relationships([RelationshipUpdate(UpdateOperation.DELETE, rel("document:1#viewer@user:ann"))])
        await tx.write_schema(SCHEMA_V1)
        raise BoomError

    try:
        await ds.read_write_tx(body)
    except BoomError:
        pass
    else:
        raise AssertionError("the exception was swallowed")
    # The head may have moved (Postgres xids are cluster-wide); what it shows may not.
    head = await ds.head_revision()
    assert await at(ds, head) == await at(ds, base) == ["document:1#viewer@user:ann"]
    assert await ds.snapshot_reader(head).read_schema_text() is None


@conformance("writes")
async def check_transaction_reads_its_own_writes(ds: Datastore) -> None:
    """Reads inside a transaction see its start snapshot plus its own writes."""
    await write(ds, "document:1#viewer@user:ann", "document:2#viewer@user:ann")
    seen: list[str] = []

    async def body(tx: Transaction) -> None:
        await tx.write_relationships(
            [
                RelationshipUpdate(UpdateOperation.TOUCH, rel("document:3#viewer@user:ann")),
                RelationshipUpdate(UpdateOperation.DELETE, rel("document:1#viewer@user:ann")),
            ]
        )
        seen.extend(await read_all(tx, RelationshipFilter(resource_type="document")))

    revision = await ds.read_write_tx(body)
    assert seen == ["document:2#viewer@user:ann", "document:3#viewer@user:ann"]
    assert await at(ds, revision) == seen


@conformance("writes")
async def check_delete_by_filter(ds: Datastore) -> None:
    """delete_relationships removes the matching rows (at most `limit`) and counts them."""
    await write(
        ds,
        "document:1#viewer@user:ann",
        "document:2#viewer@user:ann",
        "document:3#viewer@user:ann",
        "document:3#editor@user:ann",
    )
    counts: list[int] = []

    async def limited(tx: Transaction) -> None:
        counts.append(await tx.delete_relationships(RelationshipFilter(resource_type="document", relation="viewer"), limit=2))

    first = await ds.read_write_tx(limited)
    assert await at(ds, first) == ["document:3#editor@user:ann", "document:3#viewer@user:ann"]

    async def rest(tx: Transaction) -> None:
        counts.append(await tx.delete_relationships(RelationshipFilter(resource_type="document")))
        counts.append(await tx.delete_relationships(RelationshipFilter(resource_type="document")))

    second = await ds.read_write_tx(rest)
    assert counts == [2, 2, 0]
    assert await at(ds, second) == []


@conformance("writes")
async def check_bulk_load(ds: Datastore) -> None:
    """bulk_load inserts many rows; a duplicate makes the whole transaction write nothing."""
    many = [rel(f"document:{i}#viewer@user:u{i % 7}") for i in range(250)]
    loaded: list[int] = []

    async def body(tx: Transaction) -> None:
        loaded.append(await tx.bulk_load(_aiter(many)))

    revision = await ds.read_write_tx(body)
    assert loaded == [250]
    assert len(await at(ds, revision)) == 250

    async def duplicate(tx: Transaction) -> None:
        await tx.bulk_load(_aiter([rel("folder:new#viewer@user:ann"), many[3]]))

    try:
        await ds.read_write_tx(duplicate)
    except RelationshipExistsError:
        pass
    else:
        raise AssertionError("bulk_load accepted an existing relationship")
    assert len(await at(ds, await ds.head_revision())) == 250
    assert await read_all(ds.snapshot_reader(await ds.head_revision()), RelationshipFilter(resource_type="folder")) == []


# -- schema -----------------------------------------------------------------------------


@conformance("schema")
async def check_schema_text_per_revision(ds: Datastore) -> None:
    """Each revision reads the schema text in effect at it; none before the first write."""
    empty = await ds.head_revision()

    def writer(text: str) -> Callable[[Transaction], Awaitable[None]]:
        async def body(tx: Transaction) -> None:
            await tx.write_schema(text)

        return body

    seen_inside: list[str | None] = []

    async def write_and_read(tx: Transaction) -> None:
        seen_inside.append(await tx.read_schema_text())
        await tx.write_schema(SCHEMA_V1)
        seen_inside.append(await tx.read_schema_text())

    v1 = await ds.read_write_tx(write_and_read)
    assert seen_inside == [None, SCHEMA_V1]
    between = await write(ds, "document:1#viewer@user:ann")
    v2 = await ds.read_write_tx(writer(SCHEMA_V2))
    assert await ds.snapshot_reader(empty).read_schema_text() is None
    assert await ds.snapshot_reader(v1).read_schema_text() == SCHEMA_V1
    assert await ds.snapshot_reader(between).read_schema_text() == SCHEMA_V1
    assert await ds.snapshot_reader(v2).read_schema_text() == SCHEMA_V2


@conformance("schema")
async def check_read_schema_compiles(ds: Datastore) -> None:
    """read_schema compiles the stored text; SchemaMissingError when none was written."""
    try:
        await ds.snapshot_reader(await ds.head_revision()).read_schema()
    except SchemaMissingError:
        pass
    else:
        raise AssertionError("read_schema without a schema did not raise SchemaMissingError")

    async def body(tx: Transaction) -> None:
        await tx.write_schema(SCHEMA_V2)

    revision = await ds.read_write_tx(body)
    compiled = await ds.snapshot_reader(revision).read_schema()
    document = compiled.definition("document")
    assert document is not None
    assert document.member("editor") is not None


# -- revisions --------------------------------------------------------------------------


@conformance("revisions")
async def check_revision_string_round_trip(ds: Datastore) -> None:
    """str(revision) parses back to an equal revision that reads the same snapshot."""
    first = await write(ds, "document:1#viewer@user:ann")
    await write(ds, "document:2#viewer@user:ann")
    parsed = ds.revision_from_string(str(first))
    assert parsed == first
    assert hash(parsed) == hash(first)
    assert await at(ds, parsed) == ["document:1#viewer@user:ann"]
    await ds.check_revision(parsed)
    head = await ds.head_revision()
    assert ds.revision_from_string(str(head)) == head
    optimized = await ds.optimized_revision()
    await ds.check_revision(optimized)
    assert not optimized.greater_than(head)


@conformance("revisions")
async def check_malformed_revision_strings(ds: Datastore) -> None:
    """Garbage revision strings raise InvalidRevisionError, never something else."""
    for garbage in ["", "   ", "not-a-revision", "1.5", "-1", "\x00", "💥", "9" * 400, "{}"]:
        try:
            ds.revision_from_string(garbage)
        except InvalidRevisionError:
            continue
        raise AssertionError(f"revision_from_string accepted {garbage!r}")


@conformance("revisions")
async def check_every_commit_is_a_newer_revision(ds: Datastore) -> None:
    """Each committed transaction, even an empty one, returns a revision newer than the last."""
    revisions = [await ds.head_revision()]

    async def nothing(tx: Transaction) -> None:
        del tx

    for _ in range(3):
        revisions.append(await ds.read_write_tx(nothing))
        revisions.append(await write(ds, "document:1#viewer@user:ann"))
    for older, newer in itertools.pairwise(revisions):
        assert newer.greater_than(older)
        assert not older.greater_than(newer)
        assert newer != older


# -- watch ------------------------------------------------------------------------------


@conformance("watch")
async def check_watch_delivers_changes_in_order(ds: Datastore) -> None:
    """watch(after) yields each later commit's changes in commit order, waking on commits."""
    start = await write(ds, "document:0#viewer@user:ann")
    received: list[tuple[Revision, list[tuple[str, str]]]] = []

    async def consume() -> None:
        async for change in ds.watch(start):
            received.append(
                (change.revision, sorted((u.operation.name, str(u.relationship)) for u in change.updates))
            )
            if len(received) == 3:
                return

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    first = await write(ds, "document:1#viewer@user:ann", "document:2#viewer@user:bob")
    second = await delete(ds, "document:1#viewer@user:ann")
    third = await write(ds, "document:2#viewer@user:bob[expiration:2030-01-01T00:00:00Z]", op=UpdateOperation.TOUCH)
    await asyncio.wait_for(consumer, timeout=5)
    assert [r for r, _ in received] == [first, second, third]
    assert received[0][1] == [("TOUCH", "document:1#viewer@user:ann"), ("TOUCH", "document:2#viewer@user:bob")]
    assert received[1][1] == [("DELETE", "document:1#viewer@user:ann")]
    assert received[2][1][-1] == ("TOUCH", "document:2#viewer@user:bob[expiration:2030-01-01T00:00:00Z]")

    # A watch started later replays what was committed after its revision.
    replay = ds.watch(first)
    change = await asyncio.wait_for(anext(replay), timeout=5)
    assert change.revision == second
    close = getattr(replay, "aclose", None)
    if close is not None:
        await close()


# -- lifecycle --------------------------------------------------------------------------


@conformance("lifecycle")
async def check_closed_datastore_errors(ds: Datastore) -> None:
    """After aclose (idempotent), reads, writes and revisions raise DatastoreUnavailableError."""
    revision = await write(ds, "document:1#viewer@user:ann")
    await ds.aclose()
    await ds.aclose()

    async def attempts() -> list[Callable[[], Awaitable[object]]]:
        async def nothing(tx: Transaction) -> None:
            del tx

        return [
            ds.head_revision,
            ds.optimized_revision,
            lambda: ds.check_revision(revision),
            lambda: ds.read_write_tx(nothing),
            lambda: at(ds, revision),
        ]

    for attempt in await attempts():
        try:
            await attempt()
        except DatastoreUnavailableError:
            continue
        raise AssertionError(f"{attempt} worked on a closed datastore")


# The optional GraphReader walks register themselves under "graph" when imported.
from tests.rebac.datastore import conformance_graph  # noqa: E402, F401 - registration side effect
