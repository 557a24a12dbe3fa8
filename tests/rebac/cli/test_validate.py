from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rebac.cli import main

GOOD = """\
schema: |-
  definition user {}
  definition document {
    relation viewer: user
    permission view = viewer
  }
relationships: |-
  document:1#viewer@user:tom
assertions:
  assertTrue: ["document:1#view@user:tom"]
  assertFalse: ["document:1#view@user:ann"]
"""


def _needs_engine() -> None:
    try:
        from rebac.engine import Engine  # noqa: F401, PLC0415 - the engine may not have landed
    except ImportError as exc:
        pytest.skip(f"rebac.engine.Engine is not available yet: {exc}")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


class TestValidateCommand:
    def test_passing_file_exits_zero_with_summary(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A file whose assertions hold exits 0 and prints a success summary."""
        _needs_engine()
        assert main(["validate", str(_write(tmp_path, "ok.yaml", GOOD))]) == 0
        assert "Success! - 1 relationships loaded, 2 assertions run" in capsys.readouterr().out

    def test_failing_assertion_exits_one_with_a_diff(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An assertTrue that does not hold exits 1 and prints the file line, expected and actual."""
        _needs_engine()
        path = _write(
            tmp_path,
            "bad.yaml",
            GOOD.replace(
                'assertFalse: ["document:1#view@user:ann"]', "assertFalse: []\n  assertCaveated: []"
            ).replace('user:tom"]', 'user:ann"]'),
        )
        assert main(["validate", str(path)]) == 1
        out = capsys.readouterr().out
        assert f"{path}:10: assertTrue failed: document:1#view@user:ann" in out
        assert "expected: true" in out
        assert "actual:   false" in out

    def test_json_output_is_one_document_with_the_documented_keys(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`--json` prints exactly one JSON document with per-file, per-assertion results."""
        _needs_engine()
        path = _write(tmp_path, "ok.yaml", GOOD)
        assert main(["validate", "--json", str(path)]) == 0
        document = json.loads(capsys.readouterr().out)
        assert document == {
            "files": [
                {
                    "file": str(path),
                    "ok": True,
                    "error": None,
                    "assertions": [
                        {
                            "assertion": "document:1#view@user:tom",
                            "expected": "true",
                            "actual": "true",
                            "ok": True,
                        },
                        {
                            "assertion": "document:1#view@user:ann",
                            "expected": "false",
                            "actual": "false",
                            "ok": True,
                        },
                    ],
                    "validation": [],
                }
            ]
        }

    def test_missing_file_exits_two_with_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing file exits 2 with one error line naming it."""
        assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"rebac: error: {tmp_path / 'nope.yaml'}: file not found"]

    def test_yaml_junk_exits_two(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """YAML that does not parse exits 2 with file:line:column."""
        path = _write(tmp_path, "junk.yaml", "schema: [\n")
        assert main(["validate", str(path)]) == 2
        assert f"{path}:2:1: invalid YAML" in capsys.readouterr().err

    def test_schema_error_exits_two_with_line_and_column(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A schema error exits 2 naming the file line:column and the schema line:column."""
        path = _write(
            tmp_path, "s.yaml", GOOD.replace("permission view = viewer", "permission view = nothing")
        )
        assert main(["validate", str(path)]) == 2
        err = capsys.readouterr().err
        assert f"{path}:5:23: schema error (schema 4:21)" in err

    def test_bad_subject_type_exits_two_and_json_carries_the_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A relationship with a subject type the schema does not allow exits 2; `--json` has `error` set."""
        path = _write(
            tmp_path, "r.yaml", GOOD.replace("document:1#viewer@user:tom", "document:1#viewer@document:2")
        )
        assert main(["validate", "--json", str(path)]) == 2
        (result,) = json.loads(capsys.readouterr().out)["files"]
        assert result["ok"] is False
        assert result["error"].startswith(
            f"{path}:8: relationship `document:1#viewer@document:2` is not allowed"
        )
        assert result["assertions"] == []

    def test_load_error_wins_over_failures_across_files(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With several files, an unloadable one makes the exit code 2 and the others still run."""
        _needs_engine()
        good = _write(tmp_path, "ok.yaml", GOOD)
        assert main(["validate", str(good), str(tmp_path / "nope.yaml")]) == 2
        assert "total files: 2, successfully validated files: 1" in capsys.readouterr().out

    def test_console_entry_point_runs_as_a_process(self, tmp_path: Path) -> None:
        """`python -m rebac.cli validate --json` works end to end in a real process."""
        _needs_engine()
        path = _write(tmp_path, "s.yaml", "schema: 'definition user {}'\n")
        proc = subprocess.run(
            [sys.executable, "-m", "rebac.cli", "validate", "--json", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["files"][0]["ok"] is True
