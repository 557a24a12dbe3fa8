"""Every case of cases.jsonl through the engine API: checks, expected lookups, and Check == lookups."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from rebac.engine.requests import CheckRequest, Permissionship
from rebac.errors import RebacError
from rebac.tuples import ObjectRef, Relationship, SubjectRef
from tests.consistency.conformance_data import (
    CASES,
    FILE_FORMAT_FLAGS,
    case_param,
    engine_or_skip,
    skip_reason,
)

_EXPECTED = {
    True: Permissionship.HAS_PERMISSION,
    False: Permissionship.NO_PERMISSION,
    "caveated": Permissionship.CONDITIONAL,
}
_CONSISTENCY_SAMPLE = 400  # bounded (resource, permission, subject) triples per case in the fast run


async def _load(case: dict[str, Any]) -> Any:
    from rebac.testing import memory_datastore  # noqa: PLC0415 - imported per test: keeps collection light

    return await memory_datastore(case["schema"], case["relationships"])


def _skip_if_needed(case: dict[str, Any]) -> None:
    reason = skip_reason(case)
    if reason:
        pytest.skip(reason)


async def _lookup_subject_keys(engine: Any, reader: Any, resource: ObjectRef, permission: str, subject_type: str, *, now: datetime) -> set[str]:
    """LookupSubjects results in the conformance format: ids, and `* - [a, b]` for wildcards."""
    found: set[str] = set()
    async for item in engine.lookup_subjects(reader, resource, permission, subject_type, now=now):
        if item.subject.is_wildcard and item.excluded:
            found.add("* - [" + ", ".join(sorted(e.id for e in item.excluded)) + "]")
        else:
            found.add(item.subject.id)
    return found


class TestConformanceCasesThroughEngine:
    @pytest.mark.parametrize("case", [case_param(c) for c in CASES])
    async def test_case_checks_and_lookups_match_expectations(self, case: dict[str, Any]) -> None:
        """Each case's checks (and expected lookups) give exactly the expected answers, or it fails to load when it must."""
        if case.get("expect_load_error"):
            if set(case.get("flags", [])) & set(FILE_FORMAT_FLAGS):
                pytest.skip("the load error is about the file layout, not its data: covered by the validation-file run")
            if any("unparseable" in note for note in case.get("notes", [])):
                pytest.skip("the unparseable relationship is not in the case data: covered by the validation-file run")
            with pytest.raises(RebacError):
                await _load(case)
            return
        _skip_if_needed(case)
        engine = engine_or_skip()
        ds, revision = await _load(case)
        reader = ds.snapshot_reader(revision)
        now = datetime.now(UTC)
        mismatches: list[str] = []
        for check in case["checks"]:
            request = CheckRequest(
                ObjectRef.parse(check["resource"]),
                check["permission"],
                SubjectRef.parse(check["subject"]),
                context=check.get("context"),
            )
            label = f"{check['resource']}#{check['permission']}@{check['subject']}"
            if check["expected"] == "error":
                try:
                    result = await engine.check(reader, request, now=now)
                except RebacError:
                    continue
                mismatches.append(f"{label}: expected an error, got {result.permissionship.value}")
                continue
            try:
                result = await engine.check(reader, request, now=now)
            except RebacError as err:
                mismatches.append(f"{label}: expected {check['expected']}, got error {err}")
                continue
            if result.permissionship is not _EXPECTED[check["expected"]]:
                mismatches.append(f"{label}: expected {check['expected']}, got {result.permissionship.value}")
        for lookup in case.get("lookups", []):
            if lookup["kind"] == "resources":
                subject = SubjectRef.parse(lookup["subject"])
                got = {
                    r.resource_id
                    async for r in engine.lookup_resources(reader, lookup["resource_type"], lookup["permission"], subject, now=now)
                }
                if got != set(lookup["expected"]):
                    mismatches.append(f"lookup_resources {lookup}: missing {set(lookup['expected']) - got}, unexpected {got - set(lookup['expected'])}")
            elif lookup["kind"] == "subjects":
                resource = ObjectRef.parse(lookup["resource"])
                got = set()
                for subject_type in lookup["subject_filters"]:
                    got |= await _lookup_subject_keys(engine, reader, resource, lookup["permission"], subject_type, now=now)
                if got != set(lookup["expected"]):
                    mismatches.append(f"lookup_subjects {lookup['resource']}#{lookup['permission']}: missing {set(lookup['expected']) - got}, unexpected {got - set(lookup['expected'])}")
        assert not mismatches, "\n".join(mismatches[:50])


