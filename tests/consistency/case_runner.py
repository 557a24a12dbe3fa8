"""Runs one conformance case against any evaluator: the engine API or the gRPC API.

`run_case(case, evaluator)` returns the list of mismatches (empty when the case holds), so
the engine, the Postgres and the gRPC runs share one definition of "the case passes".

Large cases (more than `LARGE_CASE_RELATIONSHIPS` relationships: the steelthread data,
thousands of checks) run a deterministic sample of `FAST_CHECK_SAMPLE` checks and no
lookups in the default run; `exhaustive=True` (the `@pytest.mark.slow` twins) runs all.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from rebac.client import RebacClient
from rebac.datastore.filters import RelationshipFilter
from rebac.datastore.protocol import Datastore, Reader
from rebac.engine import Engine
from rebac.engine.requests import CheckRequest, FoundSubject, Permissionship
from rebac.errors import RebacError
from rebac.revision import Revision
from rebac.tuples import ObjectRef, Relationship, SubjectRef
from rebac.writes import delete_relationships, import_relationships, write_schema

LARGE_CASE_RELATIONSHIPS = 1000
FAST_CHECK_SAMPLE = 40

EXPECTED = {
    True: Permissionship.HAS_PERMISSION,
    False: Permissionship.NO_PERMISSION,
    "caveated": Permissionship.CONDITIONAL,
}


class Evaluator(Protocol):
    """**Protocol:** the three questions a conformance case asks, over one fixed world."""

    async def check(
        self, resource: ObjectRef, permission: str, subject: SubjectRef, context: dict[str, Any] | None
    ) -> Permissionship:
        """The permissionship; raises RebacError when the request is in error."""
        ...

    async def lookup_resources(self, resource_type: str, permission: str, subject: SubjectRef) -> set[str]:
        """Ids of every resource found (conditional ones included)."""
        ...

    async def lookup_subjects(
        self, resource: ObjectRef, permission: str, subject_type: str
    ) -> list[FoundSubject]:
        """Every subject of `subject_type` found."""
        ...


@dataclass
class EngineEvaluator:
    """The engine API over a reader at a fixed revision and a fixed `now`."""

    engine: Engine
    reader: Reader
    now: datetime

    async def check(
        self, resource: ObjectRef, permission: str, subject: SubjectRef, context: dict[str, Any] | None
    ) -> Permissionship:
        request = CheckRequest(resource, permission, subject, context=context)
        return (await self.engine.check(self.reader, request, now=self.now)).permissionship

    async def lookup_resources(self, resource_type: str, permission: str, subject: SubjectRef) -> set[str]:
        found = self.engine.lookup_resources(self.reader, resource_type, permission, subject, now=self.now)
        return {r.resource_id async for r in found}

    async def lookup_subjects(
        self, resource: ObjectRef, permission: str, subject_type: str
    ) -> list[FoundSubject]:
        found = self.engine.lookup_subjects(self.reader, resource, permission, subject_type, now=self.now)
        return [s async for s in found]


@dataclass
class GrpcEvaluator:
    """The gRPC API through `RebacClient` (fully consistent reads: the server's head revision)."""

    client: RebacClient

    async def check(
        self, resource: ObjectRef, permission: str, subject: SubjectRef, context: dict[str, Any] | None
    ) -> Permissionship:
        return (await self.client.check(resource, permission, subject, context=context)).permissionship

    async def lookup_resources(self, resource_type: str, permission: str, subject: SubjectRef) -> set[str]:
        found = self.client.lookup_resources_found(resource_type, permission, subject)
        return {r.resource_id async for r in found}

    async def lookup_subjects(
        self, resource: ObjectRef, permission: str, subject_type: str
    ) -> list[FoundSubject]:
        return [s async for s in self.client.lookup_subjects(resource, permission, subject_type)]


def engine_evaluator(engine: Engine, reader: Reader) -> EngineEvaluator:
    """An EngineEvaluator evaluating at the current wall-clock time (expirations, time caveats)."""
    return EngineEvaluator(engine, reader, datetime.now(UTC))


def is_large(case: dict[str, Any]) -> bool:
    """True for cases too big to run in full in the default (fast) run."""
    return len(case["relationships"]) > LARGE_CASE_RELATIONSHIPS


def checks_to_run(case: dict[str, Any], *, exhaustive: bool) -> list[dict[str, Any]]:
    """Every check, or for a large case in a fast run a deterministic sample (order kept)."""
    checks: list[dict[str, Any]] = case["checks"]
    if exhaustive or not is_large(case) or len(checks) <= FAST_CHECK_SAMPLE:
        return checks
    chosen = set(random.Random(case["id"]).sample(range(len(checks)), FAST_CHECK_SAMPLE))
    return [c for i, c in enumerate(checks) if i in chosen]


def subject_keys(found: Iterable[FoundSubject]) -> set[str]:
    """LookupSubjects results in the conformance format: ids, and ``* - [a, b]`` for wildcards."""
    keys: set[str] = set()
    for item in found:
        if item.subject.is_wildcard and item.excluded:
            keys.add("* - [" + ", ".join(sorted(e.id for e in item.excluded)) + "]")
        else:
            keys.add(item.subject.id)
    return keys


async def run_case(case: dict[str, Any], evaluator: Evaluator, *, exhaustive: bool = False) -> list[str]:
    """Every mismatch between `case`'s expectations and `evaluator`'s answers (empty: it holds).

    An expected ``"error"`` must raise RebacError; any other expectation must not error
    (fail closed: an error never counts as an answer).
    """
    mismatches: list[str] = []
    for check in checks_to_run(case, exhaustive=exhaustive):
        label = f"{check['resource']}#{check['permission']}@{check['subject']}"
        if check.get("context") is not None:
            label += f" with {check['context']}"
        args = (
            ObjectRef.parse(check["resource"]),
            check["permission"],
            SubjectRef.parse(check["subject"]),
            check.get("context"),
        )
        try:
            got = await evaluator.check(*args)
        except RebacError as err:
            if check["expected"] != "error":
                mismatches.append(f"{label}: expected {check['expected']}, got error {err}")
            continue
        if check["expected"] == "error":
            mismatches.append(f"{label}: expected an error, got {got.value}")
        elif got is not EXPECTED[check["expected"]]:
            mismatches.append(f"{label}: expected {check['expected']}, got {got.value}")
    if exhaustive or not is_large(case):
        mismatches.extend(await _lookup_mismatches(case, evaluator))
    return mismatches


async def _lookup_mismatches(case: dict[str, Any], evaluator: Evaluator) -> list[str]:
    mismatches: list[str] = []
    for lookup in case.get("lookups", []):
        if lookup["kind"] == "resources":
            subject = SubjectRef.parse(lookup["subject"])
            got = await evaluator.lookup_resources(lookup["resource_type"], lookup["permission"], subject)
            label = f"lookup_resources {lookup['resource_type']}#{lookup['permission']}@{subject}"
        elif lookup["kind"] == "subjects":
            resource = ObjectRef.parse(lookup["resource"])
            got = set()
            for subject_type in lookup["subject_filters"]:
                got |= subject_keys(await evaluator.lookup_subjects(resource, lookup["permission"], subject_type))
            label = f"lookup_subjects {resource}#{lookup['permission']}"
        else:
            continue  # expected_subjects: compared by the validate run (expected relations)
        want = set(lookup["expected"])
        if got != want:
            mismatches.append(f"{label}: missing {sorted(want - got)}, unexpected {sorted(got - want)}")
    return mismatches


async def replace_world(ds: Datastore, previous: dict[str, Any] | None, case: dict[str, Any]) -> Revision:
    """Make `ds` hold exactly `case`'s schema and relationships (after `previous`'s); the revision.

    One long-lived datastore serves many cases (one server per module): the previous case's
    relationships are deleted, then the schema is replaced and the relationships imported.
    Revisions keep increasing, so revision-keyed engine caches never mix two cases, which
    switching between fresh datastores (each starting again at revision 1) would do.
    """
    if previous is not None:
        for resource_type in sorted({Relationship.parse(r).resource.type for r in previous["relationships"]}):
            await delete_relationships(ds, RelationshipFilter(resource_type=resource_type))
    revision = await write_schema(ds, case["schema"])
    rels = [Relationship.parse(text) for text in case["relationships"]]
    if not rels:
        return revision
    return (await import_relationships(ds, _aiter(rels))).revision


async def _aiter(items: list[Relationship]) -> AsyncIterator[Relationship]:
    for item in items:
        yield item
