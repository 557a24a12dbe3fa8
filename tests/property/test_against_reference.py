"""The engine agrees with the brute-force oracle on Check, LookupResources and LookupSubjects."""

from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import HealthCheck, given, settings

from rebac.engine import Engine
from rebac.engine.requests import CheckRequest, Permissionship
from rebac.schema import compile_schema
from rebac.testing import memory_datastore
from rebac.tuples import ObjectRef, Relationship, SubjectRef

from .reference import Oracle
from .strategies import OBJECT_IDS, OBJECT_TYPES, USER_IDS, World, worlds

FRESH_USER = "u9"  # appears in no relationship: stands for "any other user"
PERMISSIONS = ("mem", "pva", "pvb")


def _subjects() -> list[SubjectRef]:
    plain = [SubjectRef("user", u) for u in (*USER_IDS, FRESH_USER)]
    sets = [SubjectRef(t, i, r) for t in OBJECT_TYPES for i in OBJECT_IDS for r in ("mem", "pva")]
    return plain + sets


async def _compare(world: World) -> None:
    schema = compile_schema(world.schema)
    rels = [Relationship.parse(r) for r in world.relationships]
    universe = (*(("user", u) for u in (*USER_IDS, FRESH_USER)), *((t, i) for t in OBJECT_TYPES for i in OBJECT_IDS))
    oracle = Oracle(schema, rels, universe)
    ds, revision = await memory_datastore(world.schema, rels)
    reader = ds.snapshot_reader(revision)
    engine = Engine()
    subjects = _subjects()
    requests = [
        CheckRequest(ObjectRef(t, i), p, s)
        for t in OBJECT_TYPES
        for i in OBJECT_IDS
        for p in PERMISSIONS
        for s in subjects
    ]
    results = await engine.check_bulk(reader, requests)
    for req, result in zip(requests, results, strict=True):
        assert not isinstance(result, Exception), (req, result)
        s = req.subject
        expected = oracle.has(req.resource.type, req.resource.id, req.permission, (s.type, s.id, s.relation))
        assert result.allowed == expected, (world, req, result)
    # A single check (not bulk) agrees too, on a sample.
    for req in requests[:: max(1, len(requests) // 25)]:
        single = await engine.check(reader, req)
        s = req.subject
        assert single.allowed == oracle.has(req.resource.type, req.resource.id, req.permission, (s.type, s.id, s.relation))

    for t in OBJECT_TYPES:
        for p in PERMISSIONS:
            for s in [*subjects[: len(USER_IDS) + 1], SubjectRef("aaa", "1", "mem")]:
                got = {f.resource_id async for f in engine.lookup_resources(reader, t, p, s)}
                want = {i for i in OBJECT_IDS if oracle.has(t, i, p, (s.type, s.id, s.relation))}
                assert got == want, (world, t, p, s, got, want)
            for i in OBJECT_IDS:
                found = [f async for f in engine.lookup_subjects(reader, ObjectRef(t, i), p, "user")]
                concrete = {f.subject.id for f in found if not f.subject.is_wildcard}
                wildcard = [f for f in found if f.subject.is_wildcard]
                excluded = {e.id for w in wildcard for e in w.excluded}
                for u in (*USER_IDS, FRESH_USER):
                    listed = u in concrete or (bool(wildcard) and u not in excluded)
                    assert listed == oracle.has(t, i, p, ("user", u, None)), (world, t, i, p, u, found)
                sets = [f async for f in engine.lookup_subjects(reader, ObjectRef(t, i), p, "bbb", subject_relation="mem")]
                got_sets = {f.subject.id for f in sets if f.permissionship is Permissionship.HAS_PERMISSION}
                want_sets = {j for j in OBJECT_IDS if oracle.has(t, i, p, ("bbb", j, "mem"))}
                assert got_sets == want_sets, (world, t, i, p, sets)


class TestEngineAgainstReference:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(worlds())
    def test_engine_matches_oracle(self, world: World) -> None:
        """Check, LookupResources and LookupSubjects equal the fixpoint oracle on random worlds."""
        asyncio.run(_compare(world))

    @pytest.mark.slow
    @pytest.mark.skipif(not os.environ.get("REBAC_SLOW"), reason="slow (~90 s): set REBAC_SLOW=1 to run it")
    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(worlds(max_relationships=20))
    def test_engine_matches_oracle_many(self, world: World) -> None:
        """The same agreement over many more and larger random worlds."""
        asyncio.run(_compare(world))
