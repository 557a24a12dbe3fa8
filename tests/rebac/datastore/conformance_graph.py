"""Conformance checks for the optional `GraphReader` walks (registered under "graph").

Each walk must return exactly what its reference in `rebac.datastore.graph` returns, built
from plain queries, at every revision: so one recursive SQL query on Postgres means the
same as the step-by-step walk on memory.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rebac.datastore.graph import (
    subject_set_closure_by_queries,
    subject_set_height_by_queries,
    walk_relations_by_queries,
)
from rebac.datastore.path_search import (
    PathOutcome,
    PathPlan,
    PathSearchReader,
    PathStep,
    search_paths_by_queries,
)
from rebac.datastore.protocol import Datastore, GraphReader, Transaction
from rebac.engine.path_plan import compile_path_plan
from rebac.engine.reachability import Reachability
from rebac.schema.compiler import compile_schema
from rebac.tuples import Relationship, RelationshipCaveat, RelationshipUpdate, UpdateOperation, rel
from tests.rebac.datastore.conformance import conformance, delete, write
from tests.rebac.engine.path_schemas import COMBINED_ARROWS, DRIVE

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


# -- path search (CheckBulk) ------------------------------------------------------------

_VIEW = PathPlan(
    resource_type="document",
    start="view",
    subject_type="user",
    steps=(
        PathStep("document", "view", "viewer", None),
        PathStep("document", "view", "parent", "view"),
        PathStep("folder", "view", "viewer", None),
        PathStep("folder", "view", "parent", "view"),
    ),
    closure_nodes=(("group", "member"),),
    ignored_sets=(("team", "member"),),
)
"""document#view = viewer + parent->view, folder#view alike; groups nest; teams never hold users."""

_PATHS = (
    "document:direct#viewer@user:ann",
    "document:open#viewer@user:*",
    "document:deep#parent@folder:f1",  # deep -> f1 -> f2
    "folder:f1#parent@folder:f2",
    "folder:f1#viewer@group:eng#member",
    "folder:f2#viewer@user:bob",
    "group:eng#member@group:backend#member",  # cat is in core (0), backend (1), eng (2)
    "group:backend#member@group:core#member",
    "group:core#member@user:cat",
    "document:loop#parent@folder:c1",  # a parent cycle: c1 -> c2 -> c1
    "folder:c1#parent@folder:c2",
    "folder:c2#parent@folder:c1",
    "document:teams#viewer@team:t1#member",  # an ignored subject set
    "document:orgs#viewer@org:o1#admin",  # a subject set the plan does not know
    "document:star#parent@folder:*",  # a wildcard is not an object to walk to
    "document:stray#parent@user:ann",  # an object with no step from `view`: the path ends there
)

async def _search(
    ds: Datastore,
    revision: object,
    plan: PathPlan,
    items: list[tuple[str, str]],
    max_steps: int = 10,
    **options: Any,
) -> list[PathOutcome]:
    """The reader's outcomes, asserted equal to the reference's (`search_paths_by_queries`)."""
    reader = ds.snapshot_reader(revision)  # type: ignore[arg-type]
    assert isinstance(reader, PathSearchReader), f"{type(reader).__name__} cannot search paths"
    got = await reader.search_paths(plan, items, max_steps=max_steps, **options)
    assert got == await search_paths_by_queries(reader, plan, items, max_steps=max_steps, **options), items
    return got


@conformance("graph")
async def check_search_paths_matches(ds: Datastore) -> None:
    """A match is (step, closure level): the subject or its wildcard (level None) or a nested group holding it."""
    revision = await write(ds, *_PATHS)
    cases = {
        ("direct", "ann"): PathOutcome(matches=((0, None),)),
        ("open", "zed"): PathOutcome(matches=((0, None),)),
        ("deep", "bob"): PathOutcome(
            matches=((2, None),), unmatched_sets=(("group", "member", "eng", 1),), deepest=2
        ),
        ("deep", "cat"): PathOutcome(matches=((1, 2),), deepest=2),
    }
    got = await _search(ds, revision, _VIEW, list(cases))
    assert dict(zip(cases, got, strict=True)) == cases


@conformance("graph")
async def check_search_paths_wildcard_member(ds: Datastore) -> None:
    """A group holding ``user:*`` holds every user, at level 0 (and so do the groups above it)."""
    revision = await write(
        ds,
        "group:all#member@user:*",
        "group:outer#member@group:all#member",
        "document:everyone#viewer@group:all#member",
        "document:outer#viewer@group:outer#member",
    )
    assert await _search(ds, revision, _VIEW, [("everyone", "zed"), ("outer", "zed")]) == [
        PathOutcome(matches=((0, 0),)),
        PathOutcome(matches=((0, 1),)),
    ]


