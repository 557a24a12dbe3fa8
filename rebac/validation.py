"""Running validation files: load into a fresh memory datastore, check assertions and expected relations.

`run_validation_file(path)` never raises for a problem in the file: a file that cannot be
loaded gives a `FileResult` with `error` set (and no assertion results); an engine error
on one assertion makes that assertion's `actual` ``"error"`` (fail closed: an error never
satisfies an assertion, not even assertFalse).

Expected relations (``validation:`` blocks) compare *subjects*, the way zed's expected
relations do, but computed from our engine rather than from an expand tree:

- terminal subjects (``user:tom``, ``user:*`` with its exclusions) come from
  LookupSubjects for every type the schema allows as a plain or wildcard subject; a
  CONDITIONAL result is written ``user:tom[...]``;
- subject sets (``group:eng#member``) are found when a relationship ``X#r@group:eng#member``
  is live and the subject set ``X#r`` is itself reachable from ``resource#permission``
  (a Check with ``X#r`` as the subject).

The ``is <resource#relation>`` paths after each expected subject are parsed but not
compared: zed computes them from its own expand-tree membership algebra, which we do not
reproduce exactly (see `ExpectedSubject.paths`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rebac.datastore.filters import RelationshipFilter
from rebac.datastore.protocol import Reader
from rebac.engine.requests import CheckRequest, Permissionship
from rebac.errors import InvalidRequestError, RebacError
from rebac.tuples import RelationshipUpdate, SubjectRef, UpdateOperation
from rebac.validationfile import (
    Assertion,
    AssertionKind,
    ExpectedRelations,
    ValidationFile,
    load_validation_file,
    subject_key,
)

if TYPE_CHECKING:
    from rebac.engine import Engine

__all__ = [
    "AssertionResult",
    "ExpectedRelationsResult",
    "FileResult",
    "results_document",
    "run_loaded_file",
    "run_validation_file",
]

_WRITE_BATCH = 1000

_ACTUAL = {
    Permissionship.HAS_PERMISSION: AssertionKind.TRUE.value,
    Permissionship.NO_PERMISSION: AssertionKind.FALSE.value,
    Permissionship.CONDITIONAL: AssertionKind.CAVEATED.value,
}


@dataclass(frozen=True, slots=True)
class AssertionResult:
    """One assertion's outcome; `actual` is ``"true"|"false"|"caveated"|"error"``."""

    assertion: str
    expected: str
    actual: str
    line: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the engine's answer is the expected one (an error never is)."""
        return self.actual == self.expected

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form (exactly these keys)."""
        return {"assertion": self.assertion, "expected": self.expected, "actual": self.actual, "ok": self.ok}


@dataclass(frozen=True, slots=True)
class ExpectedRelationsResult:
    """One ``validation:`` entry's outcome: subject keys missing from / unexpected in the engine's.

    `error` is set (and `missing` lists every expected subject) if the engine failed.
    """

    resource: str
    permission: str
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    line: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the expected and the computed subjects are the same."""
        return self.error is None and not self.missing and not self.unexpected

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form (exactly these keys)."""
        return {
            "resource": self.resource,
            "permission": self.permission,
            "ok": self.ok,
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
        }


@dataclass(frozen=True)
class FileResult:
    """The outcome of one validation file; `error` is the load error, if any."""

    file: str
    error: str | None = None
    assertions: tuple[AssertionResult, ...] = ()
    validation: tuple[ExpectedRelationsResult, ...] = ()
    relationship_count: int = 0

    @property
    def ok(self) -> bool:
        """True when the file loaded and every assertion and expected relation holds."""
        return (
            self.error is None and all(a.ok for a in self.assertions) and all(v.ok for v in self.validation)
        )

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form of this file (exactly the documented keys)."""
        return {
            "file": self.file,
            "ok": self.ok,
            "error": self.error,
            "assertions": [a.to_json() for a in self.assertions],
            "validation": [v.to_json() for v in self.validation],
        }


def results_document(results: Sequence[FileResult]) -> dict[str, Any]:
    """The one JSON document `rebac validate --json` prints: ``{"files": [...]}``."""
    return {"files": [r.to_json() for r in results]}


async def run_validation_file(
    path: str | Path, *, engine: Engine | None = None, now: datetime | None = None
) -> FileResult:
    """Load `path` and run it; load problems become `FileResult.error` (never raised).

    `now` is the evaluation time for expirations and time caveats (default: the real
    current time). A fresh `Engine()` is used unless `engine` is given.
    """
    try:
        loaded = load_validation_file(path)
    except InvalidRequestError as err:
        return FileResult(file=str(path), error=str(err))
    return await run_loaded_file(loaded, engine=engine, now=now)