def _world(case: dict[str, Any]) -> tuple[list[ObjectRef], list[SubjectRef]]:
    """Every resource object and every plain (non-wildcard) subject mentioned by the case."""
    resources: set[ObjectRef] = set()
    subjects: set[SubjectRef] = set()
    for text in case["relationships"]:
        rel = Relationship.parse(text)
        resources.add(rel.resource)
        if rel.subject.relation is None and not rel.subject.is_wildcard:
            subjects.add(rel.subject)
        elif not rel.subject.is_wildcard:
            resources.add(rel.subject.object)
    for check in case["checks"]:
        resources.add(ObjectRef.parse(check["resource"]))
        subject = SubjectRef.parse(check["subject"])
        if subject.relation is None and not subject.is_wildcard:
            subjects.add(subject)
    return sorted(resources), sorted(subjects)


async def _check_equals_lookups(case: dict[str, Any], sample: int | None) -> None:
    engine = engine_or_skip()
    ds, revision = await _load(case)
    reader = ds.snapshot_reader(revision)
    schema = await reader.read_schema()
    now = datetime.now(UTC)
    resources, subjects = _world(case)
    triples = [
        (resource, member.name, subject)
        for resource in resources
        if (definition := schema.definition(resource.type)) is not None
        for member in definition.members
        for subject in subjects
    ]
    if sample is not None and len(triples) > sample:
        triples = random.Random(case["id"]).sample(triples, sample)  # deterministic per case
    resources_cache: dict[tuple[str, str, SubjectRef], set[str]] = {}
    subjects_cache: dict[tuple[ObjectRef, str, str], tuple[set[str], set[str] | None]] = {}
    mismatches: list[str] = []
    for resource, permission, subject in triples:
        allowed = (await engine.check(reader, CheckRequest(resource, permission, subject), now=now)).allowed
        lr_key = (resource.type, permission, subject)
        if lr_key not in resources_cache:
            resources_cache[lr_key] = {
                r.resource_id
                async for r in engine.lookup_resources(reader, resource.type, permission, subject, now=now)
                if r.permissionship is Permissionship.HAS_PERMISSION
            }
        ls_key = (resource, permission, subject.type)
        if ls_key not in subjects_cache:
            ids: set[str] = set()
            wildcard_excluded: set[str] | None = None
            async for item in engine.lookup_subjects(reader, resource, permission, subject.type, now=now):
                if item.permissionship is not Permissionship.HAS_PERMISSION:
                    continue
                if item.subject.is_wildcard:
                    wildcard_excluded = {e.id for e in item.excluded}
                else:
                    ids.add(item.subject.id)
            subjects_cache[ls_key] = (ids, wildcard_excluded)
        in_lr = resource.id in resources_cache[lr_key]
        ids, excluded = subjects_cache[ls_key]
        in_ls = subject.id in ids or (excluded is not None and subject.id not in excluded)
        if not allowed == in_lr == in_ls:
            mismatches.append(f"{resource}#{permission}@{subject}: check={allowed} lookup_resources={in_lr} lookup_subjects={in_ls}")
    assert not mismatches, "\n".join(mismatches[:50])


_LOOKUP_CASES = [c for c in CASES if c.get("lookups") and not c.get("expect_load_error")]


class TestCheckAgreesWithLookups:
    @pytest.mark.parametrize("case", [case_param(c) for c in _LOOKUP_CASES])
    async def test_check_equals_lookup_membership_sampled(self, case: dict[str, Any]) -> None:
        """For a bounded deterministic sample of (resource, permission, subject), Check == LookupResources == LookupSubjects membership."""
        _skip_if_needed(case)
        await _check_equals_lookups(case, _CONSISTENCY_SAMPLE)

    @pytest.mark.slow
    @pytest.mark.parametrize("case", [case_param(c) for c in _LOOKUP_CASES])
    async def test_check_equals_lookup_membership_exhaustive(self, case: dict[str, Any]) -> None:
        """For every resource, permission and subject of the case, Check == LookupResources == LookupSubjects membership."""
        _skip_if_needed(case)
        await _check_equals_lookups(case, None)