@conformance("graph")
async def check_search_paths_closures_only_without_a_plain_match(ds: Datastore) -> None:
    """Closures are read for an item that met a subject set and no plain match; otherwise its sets are unmatched."""
    revision = await write(ds, *_PATHS)
    # bob is a viewer two folders up: eng, one folder up, is reported unmatched, unread.
    bob, cat = await _search(ds, revision, _VIEW, [("deep", "bob"), ("deep", "cat")])
    assert bob.unmatched_sets == (("group", "member", "eng", 1),)
    assert cat.matches == ((1, 2),)  # cat is in eng through backend and core: level 2
    assert cat.unmatched_sets == ()


@conformance("graph")
async def check_search_paths_non_members(ds: Datastore) -> None:
    """Without a match the outcome still reports how deep the walk went and the groups met unmatched."""
    revision = await write(ds, *_PATHS)
    cases = {
        ("direct", "bob"): PathOutcome(),  # another user's grant is not a match
        ("deep", "dan"): PathOutcome(
            unmatched_sets=(("group", "member", "eng", 1),), deepest=2
        ),
        ("nosuch", "ann"): PathOutcome(),  # an unknown resource: nothing read
        ("star", "ann"): PathOutcome(),  # a wildcard arrow row is not followed
        ("stray", "ann"): PathOutcome(deepest=1),  # followed, then no step from a user
        ("teams", "ann"): PathOutcome(),  # an ignored subject set is skipped
    }
    got = await _search(ds, revision, _VIEW, list(cases))
    assert dict(zip(cases, got, strict=True)) == cases


@conformance("graph")
async def check_search_paths_cut_at_max_steps(ds: Datastore) -> None:
    """A state reached at `max_steps` is not expanded and cuts the outcome: cycles and long chains."""
    revision = await write(ds, *_PATHS)
    assert await _search(ds, revision, _VIEW, [("loop", "ann")], max_steps=10) == [
        PathOutcome(deepest=10, cut=True)
    ]
    assert await _search(ds, revision, _VIEW, [("deep", "bob")], max_steps=1) == [
        PathOutcome(deepest=1, cut=True)  # f1 reached, its viewers not read
    ]
    assert await _search(ds, revision, _VIEW, [("deep", "bob")], max_steps=2) == [
        PathOutcome(unmatched_sets=(("group", "member", "eng", 1),), deepest=2, cut=True)
    ]
    assert await _search(ds, revision, _VIEW, [("deep", "bob")], max_steps=3) == [
        PathOutcome(matches=((2, None),), unmatched_sets=(("group", "member", "eng", 1),), deepest=2)
    ]
    assert await _search(ds, revision, _VIEW, [("direct", "ann")], max_steps=0) == [
        PathOutcome(cut=True)  # the resource itself is at the limit: nothing is read
    ]


@conformance("graph")
async def check_search_paths_closure_levels(ds: Datastore) -> None:
    """Closures go to level `max_levels` - 1: a group holding the subject only deeper does not hold it."""
    revision = await write(ds, *_PATHS)
    items = [("deep", "cat")]
    assert await _search(ds, revision, _VIEW, items, max_levels=3) == [
        PathOutcome(matches=((1, 2),), deepest=2)
    ]
    assert await _search(ds, revision, _VIEW, items, max_levels=2) == [
        PathOutcome(
            unmatched_sets=(("group", "member", "eng", 1),), deepest=2
        )
    ]
    assert await _search(ds, revision, _VIEW, items, max_levels=0) == [
        PathOutcome(unmatched_sets=(("group", "member", "eng", 1),), deepest=2)  # no closure read
    ]


@conformance("graph")
async def check_search_paths_skip_closures(ds: Datastore) -> None:
    """`skip_closures` exempts items from the closure read (their sets are unmatched); missing entries do not."""
    revision = await write(ds, *_PATHS)
    items = [("deep", "cat"), ("deep", "cat"), ("deep", "cat")]
    read = PathOutcome(matches=((1, 2),), deepest=2)
    skipped = PathOutcome(unmatched_sets=(("group", "member", "eng", 1),), deepest=2)
    assert await _search(ds, revision, _VIEW, items, skip_closures=[True, False]) == [skipped, read, read]


