"""The Postgres path search means what the reference walk means, on random worlds.

Random schemas and relationships (the property tests' strategies, drawn from fixed seeds)
are loaded into one PostgreSQL datastore in turn. For every permission with a plan, the
statement's outcome for every (object, user) item must equal
`search_paths_by_queries` over the same reader, and CheckBulk on Postgres must answer
every item as the evaluator alone does (`Engine(path_search=False)`), errors included.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebac.datastore.path_search import PathPlan, search_paths_by_queries
from rebac.datastore.postgres import PostgresDatastore
from rebac.datastore.protocol import Transaction
from rebac.engine import Engine
from rebac.engine.path_plan import compile_path_plan
from rebac.engine.reachability import Reachability
from rebac.engine.requests import CheckRequest, CheckResult
from rebac.errors import RebacError
from rebac.schema import compile_schema
from rebac.tuples import ObjectRef, RelationshipUpdate, SubjectRef, UpdateOperation, rel
from tests.property.strategies import OBJECT_IDS, OBJECT_TYPES, USER_IDS, World, worlds

WORLDS = 25
USERS = (*USER_IDS, "u9")


def _draw_worlds(count: int) -> list[World]:
    drawn: list[World] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(worlds(max_relationships=16), st.randoms())
    def collect(world: World, _rng: random.Random) -> None:
        drawn.append(world)

    collect()
    return drawn


async def _replace_world(ds: PostgresDatastore, world: World, previous: World | None) -> object:
    async def body(tx: Transaction) -> None:
        if previous is not None and previous.relationships:
            await tx.write_relationships(
                [RelationshipUpdate(UpdateOperation.DELETE, rel(r)) for r in previous.relationships]
            )
        await tx.write_schema(world.schema)
        if world.relationships:
            await tx.write_relationships(
                [RelationshipUpdate(UpdateOperation.TOUCH, rel(r)) for r in world.relationships]
            )

    return await ds.read_write_tx(body)


async def test_statement_and_engine_agree_with_the_reference(postgres_datastore: PostgresDatastore) -> None:
    planned = 0
    previous: World | None = None
    for world in _draw_worlds(WORLDS):
        revision = await _replace_world(postgres_datastore, world, previous)
        previous = world
        reader = postgres_datastore.snapshot_reader(revision)  # type: ignore[arg-type]
        schema = compile_schema(world.schema)
        reach = Reachability(schema)
        items = [(oid, user) for oid in OBJECT_IDS for user in USERS]
        requests: list[CheckRequest] = []
        plans = []
        for otype in OBJECT_TYPES:
            for permission in ("mem", "pva", "pvb"):
                requests.extend(
                    CheckRequest(ObjectRef(otype, oid), permission, SubjectRef("user", user)) for oid, user in items
                )
                plan = compile_path_plan(schema, reach, otype, permission, "user")
                if plan is None:
                    continue
                planned += 1
                plans.append(plan)
                for max_steps, max_levels in ((plan.max_steps(50), 50), (2, 2)):
                    got = await reader.search_paths(plan.search, items, max_steps=max_steps, max_levels=max_levels)
                    want = await search_paths_by_queries(
                        reader, plan.search, items, max_steps=max_steps, max_levels=max_levels
                    )
                    assert got == want, (world, otype, permission, max_steps)
        if plans:  # every plan's items in one call, as CheckBulk asks them
            merged = PathPlan.merge([plan.search for plan in plans])
            roots = [(plan.search.resource_type, plan.search.start) for plan in plans for _ in items]
            every = [item for _ in plans for item in items]
            got = await reader.search_paths(merged, every, max_steps=6, max_levels=50, roots=roots)
            want = await search_paths_by_queries(reader, merged, every, max_steps=6, max_levels=50, roots=roots)
            assert got == want, world
        for max_depth in (50, 3):
            fast = await Engine(cache_size=0, max_depth=max_depth).check_bulk(reader, requests)
            slow = await Engine(cache_size=0, max_depth=max_depth, path_search=False).check_bulk(reader, requests)
            for request, a, b in zip(requests, fast, slow, strict=True):
                assert type(a) is type(b), (world, request, a, b)
                if isinstance(a, CheckResult):
                    assert a == b, (world, request, a, b)
                else:
                    assert isinstance(a, RebacError)
                    assert str(a) == str(b), (world, request, a, b)
    assert planned >= 10, f"only {planned} permissions had a plan: the worlds no longer exercise the search"
