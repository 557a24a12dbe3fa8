"""The conformance data through `rebac validate --json`: each case as a temp YAML, and every validation file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rebac.cli import main
from tests.consistency.case_runner import checks_to_run, is_large
from tests.consistency.conformance_data import (
    CASES,
    VALIDATION_DIR,
    FileExpectation,
    case_param,
    engine_or_skip,
    expected_load_error,
    file_expectations,
    skip_reason,
)

_ASSERT_KEYS = {True: "assertTrue", False: "assertFalse", "caveated": "assertCaveated"}
_INVERTED = "expectations_inverted_from_failing_fixture"


def case_to_yaml(case: dict[str, Any], *, exhaustive: bool = True) -> str:
    """A validation file holding the case: schema, relationships, assertions, expected relations.

    Values are JSON strings (valid YAML). Checks expecting "error" cannot be written as
    assertions and are left out (the engine-API run covers them). File-layout flags are
    reproduced (legacy keys, schema plus schemaFile, a missing schemaFile). Without
    `exhaustive`, a large case keeps only its sampled checks (`checks_to_run`).
    """
    flags = set(case.get("flags", []))
    lines: list[str] = []
    if "schemafile_missing" in flags:
        lines.append('schemaFile: "./does-not-exist.zed"')
    elif case["schema"]:
        lines.append(f"schema: {json.dumps(case['schema'])}")
    if "schema_and_schemafile" in flags:
        lines.append('schemaFile: "./other.zed"')
    if "legacy_format" in flags:
        lines.append('validation_tuples: ["foo"]')
    lines.append(f"relationships: {json.dumps(chr(10).join(case['relationships']))}")
    assertions: dict[str, list[str]] = {}
    for check in checks_to_run(case, exhaustive=exhaustive):
        if check["expected"] == "error":
            continue
        text = f"{check['resource']}#{check['permission']}@{check['subject']}"
        if check.get("context") is not None:
            text += " with " + json.dumps(check["context"])
        assertions.setdefault(_ASSERT_KEYS[check["expected"]], []).append(text)
    if assertions:
        lines.append("assertions:")
        lines.extend(f"  {key}: {json.dumps(items)}" for key, items in assertions.items())
    expected = [lk for lk in case.get("lookups", []) if lk["kind"] == "expected_subjects"]
    if expected:
        lines.append("validation:")
        lines.extend(f"  {json.dumps(lk['resource'] + '#' + lk['permission'])}: {json.dumps(lk['expected'])}" for lk in expected)
    return "\n".join(lines) + "\n"


def run_validate_json(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, dict[str, Any]]:
    """Run `rebac validate --json PATHS` in-process; (exit code, the parsed JSON document)."""
    code = main(["validate", "--json", *map(str, paths)])
    out = capsys.readouterr().out
    return code, json.loads(out)


def _case_through_validate(case: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], *, exhaustive: bool) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(case_to_yaml(case, exhaustive=exhaustive))
    if expected_load_error(case):
        if any("unparseable" in note for note in case.get("notes", [])):
            pytest.skip("the unparseable relationship is not in the case data: covered by the validation-file run")
        code, document = run_validate_json(capsys, path)
        assert code == 2, document
        assert document["files"][0]["error"]
        assert document["files"][0]["ok"] is False
        return
    reason = skip_reason(case)
    if reason:
        pytest.skip(reason)
    engine_or_skip()
    code, document = run_validate_json(capsys, path)
    (result,) = document["files"]
    assert result["error"] is None
    failed = [a for a in result["assertions"] if not a["ok"]] + [v for v in result["validation"] if not v["ok"]]
    if _INVERTED in case.get("flags", []):
        # Upstream fixtures meant to fail: the case inverts the assertion, so the file
        # as written here holds; the original file is checked to fail below.
        assert code in (0, 1)
        return
    assert not failed, json.dumps(failed[:20], indent=1)
    assert code == 0
    expected_count = sum(1 for c in checks_to_run(case, exhaustive=exhaustive) if c["expected"] != "error")
    assert len(result["assertions"]) == expected_count


class TestConformanceCasesThroughValidate:
    @pytest.mark.parametrize("case", [case_param(c) for c in CASES])
    def test_case_as_validation_file(self, case: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A case written as a validation file ends as expected: exit 2 on load errors, else every (sampled, if large) assertion holds."""
        _case_through_validate(case, tmp_path, capsys, exhaustive=False)

    @pytest.mark.slow
    @pytest.mark.parametrize("case", [case_param(c) for c in CASES if is_large(c)])
    def test_large_case_as_validation_file_in_full(self, case: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A large case with every one of its checks as an assertion validates with exit 0."""
        _case_through_validate(case, tmp_path, capsys, exhaustive=True)


def _file_param(expectation: FileExpectation) -> Any:
    return pytest.param(expectation, id=str(expectation.path.relative_to(VALIDATION_DIR)))


class TestConformanceValidationFiles:
    @pytest.mark.parametrize("expectation", [_file_param(e) for e in file_expectations()])
    def test_validation_file_ends_as_upstream_expects(self, expectation: FileExpectation, capsys: pytest.CaptureFixture[str]) -> None:
        """Each upstream validation file exits 0 (all holds), 1 (meant to fail) or 2 (cannot load) like zed."""
        if expectation.skip:
            pytest.skip(expectation.skip)
        if expectation.exit_code != 2:
            engine_or_skip()
        code, document = run_validate_json(capsys, expectation.path)
        (result,) = document["files"]
        assert code == expectation.exit_code, json.dumps(result, indent=1)[:4000]
        assert (result["error"] is not None) == (expectation.exit_code == 2)
        assert result["ok"] is (expectation.exit_code == 0)
