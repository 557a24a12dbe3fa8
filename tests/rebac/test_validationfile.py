from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rebac.errors import InvalidRequestError
from rebac.tuples import ObjectRef, SubjectRef, rel
from rebac.validationfile import AssertionKind, load_validation_file, parse_validation_text

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
"""


def _parse(body: str) -> object:
    return parse_validation_text(SCHEMA + textwrap.dedent(body), path="f.yaml")


def _error(text: str, tmp_path: Path | None = None) -> str:
    with pytest.raises(InvalidRequestError) as info:
        parse_validation_text(text, path="f.yaml", base_dir=tmp_path)
    return str(info.value)


class TestLoadValidationFile:
    def test_loads_relationships_with_lines_skipping_comments_and_blanks(self) -> None:
        """Relationships load one per line with their file line; blank and `//` lines are skipped."""
        loaded = _parse(
            """\
            relationships: |-
              // the team
              group:eng#member@user:ann

              document:1#viewer@group:eng#member
            """
        )
        assert [(str(r.relationship), r.line) for r in loaded.relationships] == [  # type: ignore[attr-defined]
            ("group:eng#member@user:ann", 13),
            ("document:1#viewer@group:eng#member", 15),
        ]

    def test_parses_assertion_kinds_and_check_context(self) -> None:
        """assertTrue/assertFalse/assertCaveated items parse, and ` with {json}` becomes the context."""
        loaded = _parse(
            """\
            assertions:
              assertTrue:
                - "document:1#view@user:ann"
              assertFalse: ["document:1#view@user:bob"]
              assertCaveated:
                - 'document:1#view@user:cat with {"day": "tue"}'
            """
        )
        kinds = [(a.kind, str(a.relationship), a.context, a.line) for a in loaded.assertions]  # type: ignore[attr-defined]
        assert kinds == [
            (AssertionKind.TRUE, "document:1#view@user:ann", None, 13),
            (AssertionKind.FALSE, "document:1#view@user:bob", None, 14),
            (AssertionKind.CAVEATED, "document:1#view@user:cat", {"day": "tue"}, 16),
        ]

    def test_parses_expected_subject_forms(self) -> None:
        """Expected subjects parse plain, subject-set, caveated and wildcard-with-exclusions forms."""
        loaded = _parse(
            """\
            validation:
              document:1#view:
                - "[user:ann] is <document:1#viewer>"
                - "[group:eng#member] is <document:1#viewer>/<document:2#viewer>"
                - "[user:cat[...]] is <document:1#viewer>"
                - "[user:* - {user:bob, user:dan[...]}] is <document:1#viewer>"
            """
        )
        (block,) = loaded.expected  # type: ignore[attr-defined]
        assert (block.resource, block.permission) == (ObjectRef("document", "1"), "view")
        assert [s.key for s in block.subjects] == [
            "user:ann",
            "group:eng#member",
            "user:cat[...]",
            "user:* - {user:bob, user:dan[...]}",
        ]
        assert block.subjects[1].paths == ("document:1#viewer", "document:2#viewer")
        assert block.subjects[3].exceptions == ((SubjectRef("user", "bob"), False), (SubjectRef("user", "dan"), True))

    def test_bare_schema_file_is_a_schema_only_validation_file(self, tmp_path: Path) -> None:
        """A file without validation-file keys is read as a bare schema, as zed reads `.zed` files."""
        path = tmp_path / "s.zed"
        path.write_text("definition user {}\ndefinition thing {\n  relation schema: user\n}\n")
        loaded = load_validation_file(path)
        assert loaded.schema.definition("thing") is not None
        assert loaded.relationships == ()

    def test_schema_file_is_read_relative_to_the_yaml_file(self, tmp_path: Path) -> None:
        """`schemaFile` resolves beside the validation file."""
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "s.zed").write_text("definition user {}\ndefinition doc { relation viewer: user }\n")
        (tmp_path / "v.yaml").write_text('schemaFile: "./sub/s.zed"\nrelationships: "doc:1#viewer@user:ann"\n')
        loaded = load_validation_file(tmp_path / "v.yaml")
        assert [r.relationship for r in loaded.relationships] == [rel("doc:1#viewer@user:ann")]


class TestLoadErrors:
    def test_missing_file_names_the_file(self, tmp_path: Path) -> None:
        """A missing file is one clear line naming it."""
        with pytest.raises(InvalidRequestError, match=r"nope\.yaml: file not found"):
            load_validation_file(tmp_path / "nope.yaml")

    def test_yaml_junk_reports_line_and_column(self) -> None:
        """Invalid YAML is reported with file:line:column."""
        message = _error('schema: "definition user {}"\nrelationships: [unclosed\n')
        assert message.startswith("f.yaml:3:1: invalid YAML")

    def test_schema_error_maps_to_the_file_line_and_names_the_schema_position(self) -> None:
        """A schema error inside the YAML block points at the file line and names the schema line:column."""
        message = _error("relationships: ''\nschema: |-\n  definition user {}\n  definition doc {\n    permission view = nothing\n  }\n")
        assert message.startswith("f.yaml:5:23: schema error (schema 3:21)")
        assert "nothing" in message

    def test_bad_subject_type_names_the_line_and_the_rule(self) -> None:
        """A relationship whose subject type the relation does not allow is a load error on its line."""
        message = _error(SCHEMA + "relationships: |-\n  document:1#viewer@user:ann\n  document:1#banned@group:eng#member\n")
        assert message.startswith("f.yaml:13: relationship `document:1#banned@group:eng#member` is not allowed")

    def test_every_bad_relationship_is_reported_once_per_line(self) -> None:
        """Several bad relationship lines give one problem line each."""
        message = _error(SCHEMA + "relationships: |-\n  document:1#viewer@\n  nosuch:1#viewer@user:ann\n  document:1#viewer@user:ann\n  document:1#viewer@user:ann\n")
        lines = message.splitlines()
        assert [line.split(":")[1] for line in lines] == ["12", "13", "15"]
        assert "repeated relationship" in lines[2]

    def test_schema_and_schema_file_together_are_refused(self) -> None:
        """Giving both `schema` and `schemaFile` is an error, as upstream."""
        assert "only one of `schema` or `schemaFile`" in _error(SCHEMA + 'schemaFile: "x.zed"\n')

    def test_missing_schema_is_refused(self) -> None:
        """A file with relationships but no schema says a schema is needed."""
        assert "either `schema` or `schemaFile` must be present" in _error('relationships: "doc:1#v@user:a"\n')

    def test_missing_schema_file_names_the_path(self, tmp_path: Path) -> None:
        """A schemaFile that does not exist is a load error naming it."""
        message = _error('schemaFile: "./gone.zed"\n', tmp_path)
        assert message.startswith("f.yaml:1:13: cannot read schemaFile './gone.zed'")

    def test_legacy_sections_are_refused(self) -> None:
        """Legacy `validation_tuples` are refused with upstream's explanation."""
        assert "relationships must be specified in `relationships`" in _error('validation_tuples: ["foo"]\nschema: "definition user {}"\n')

    def test_bad_assertion_and_bad_expected_subject_are_reported(self) -> None:
        """An unparseable assertion and an expected-subject line without `[...]` are both reported."""
        message = _error(SCHEMA + 'assertions:\n  assertTrue: ["document:1#view"]\n  assertMaybe: []\nvalidation:\n  document:1#view: ["user:ann is <x>"]\n')
        assert len(message.splitlines()) == 3
        assert "invalid relationship in assertion" in message
        assert "unknown assertion kind `assertMaybe`" in message
        assert "no expected subject" in message
