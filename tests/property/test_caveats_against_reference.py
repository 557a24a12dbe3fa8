"""The engine agrees with a three-valued oracle on random caveated worlds and contexts.

Worlds come from `strategies.worlds` with every allowed subject type also allowed under
three boolean caveats, and each relationship randomly caveated. Each context leaves every
parameter absent, true or false, so answers include CONDITIONAL with missing-parameter lists.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rebac.caveats  # noqa: F401 - loads the CEL libraries (they raise the recursion limit) before hypothesis runs
from rebac.engine import Engine
from rebac.engine.requests import CheckRequest, CheckResult, Permissionship
from rebac.schema import compile_schema
from rebac.testing import memory_datastore
from rebac.tuples import ObjectRef, Relationship, SubjectRef

from .caveat_reference import CaveatOracle, K, k_not, k_or
from .strategies import OBJECT_IDS, OBJECT_TYPES, USER_IDS, World, worlds

CAVEATS = """
caveat is_a(a bool) { a }
caveat a_or_b(a bool, b bool) { a || b }
caveat not_c(c bool) { !c }
"""


def _param(name: str) -> callable:  # type: ignore[valid-type]
    def value(ctx: Mapping[str, bool]) -> K:
        return K(ctx[name]) if name in ctx else K(None, frozenset({name}))

    return value


SEMANTICS = {
    "is_a": _param("a"),
    "a_or_b": lambda ctx: k_or(_param("a")(ctx), _param("b")(ctx)),
    "not_c": lambda ctx: k_not(_param("c")(ctx)),
}
PERMISSIONS = ("mem", "pva", "pvb")
FRESH_USER = "u9"


def _caveated_schema(schema: str) -> str:
    """Allow every subject type of every relation also `with` each caveat."""

    def widen(match: re.Match[str]) -> str:
        entries = [e.strip() for e in match.group(2).split("|")]
        wide = [*entries, *(f"{e} with {c}" for e in entries for c in SEMANTICS)]
        return f"{match.group(1)}{' | '.join(wide)}"

    return CAVEATS + re.sub(r"(relation \w+: )(.*)", widen, schema)


@st.composite
def caveated(draw: st.DrawFn) -> tuple[World, tuple[str, ...], dict[str, bool]]:
    """A world whose relationships carry random caveats, and a random partial context."""
    world = draw(worlds(max_relationships=10))
    rels = tuple(
        r + draw(st.sampled_from(("", "", "[is_a]", "[a_or_b]", "[not_c]"))) for r in world.relationships
    )
    context = {
        name: value
        for name in ("a", "b", "c")
        if (value := draw(st.sampled_from((None, True, False)))) is not None
    }
    return World(_caveated_schema(world.schema), world.relationships), rels, context


def _expected(value: K) -> CheckResult:
    if value.value is None:
        return CheckResult(Permissionship.CONDITIONAL, tuple(sorted(value.missing)))
    return CheckResult(Permissionship.HAS_PERMISSION if value.value else Permissionship.NO_PERMISSION)


async def _compare(world: World, texts: tuple[str, ...], context: dict[str, bool]) -> None:
    schema = compile_schema(world.schema)
    rels = [Relationship.parse(t) for t in texts]
    users = (*USER_IDS, FRESH_USER)
    objects = {("user", u) for u in users} | {(t, i) for t in OBJECT_TYPES for i in OBJECT_IDS}
    oracle = CaveatOracle(schema, rels, objects, SEMANTICS, context)
    ds, revision = await memory_datastore(world.schema, rels)
    reader = ds.snapshot_reader(revision)
    engine = Engine()
    requests = [
        CheckRequest(ObjectRef(t, i), p, SubjectRef("user", u), context=context)
        for t in OBJECT_TYPES
        for i in OBJECT_IDS
        for p in PERMISSIONS
        for u in users
    ]
    results = await engine.check_bulk(reader, requests)
    for req, got in zip(requests, results, strict=True):
        want = _expected(oracle.get((req.resource.type, req.resource.id, req.permission), req.subject.id))
        assert got == want, (world.schema, texts, context, req, got, want)
    for t in OBJECT_TYPES:
        for p in PERMISSIONS:
            for u in USER_IDS:
                found = {
                    f.resource_id: CheckResult(f.permissionship, f.missing_context)
                    async for f in engine.lookup_resources(reader, t, p, SubjectRef("user", u), context=context)
                }
                want_found = {
                    i: _expected(oracle.get((t, i, p), u))
                    for i in OBJECT_IDS
                    if oracle.get((t, i, p), u).value is not False
                }
                assert found == want_found, (world.schema, texts, context, t, p, u)


class TestCaveatedEngineAgainstReference:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(caveated())
    def test_engine_matches_three_valued_oracle(self, case: tuple[World, tuple[str, ...], dict[str, bool]]) -> None:
        """Check and LookupResources equal the Kleene oracle, CONDITIONAL answers and missing lists included."""
        asyncio.run(_compare(*case))
