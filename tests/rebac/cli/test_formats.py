"""Import/export record formats: parsing with positions, and export → import round trips."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rebac.cli import CliError
from rebac.cli.formats import detect_format, format_relationship, read_records
from rebac.tuples import Relationship, RelationshipCaveat, rel

SAMPLES = [
    rel("document:1#viewer@user:ann"),
    rel("document:1#viewer@group:eng#member"),
    rel("document:1#viewer@user:*"),
    Relationship.parse('document:2#viewer@user:bo[only_on:{"day":"tue","n":[1,2]}]'),
    Relationship.parse("document:3#viewer@user:cy[expiration:2030-01-01T00:00:00Z]"),
    Relationship(
        rel("document:4#viewer@user:di").resource,
        "viewer",
        rel("document:4#viewer@user:di").subject,
        RelationshipCaveat.of("cav"),
        datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC),
    ),
]


def _read(text: str, fmt: str, name: str = "f") -> list[Relationship]:
    return [r.relationship for r in read_records(name, text.splitlines(keepends=True), fmt)]  # type: ignore[arg-type]


class TestFormats:
    @pytest.mark.parametrize("fmt", ["tuples", "csv", "jsonl"])
    def test_export_then_import_round_trips_caveats_and_expiry(self, fmt):
        """Every sample survives format_relationship → read_records, caveat and expiry included."""
        header = "resource,relation,subject,caveat,expiration\n" if fmt == "csv" else ""
        text = header + "".join(format_relationship(r, fmt) + "\n" for r in SAMPLES)
        back = _read(text, fmt)
        assert back == SAMPLES
        assert [(r.caveat, r.expiration) for r in back] == [(r.caveat, r.expiration) for r in SAMPLES]

    def test_detect_by_extension(self):
        """Extensions pick the format; anything else is tuples; an explicit format wins."""
        assert detect_format("a.csv") == "csv"
        assert detect_format("a.NDJSON") == "jsonl"
        assert detect_format("a.yml") == "yaml"
        assert detect_format("a.txt") == "tuples"
        assert detect_format("a.csv", "tuples") == "tuples"

    def test_tuple_error_has_line_and_column(self):
        """A malformed tuple names file:line:column."""
        with pytest.raises(CliError, match=r"^f:2:12: ") as info:
            _read("document:1#viewer@user:a\ndocument:1#Viewer@user:b\n", "tuples")
        assert info.value.exit_code == 2

    def test_csv_wrong_column_count(self):
        """Two columns are refused naming the line and the expected columns."""
        with pytest.raises(CliError, match=r"f:1: expected 3 to 5 columns"):
            _read("document:1,viewer\n", "csv")

    def test_csv_bad_relation_names_the_field(self):
        """The relation column is named when it is wrong."""
        with pytest.raises(CliError, match=r"f:1: relation: invalid relation"):
            _read("document:1,Viewer,user:a\n", "csv")

    def test_jsonl_invalid_json_has_the_column(self):
        """Broken JSON names line and column."""
        with pytest.raises(CliError, match=r"f:1:\d+: invalid JSON"):
            _read('{"resource": "document:1",\n', "jsonl")

    def test_jsonl_missing_field(self):
        """A missing subject is named."""
        with pytest.raises(CliError, match="subject: missing"):
            _read('{"resource": "document:1", "relation": "viewer"}\n', "jsonl")

    def test_comments_and_blank_lines_are_skipped(self):
        """`//` and `#` comment lines and blanks are not records."""
        assert _read("// c\n# c\n\ndocument:1#viewer@user:ann\n", "tuples") == [SAMPLES[0]]

    def test_yaml_from_stdin(self):
        """A validation file's relationships are read with their file lines."""
        text = (
            "schema: |-\n  definition user {}\n  definition document { relation viewer: user }\n"
            "relationships: |-\n  document:1#viewer@user:ann\n"
        )
        records = list(read_records("stdin", text.splitlines(keepends=True), "yaml"))
        assert [r.relationship for r in records] == [SAMPLES[0]]
        assert records[0].where == "stdin:5"

    def test_yaml_problem_is_one_line(self):
        """A validation file problem becomes a single CliError line with its location."""
        text = "schema: |-\n  definition user {}\nrelationships: |-\n  document:1#viewer@user:ann\n"
        with pytest.raises(CliError) as info:
            list(read_records("stdin", text.splitlines(keepends=True), "yaml"))
        assert "\n" not in str(info.value)
        assert str(info.value).startswith("stdin:4")
