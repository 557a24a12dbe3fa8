from __future__ import annotations

from pathlib import Path

import pytest

from rebac.validation import FileResult, results_document, run_validation_file

SCHEMA = """\
schema: |-
  definition user {}
  definition group {
    relation member: user
  }
  definition document {
    relation viewer: user | user:* | group#member
    relation banned: user
    permission view = viewer - banned
  }
relationships: |-
  group:eng#member@user:ann
  document:1#viewer@group:eng#member
  document:2#viewer@user:*
  document:2#banned@user:bob
"""


def _needs_engine() -> None:
    try:
        from rebac.engine import Engine  # noqa: F401, PLC0415 - the engine may not have landed
    except ImportError as exc:
        pytest.skip(f"rebac.engine.Engine is not available yet: {exc}")


async def _run(tmp_path: Path, body: str) -> FileResult:
    path = tmp_path / "v.yaml"
    path.write_text(SCHEMA + body)
    return await run_validation_file(path)


class TestRunValidationFile:
    async def test_holding_assertions_pass_and_other_users_are_denied(self, tmp_path: Path) -> None:
        """Group members may view, a user outside the group may not, a banned user is excluded from the wildcard."""
        _needs_engine()
        result = await _run(
            tmp_path,
            "assertions:\n"
            "  assertTrue: ['document:1#view@user:ann', 'document:2#view@user:cat']\n"
            "  assertFalse: ['document:1#view@user:bob', 'document:2#view@user:bob']\n",
        )
        assert result.error is None
        assert [(a.assertion, a.actual, a.ok) for a in result.assertions] == [
            ("document:1#view@user:ann", "true", True),
            ("document:2#view@user:cat", "true", True),
            ("document:1#view@user:bob", "false", True),
            ("document:2#view@user:bob", "false", True),
        ]
        assert result.ok

    async def test_failing_assertion_reports_actual_answer(self, tmp_path: Path) -> None:
        """An assertTrue for a user outside the group fails with actual "false", at the line the assertion is on."""
        _needs_engine()
        result = await _run(tmp_path, "assertions:\n  assertTrue: ['document:1#view@user:bob']\n")
        (item,) = result.assertions
        assert (item.expected, item.actual, item.ok, item.line) == ("true", "false", False, 17)
        assert not result.ok

    async def test_expected_relations_report_missing_and_unexpected_subjects(self, tmp_path: Path) -> None:
        """Expected subjects are compared: a wrong expectation lists what is missing and what is unexpected."""
        _needs_engine()
        result = await _run(
            tmp_path,
            "validation:\n"
            "  document:1#view:\n"
            "    - '[user:ann] is <group:eng#member>'\n"
            "    - '[group:eng#member] is <document:1#viewer>'\n"
            "  document:2#view:\n"
            "    - '[user:zed] is <document:2#viewer>'\n",
        )
        ok_block, bad_block = result.validation
        assert ok_block.ok, ok_block
        assert bad_block.missing == ("user:zed",)
        assert bad_block.unexpected == ("user:* - {user:bob}",)

    async def test_load_error_is_a_result_not_an_exception(self, tmp_path: Path) -> None:
        """A file that cannot load gives a result with the error and no assertions."""
        result = await run_validation_file(tmp_path / "missing.yaml")
        assert result.error is not None
        assert "file not found" in result.error
        assert not result.ok
        assert results_document([result]) == {
            "files": [{"file": str(tmp_path / "missing.yaml"), "ok": False, "error": result.error, "assertions": [], "validation": []}]
        }