async def run_loaded_file(
    loaded: ValidationFile, *, engine: Engine | None = None, now: datetime | None = None
) -> FileResult:
    """Run an already loaded file on a fresh memory datastore (see `run_validation_file`)."""
    from rebac.datastore.memory import MemoryDatastore  # noqa: PLC0415 - keeps this import light
    from rebac.engine import Engine  # noqa: PLC0415 - the engine lands separately
    from rebac.writes import write_relationships, write_schema  # noqa: PLC0415

    moment = now if now is not None else datetime.now(UTC)
    ds = MemoryDatastore()
    try:
        revision = await write_schema(ds, loaded.schema_text)
        updates = [
            RelationshipUpdate(UpdateOperation.TOUCH, item.relationship) for item in loaded.relationships
        ]
        for start in range(0, len(updates), _WRITE_BATCH):
            revision = await write_relationships(ds, updates[start : start + _WRITE_BATCH])
    except RebacError as err:
        await ds.aclose()
        return FileResult(file=loaded.path, error=f"{loaded.path}: cannot load: {err}")
    try:
        reader = ds.snapshot_reader(revision)
        evaluator = engine if engine is not None else Engine()
        assertions = tuple([await _run_assertion(evaluator, reader, a, moment) for a in loaded.assertions])
        expected = tuple([await _run_expected(evaluator, reader, loaded, e, moment) for e in loaded.expected])
    finally:
        await ds.aclose()
    return FileResult(
        file=loaded.path,
        assertions=assertions,
        validation=expected,
        relationship_count=len(loaded.relationships),
    )


async def _run_assertion(
    engine: Engine, reader: Reader, assertion: Assertion, now: datetime
) -> AssertionResult:
    rel = assertion.relationship
    request = CheckRequest(rel.resource, rel.relation, rel.subject, context=assertion.context)
    expected = assertion.kind.value
    try:
        result = await engine.check(reader, request, now=now)
    except RebacError as err:
        return AssertionResult(assertion.text, expected, "error", assertion.line, str(err))
    return AssertionResult(assertion.text, expected, _ACTUAL[result.permissionship], assertion.line)


async def _run_expected(
    engine: Engine, reader: Reader, loaded: ValidationFile, expected: ExpectedRelations, now: datetime
) -> ExpectedRelationsResult:
    want = {s.key for s in expected.subjects}
    try:
        found = await found_subjects(engine, reader, loaded, expected, now)
    except RebacError as err:
        return ExpectedRelationsResult(
            str(expected.resource), expected.permission, tuple(sorted(want)), (), expected.line, str(err)
        )
    return ExpectedRelationsResult(
        resource=str(expected.resource),
        permission=expected.permission,
        missing=tuple(sorted(want - found)),
        unexpected=tuple(sorted(found - want)),
        line=expected.line,
    )


async def found_subjects(
    engine: Engine, reader: Reader, loaded: ValidationFile, expected: ExpectedRelations, now: datetime
) -> set[str]:
    """The subject keys the engine finds for `expected.resource#expected.permission`.

    See the module docstring for how terminal subjects and subject sets are found.
    """
    terminal_types = sorted(
        {
            allowed.type
            for definition in loaded.schema.definitions
            for relation in definition.relations
            for allowed in relation.allowed
            if allowed.relation is None
        }
    )
    found: set[str] = set()
    for subject_type in terminal_types:
        async for item in engine.lookup_subjects(
            reader, expected.resource, expected.permission, subject_type, now=now
        ):
            found.add(
                subject_key(
                    item.subject,
                    caveated=item.permissionship is Permissionship.CONDITIONAL,
                    exceptions=[(e, False) for e in item.excluded],
                )
            )
    containers: dict[SubjectRef, list[tuple[SubjectRef, bool]]] = {}
    async for rel in reader.query_relationships(RelationshipFilter()):
        if rel.subject.relation is None or (rel.expiration is not None and rel.expiration <= now):
            continue
        container = SubjectRef(rel.resource.type, rel.resource.id, rel.relation)
        containers.setdefault(container, []).append((rel.subject, rel.caveat is not None))
    for container, members in containers.items():
        request = CheckRequest(expected.resource, expected.permission, container)
        result = await engine.check(reader, request, now=now)
        if result.permissionship is Permissionship.NO_PERMISSION:
            continue
        conditional = result.permissionship is Permissionship.CONDITIONAL
        for subject, caveated in members:
            found.add(subject_key(subject, caveated=caveated or conditional))
    # A subject set reached both with and without a caveat is not caveated.
    return {key for key in found if not (key.endswith("[...]") and key.removesuffix("[...]") in found)}
