"""The shared conformance data (/work/shared/conformance) as test parameters, with skip rules.

A case or file that needs a feature rebac does not have yet is skipped with the feature
named, never passed silently. `engine_or_skip()` skips (naming the reason) only while the
engine module has not landed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conformance_paths import CONFORMANCE_DIR as CONFORMANCE
from tests.conformance_paths import VALIDATION_DIR

# Features rebac does not have yet: a case using one is skipped, the feature named.
# `self` (`use self`, `permission p = ... + self`) is not in our schema IR; upstream skips
# that file too (testconfigs/self.yaml.skip).
UNSUPPORTED_FEATURES = {"self": "the `self` keyword (`use self`) is not supported by the schema IR yet"}
UNRESOLVED_FLAGS = ("composable_schema_unresolved",)
# Load errors that come from the file's layout, not from its schema or relationships.
FILE_FORMAT_FLAGS = ("legacy_format", "schema_and_schemafile", "schemafile_missing")


def load_cases() -> list[dict[str, Any]]:
    """Every case of cases.jsonl (empty if the data is not on this machine)."""
    path = CONFORMANCE / "cases.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


CASES = load_cases()


def case_param(case: dict[str, Any]) -> Any:
    """A pytest param for `case`, with the case id as test id."""
    return pytest.param(case, id=case["id"])


def skip_reason(case: dict[str, Any], *, from_file: bool = False) -> str | None:
    """Why `case` cannot run yet (feature named), or None.

    Cases that must fail to load are never skipped: they fail with or without the feature.
    `from_file`: the case runs from its original file, whose imports resolve beside it.
    """
    if case.get("expect_load_error"):
        return None
    for flag in () if from_file else UNRESOLVED_FLAGS:
        if flag in case.get("flags", []):
            return f"imports resolve only beside the original file (flag {flag}; run from the file)"
    for feature, reason in UNSUPPORTED_FEATURES.items():
        if feature in case.get("features", []):
            upstream = "; upstream skips this file too" if "upstream_skipped" in case.get("flags", []) else ""
            return f"{reason} (feature `{feature}`{upstream})"
    return None


# `zed import` fixtures with relationships only: upstream imports them with `--schema=false`
# into a server already holding import-test/relations-only-schema.zed. As validation files
# they cannot load (zed validate: no schema, exactly like validate-test/missing-schema.yaml;
# SpiceDB's loader: `resource` has no relation `user` in the file's own schema).
IMPORT_FIXTURE_SCHEMA = VALIDATION_DIR / "zed/internal/cmd/import-test/relations-only-schema.zed"
IMPORT_ONLY_FIXTURES = {
    "zed:internal/cmd/import-test/relations-only-validation-file.yaml": "no schema in the file",
    "zed:internal/cmd/import-test/relations-only-validation-file-different-schema.yaml": (
        "the file's schema has no relation `resource#user`"
    ),
}


def expected_load_error(case: dict[str, Any]) -> str | None:
    """Why loading `case` as a validation file must fail (upstream's reason), or None."""
    reason = case.get("expect_load_error") or IMPORT_ONLY_FIXTURES.get(case["id"])
    return str(reason) if reason else None


def engine_or_skip() -> Any:
    """A new Engine, or a skip naming that the engine has not landed."""
    try:
        from rebac.engine import Engine  # noqa: PLC0415 - the engine may not have landed
    except ImportError as exc:  # pragma: no cover - only before the engine lands
        pytest.skip(f"rebac.engine.Engine is not available yet: {exc}")
    return Engine()


@dataclass(frozen=True)
class FileExpectation:
    """How `rebac validate` must end on a conformance file: exit code, or a skip reason."""

    path: Path
    exit_code: int
    skip: str | None = None


# zed validate-test `.zed` fixtures (bare schemas), with upstream's expected outcome from
# zed's validate_test.go and the fixture's content.
_ZED_SCHEMA_FILES = {
    "composable-schema-imported-with-error.zed": (2, None),  # `unknownrel` is undefined
    "composable-schema-imports-file-with-error.zed": (2, None),  # imports the file above
    "composable-schema-root.zed": (0, None),
    "composable-schema-user.zed": (0, None),
    "composable-schema-warning-root.zed": (0, None),
    "composable-schema-with-import-error-imported.zed": (2, None),
    "composable-schema-with-import-error-root.zed": (2, None),
    "external-schema.zed": (0, None),
    "invalid-schema.zed": (2, None),
    "missing-relation.zed": (2, None),
    "nested-composable-schema.zed": (2, None),  # its import imports a missing file
    "nonexistant-import.zed": (2, None),
    "schema-only.zed": (0, None),
    "schema-relation-named-schema.zed": (0, None),
    "schema-with-warnings.zed": (0, None),  # a warning, not an error, without --fail-on-warn
    "warnings-point-at-right-line.zed": (0, None),
    "warnings.zed": (0, None),  # self-reference is a warning upstream
    "yaml-with-zed-extension.zed": (0, None),  # YAML content: read as a validation file
    "sibling-folders/schema/domain.zed": (2, None),  # `user` is not defined in this file
    "sibling-folders/schema/root.zed": (0, None),
}


def file_expectations() -> list[FileExpectation]:
    """Every validation file under the conformance `validation/` tree and its expected end.

    YAML files take their expectation from the matching case: a load error → 2, an
    upstream fixture meant to fail its assertions/expected relations → 1, else 0.
    """
    if not VALIDATION_DIR.exists():
        return []
    by_id = {c["id"]: c for c in CASES}
    found: list[FileExpectation] = []
    for path in sorted(VALIDATION_DIR.rglob("*.yaml")):
        relative = path.relative_to(VALIDATION_DIR)
        repo, rest = relative.parts[0], "/".join(relative.parts[1:])
        case = by_id.get(f"{repo}:{rest}")
        if case is None:
            found.append(FileExpectation(path, 0, "no case in cases.jsonl says how it must end"))
            continue
        if expected_load_error(case):
            found.append(FileExpectation(path, 2))
        elif "expectations_inverted_from_failing_fixture" in case.get("flags", []):
            found.append(FileExpectation(path, 1, skip_reason(case, from_file=True)))
        else:
            found.append(FileExpectation(path, 0, skip_reason(case, from_file=True)))
    zed_dir = VALIDATION_DIR / "zed/internal/cmd/validate-test"
    for name, (code, skip) in sorted(_ZED_SCHEMA_FILES.items()):
        if (zed_dir / name).exists():
            found.append(FileExpectation(zed_dir / name, code, skip))
    return found