@conformance("graph")
async def check_search_paths_without_closure_nodes(ds: Datastore) -> None:
    """A plan with no closure nodes skips an ignored subject set and follows no arrow."""
    plan = PathPlan(
        resource_type="document",
        start="viewer",
        subject_type="user",
        steps=(PathStep("document", "viewer", "viewer", None),),
        ignored_sets=(("team", "member"),),
    )
    revision = await write(ds, *_PATHS)
    assert await _search(ds, revision, plan, [("teams", "ann"), ("direct", "ann"), ("deep", "ann")]) == [
        PathOutcome(),
        PathOutcome(matches=((0, None),)),
        PathOutcome(),  # `parent` is no step of this plan
    ]


@conformance("graph")
async def check_search_paths_marks_an_unknown_subject_set(ds: Datastore) -> None:
    """A subject set neither closed over nor ignored marks the item (the evaluator must walk it)."""
    revision = await write(ds, *_PATHS)
    assert await _search(ds, revision, _VIEW, [("orgs", "ann"), ("teams", "ann")]) == [
        PathOutcome(marked=True),
        PathOutcome(),
    ]


@conformance("graph")
async def check_search_paths_marks_caveats_and_expirations(ds: Datastore) -> None:
    """Caveated or expiring rows on the path mark the item, whether or not they have expired."""
    revision = await write(
        ds,
        *_PATHS,
        "document:caveated_arrow#parent@folder:f2[weekday]",
        "document:expiring_arrow#parent@folder:f2[expiration:2030-01-01T00:00:00Z]",
        "document:expired_arrow#parent@folder:f2[expiration:2000-01-01T00:00:00Z]",
        "document:caveated_leaf#viewer@user:ann[weekday]",
        "document:caveated_set#viewer@group:core#member[weekday]",
        "document:vip#viewer@group:vip#member",
        "group:vip#member@user:eve[weekday]",
        "group:lounge#member@group:vip#member",
    )
    cases = {
        # a followed arrow row, still followed
        ("caveated_arrow", "bob"): PathOutcome(matches=((1, None),), deepest=1, marked=True),
        ("expiring_arrow", "bob"): PathOutcome(matches=((1, None),), deepest=1, marked=True),
        ("expired_arrow", "bob"): PathOutcome(matches=((1, None),), deepest=1, marked=True),
        # a matching leaf row; for another subject the row is not met
        ("caveated_leaf", "ann"): PathOutcome(matches=((0, None),), marked=True),
        ("caveated_leaf", "bob"): PathOutcome(),
        # a subject-set leaf row, matching or not
        ("caveated_set", "cat"): PathOutcome(matches=((0, 0),), marked=True),
        ("caveated_set", "dan"): PathOutcome(
            unmatched_sets=(("group", "member", "core", 0),), marked=True
        ),
        # a closure row on the way up from the subject: the closure is not reported
        ("vip", "eve"): PathOutcome(matches=((0, 0),), marked=True),
        ("deep", "eve"): PathOutcome(unmatched_sets=(("group", "member", "eng", 1),), deepest=2, marked=True),
        ("vip", "dan"): PathOutcome(unmatched_sets=(("group", "member", "vip", 0),)),
    }
    got = await _search(ds, revision, _VIEW, list(cases))
    assert dict(zip(cases, got, strict=True)) == cases


@conformance("graph")
async def check_search_paths_by_revision(ds: Datastore) -> None:
    """A deleted row is gone from the search at its revision on; the older revision still finds it."""
    before = await write(ds, *_PATHS)
    after = await delete(ds, "folder:f2#viewer@user:bob", "group:core#member@user:cat")
    items = [("deep", "bob"), ("deep", "cat")]
    unmatched = (("group", "member", "eng", 1),)
    assert await _search(ds, before, _VIEW, items) == [
        PathOutcome(matches=((2, None),), unmatched_sets=unmatched, deepest=2),
        PathOutcome(matches=((1, 2),), deepest=2),
    ]
    assert await _search(ds, after, _VIEW, items) == [
        PathOutcome(unmatched_sets=unmatched, deepest=2),
        PathOutcome(unmatched_sets=unmatched, deepest=2),
    ]


@conformance("graph")
async def check_search_paths_many_items_in_order(ds: Datastore) -> None:
    """One call answers every item in order, repeats and one resource for several subjects included."""
    revision = await write(ds, *_PATHS)
    items = [("deep", "cat"), ("direct", "bob"), ("deep", "bob"), ("direct", "ann"), ("deep", "cat")]
    cat = PathOutcome(matches=((1, 2),), deepest=2)
    assert await _search(ds, revision, _VIEW, items) == [
        cat,
        PathOutcome(),
        PathOutcome(matches=((2, None),), unmatched_sets=(("group", "member", "eng", 1),), deepest=2),
        PathOutcome(matches=((0, None),)),
        cat,
    ]
    assert await _search(ds, revision, _VIEW, []) == []


