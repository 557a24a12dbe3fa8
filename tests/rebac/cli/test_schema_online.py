"""`rebac schema write|read|diff` against a real server, and the schema diff itself."""

from __future__ import annotations

import json

import pytest

from rebac.cli.schema_online import diff_schemas
from rebac.schema import compile_schema
from tests.rebac.cli.cli_helpers import READER_KEY, SCHEMA, cli_against_server


@pytest.fixture(scope="module")
def rebac(tmp_path_factory):
    with cli_against_server(tmp_path_factory.mktemp("schema_online")) as runner:
        yield runner


class TestSchemaOnline:
    def test_read_returns_the_written_schema(self, rebac):
        """`schema read` prints a schema that compiles to the one written."""
        result = rebac("schema", "read")
        assert result.code == 0, result.err
        assert diff_schemas(compile_schema(result.out), compile_schema(SCHEMA)) == []
        assert json.loads(rebac("schema", "read", "--json").out)["schema"].strip() == result.out.strip()

    def test_write_prints_a_token_and_diff_against_server_is_empty(self, rebac, tmp_path):
        """Writing an extended schema prints a token; the server then matches the file."""
        path = tmp_path / "v2.zed"
        path.write_text(SCHEMA + "\ndefinition team {\n    relation member: user\n}\n")
        before = rebac("schema", "diff", "@server", str(path))
        assert before.code == 1
        assert "+ definition team" in before.out
        written = rebac("schema", "write", str(path))
        assert written.code == 0, written.err
        assert len(written.lines) == 1
        after = rebac("schema", "diff", "@server", str(path))
        assert (after.code, after.out) == (0, "no changes: the schemas mean the same\n")

    def test_invalid_schema_is_refused_locally_with_its_position(self, rebac, tmp_path):
        """A schema error exits 2 with file:line:column, and the server schema is unchanged."""
        path = tmp_path / "bad.zed"
        path.write_text("definition user {}\ndefinition doc {\n    relation viewer: usr\n}\n")
        result = rebac("schema", "write", str(path))
        assert result.code == 2
        assert f"{path}:3:" in result.err
        assert "definition doc {" not in rebac("schema", "read").out

    def test_write_takes_the_schema_of_a_validation_file(self, rebac, tmp_path):
        """`schema write FILE.yaml` stores the validation file's schema; the server then matches it."""
        path = tmp_path / "world.yaml"
        indented = "".join(f"  {line}\n" if line else "\n" for line in SCHEMA.splitlines())
        path.write_text(f"schema: |-\n{indented}relationships: |-\n  document:1#viewer@user:ann\n")
        written = rebac("schema", "write", str(path))
        assert written.code == 0, written.err
        schema_file = tmp_path / "same.zed"
        schema_file.write_text(SCHEMA)
        after = rebac("schema", "diff", "@server", str(schema_file))
        assert (after.code, after.out) == (0, "no changes: the schemas mean the same\n")

    def test_schema_write_needs_the_schema_scope(self, rebac, tmp_path):
        """A check-only key cannot write a schema (exit 3)."""
        path = tmp_path / "s.zed"
        path.write_text(SCHEMA)
        assert rebac("schema", "write", str(path), env={"REBAC_TOKEN": READER_KEY}).code == 3

    def test_removing_a_relation_in_use_is_refused(self, rebac, tmp_path):
        """The server refuses a schema that would orphan stored relationships; exit 1 with the reason."""
        assert rebac("rel", "create", "document:s1#banned@user:ann").code == 0
        path = tmp_path / "smaller.zed"
        path.write_text(SCHEMA.replace("    relation banned: user\n", "").replace(" - banned", ""))
        result = rebac("schema", "write", str(path))
        assert result.code == 1, result.err
        assert "banned" in result.err


class TestSchemaDiff:
    def test_reports_added_removed_and_changed_members(self):
        """Definition, relation and permission changes are listed with old → new."""
        old = compile_schema(
            "definition user {}\ndefinition doc {\n relation viewer: user\n relation owner: user\n"
            " permission view = viewer\n}\ndefinition gone {}"
        )
        new = compile_schema(
            "definition user {}\ndefinition team {}\ndefinition doc {\n relation viewer: user | team\n"
            " relation editor: user\n permission view = viewer + editor\n}"
        )
        lines = [str(c) for c in diff_schemas(old, new)]
        assert "- definition gone" in lines
        assert "+ definition team" in lines
        assert "- relation doc#owner: user" in lines
        assert "+ relation doc#editor: user" in lines
        assert "~ relation doc#viewer: user  →  user | team" in lines
        assert "~ permission doc#view: viewer  →  viewer + editor" in lines

    def test_formatting_and_comments_do_not_count(self):
        """The same meaning written differently has no changes."""
        a = compile_schema("definition user {}\ndefinition doc { relation viewer: user }")
        b = compile_schema("// note\ndefinition user {}\n\ndefinition doc {\n    relation viewer: user\n}\n")
        assert diff_schemas(a, b) == []

    def test_diff_of_two_files_via_the_binary(self, tmp_path, rebac):
        """`schema diff OLD NEW --json` works offline on two files and exits 1 when they differ."""
        old, new = tmp_path / "old.zed", tmp_path / "new.zed"
        old.write_text("definition user {}\n")
        new.write_text("definition user {}\ndefinition doc {}\n")
        result = rebac("schema", "diff", str(old), str(new), "--json", connect=False)
        assert result.code == 1
        assert json.loads(result.out)["changes"] == [
            {"kind": "added", "what": "definition", "path": "doc", "old": None, "new": None}
        ]
