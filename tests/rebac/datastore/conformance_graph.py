"""Conformance checks for the optional `GraphReader` walks (registered under "graph").

Each walk must return exactly what its reference in `rebac.datastore.graph` returns, built
from plain queries, at every revision: so one recursive SQL query on Postgres means the
same as the step-by-step walk on memory.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rebac.datastore.graph import (
    subject_set_closure_by_queries,
    subject_set_height_by_queries,
    walk_relations_by_queries,
)
from rebac.datastore.protocol import Datastore, GraphReader, Transaction
from rebac.tuples import Relationship, RelationshipCaveat, RelationshipUpdate, UpdateOperation, rel
from tests.rebac.datastore.conformance import conformance, delete, write

_GROUPS = (
    "group:a#member@user:ann",
    "group:b#member@group:a#member",
    "group:c#member@group:b#member",
    "group:a#member@group:c#member",  # a cycle: a -> c -> b -> a
    "group:d#member@user:*",
    "group:e#member@group:d#member",
    "group:x#member@user:bob",
    "group:y#member@group:x#member",
    "group:a#owner@user:ann",  # another relation: never part of the member closure
)
_FOLDERS = (
    "document:1#parent@folder:f1",
    "document:1#viewer@user:ann",
    "document:1#owner@user:cat",
    "folder:f1#parent@folder:f2",
    "folder:f1#viewer@group:a#member",
    "folder:f2#parent@folder:f1",  # a cycle in the parent chain
    "folder:f2#owner@user:bob",
    "folder:f3#owner@user:dan",  # not reached from document:1
    "document:2#parent@folder:*",  # a wildcard is not an object to walk to
)


def _graph(ds: Datastore, revision: object) -> GraphReader:
    reader = ds.snapshot_reader(revision)  # type: ignore[arg-type]
    assert isinstance(reader, GraphReader), f"{type(reader).__name__} is not a GraphReader"
    return reader


def _texts(rows: list[Relationship] | None) -> list[str] | None:
    return None if rows is None else [str(r) for r in rows]


@conformance("graph")
async def check_subject_set_closure(ds: Datastore) -> None:
    """The closure holds the rows leading up from the subject (wildcard included, cycles once)."""
    revision = await write(ds, *_GROUPS)
    reader = _graph(ds, revision)
    got = await reader.subject_set_closure("group", "member", "user", "ann", max_rows=100)
    assert _texts(got) == [
        "group:a#member@group:c#member",
        "group:a#member@user:ann",
        "group:b#member@group:a#member",
        "group:c#member@group:b#member",
        "group:d#member@user:*",
        "group:e#member@group:d#member",
    ]
    assert got == await subject_set_closure_by_queries(reader, "group", "member", "user", "ann", max_rows=100)
    assert await reader.subject_set_closure("group", "member", "user", "nobody", max_rows=100) == [
        rel("group:d#member@user:*"),
        rel("group:e#member@group:d#member"),
    ]
    assert await reader.subject_set_closure("group", "member", "user", "ann", max_rows=3) is None


@conformance("graph")
async def check_subject_set_closure_by_revision(ds: Datastore) -> None:
    """A deleted membership leaves the closure from its revision on; older revisions keep it."""
    before = await write(ds, "group:a#member@user:ann", "group:b#member@group:a#member")
    after = await delete(ds, "group:a#member@user:ann")
    old = await _graph(ds, before).subject_set_closure("group", "member", "user", "ann", max_rows=10)
    new = await _graph(ds, after).subject_set_closure("group", "member", "user", "ann", max_rows=10)
    assert _texts(old) == ["group:a#member@user:ann", "group:b#member@group:a#member"]
    assert new == []


@conformance("graph")
async def check_subject_set_closure_keeps_caveats_and_expirations(ds: Datastore) -> None:
    """Closure rows carry their caveat and expiration, so the engine can refuse to shortcut them."""
    caveated = Relationship(
        rel("group:a#member@user:ann").resource,
        "member",
        rel("group:a#member@user:ann").subject,
        RelationshipCaveat.of("only_weekdays", {"day": "mon"}),
    )
    expiring = Relationship(
        rel("group:b#member@group:a#member").resource,
        "member",
        rel("group:b#member@group:a#member").subject,
        expiration=datetime(2030, 1, 1, tzinfo=UTC),
    )

    async def body(tx: Transaction) -> None:
        await tx.write_relationships(
            [
                RelationshipUpdate(UpdateOperation.TOUCH, caveated),
                RelationshipUpdate(UpdateOperation.TOUCH, expiring),
            ]
        )

    revision = await ds.read_write_tx(body)
    got = await _graph(ds, revision).subject_set_closure("group", "member", "user", "ann", max_rows=10)
    assert got == [caveated, expiring]


@conformance("graph")
async def check_walk_relations(ds: Datastore) -> None:
    """The walk returns the wanted relations of every object reached through `follow`."""
    revision = await write(ds, *_FOLDERS)
    reader = _graph(ds, revision)
    got = await reader.walk_relations(
        "document", ["1", "2", "9"], follow=["parent"], relations=["owner", "parent", "viewer"], max_rows=100
    )
    assert _texts(got) == [
        "document:1#owner@user:cat",
        "document:1#parent@folder:f1",
        "document:1#viewer@user:ann",
        "document:2#parent@folder:*",
        "folder:f1#parent@folder:f2",
        "folder:f1#viewer@group:a#member",
        "folder:f2#owner@user:bob",
        "folder:f2#parent@folder:f1",
    ]
    reference = await walk_relations_by_queries(
        reader,
        "document",
        ["1", "2", "9"],
        follow=["parent"],
        relations=["owner", "parent", "viewer"],
        max_rows=100,
    )
    assert got == reference
    assert (
        await reader.walk_relations("document", [], follow=["parent"], relations=["owner"], max_rows=10) == []
    )
    too_many = await reader.walk_relations(
        "document", ["1"], follow=["parent"], relations=["owner", "parent", "viewer"], max_rows=2
    )
    assert too_many is None


@conformance("graph")
async def check_subject_set_height(ds: Datastore) -> None:
    """The height counts chained subject sets below the ids, capped, a cycle reaching the cap."""
    revision = await write(ds, *_GROUPS)
    reader = _graph(ds, revision)
    for ids, cap, expected in (
        (["y"], 10, 1),
        (["x"], 10, 0),
        (["e", "y"], 10, 1),
        (["a"], 10, 10),  # the cycle a -> c -> b -> a
        (["a"], 2, 2),
        (["nothing"], 10, 0),
    ):
        got = await reader.subject_set_height("group", "member", ids, max_height=cap)
        assert got == expected, (ids, cap, got)
        assert got == await subject_set_height_by_queries(reader, "group", "member", ids, max_height=cap)


@conformance("graph")
async def check_walk_with_closure(ds: Datastore) -> None:
    """One round trip answers exactly what the walk and the closure answer on their own."""
    revision = await write(ds, *_GROUPS, *_FOLDERS)
    reader = _graph(ds, revision)
    together = getattr(reader, "walk_with_closure", None)
    assert together is not None, f"{type(reader).__name__} cannot walk and close in one round trip"
    walk = {"follow": ["parent"], "relations": ["owner", "parent", "viewer"]}
    for ids, subject, walk_cap, closure_cap in (
        (["1", "2", "9"], "ann", 100, 100),
        (["1"], "bob", 100, 100),
        (["1"], "nobody", 100, 100),
        ([], "ann", 100, 100),
        (["1"], "ann", 2, 100),  # the walk over its cap, the closure not
        (["1"], "ann", 100, 1),  # the closure over its cap, the walk not
    ):
        got = await together(
            "document",
            ids,
            **walk,
            max_rows=walk_cap,
            closure=("group", "member", "user", subject),
            max_closure_rows=closure_cap,
        )
        assert got == (
            await reader.walk_relations("document", ids, **walk, max_rows=walk_cap),
            await reader.subject_set_closure("group", "member", "user", subject, max_rows=closure_cap),
        ), (ids, subject, walk_cap, closure_cap)