@conformance("graph")
async def check_search_paths_compiled_plan(ds: Datastore) -> None:
    """A plan from `compile_path_plan` reads every folded relation of every state."""
    schema = compile_schema(DRIVE)
    compiled = compile_path_plan(schema, Reachability(schema), "document", "view", "user")
    assert compiled is not None
    revision = await write(
        ds,
        "document:1#parent@folder:a",
        "document:1#owner@user:ann",
        "folder:a#parent@folder:b",
        "folder:a#editor@group:eng#member",
        "folder:b#owner@user:bob",
        "folder:b#viewer@user:erin",
        "group:eng#member@user:cat",
        "document:2#parent@folder:b",
        "folder:c#viewer@user:*",
        "document:3#parent@folder:c",
    )
    items = [("1", "ann"), ("1", "bob"), ("1", "cat"), ("1", "dan"), ("2", "erin"), ("3", "dan")]
    unmatched = (("group", "member", "eng", 1),)
    assert await _search(ds, revision, compiled.search, items) == [
        PathOutcome(matches=((0, None),), unmatched_sets=unmatched, deepest=2),  # owner
        PathOutcome(matches=((2, None),), unmatched_sets=unmatched, deepest=2),  # b's owner
        PathOutcome(matches=((1, 0),), deepest=2),  # a's editor group
        PathOutcome(unmatched_sets=unmatched, deepest=2),
        PathOutcome(matches=((1, None),), deepest=1),  # b's viewer
        PathOutcome(matches=((1, None),), deepest=1),  # c's viewers: everyone
    ]


@conformance("graph")
async def check_search_paths_combined_nodes(ds: Datastore) -> None:
    """Two arrows over one relation walk to one combined node (``comment|view``), per object type."""
    schema = compile_schema(COMBINED_ARROWS)
    compiled = compile_path_plan(schema, Reachability(schema), "doc", "view", "user")
    assert compiled is not None
    revision = await write(
        ds,
        "doc:d1#parent@folder:a",
        "folder:a#parent@folder:b",
        "folder:a#viewer@user:vic",
        "folder:b#commenter@user:cora",
        "doc:d2#parent@box:x",
        "box:x#parent@box:y",
        "box:y#viewer@user:bea",
        "box:y#commenter@user:cora",  # not a relation of box#view: never read
    )
    items = [("d1", "cora"), ("d1", "vic"), ("d1", "bea"), ("d2", "bea"), ("d2", "cora")]
    assert await _search(ds, revision, compiled.search, items) == [
        PathOutcome(matches=((2, None),), deepest=2),
        PathOutcome(matches=((1, None),), deepest=2),
        PathOutcome(deepest=2),
        PathOutcome(matches=((2, None),), deepest=2),
        PathOutcome(deepest=2),
    ]


_EDIT = PathPlan(
    resource_type="folder",
    start="edit",
    subject_type="user",
    steps=(
        PathStep("folder", "edit", "owner", None),
        PathStep("folder", "edit", "parent", "edit"),
    ),
)
"""folder#edit = owner + parent->edit: merged with `_VIEW` (they share no state)."""


@conformance("graph")
async def check_search_paths_merged_plans_with_roots(ds: Datastore) -> None:
    """Items of several plans in one call (`PathPlan.merge`, `roots`) get their own plan's outcomes."""
    revision = await write(ds, *_PATHS, "folder:f2#owner@user:dan", "folder:c2#owner@user:dan")
    view_items = [("direct", "ann"), ("deep", "cat"), ("deep", "bob"), ("loop", "ann")]
    edit_items = [("f1", "dan"), ("f2", "dan"), ("c1", "dan"), ("f1", "ann")]
    merged = PathPlan.merge([_VIEW, _EDIT])
    assert merged.start == "view"
    assert set(merged.steps) == {*_VIEW.steps, *_EDIT.steps}
    roots = [("document", "view")] * len(view_items) + [("folder", "edit")] * len(edit_items)
    together = await _search(ds, revision, merged, [*view_items, *edit_items], roots=roots)
    assert together[: len(view_items)] == await _search(ds, revision, _VIEW, view_items)
    assert together[len(view_items) :] == await _search(ds, revision, _EDIT, edit_items)
    assert together[len(view_items)].matches == ((1, None),)  # f1 -> f2, owned by dan

