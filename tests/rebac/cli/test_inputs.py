"""Parsing what people type: tuple arguments and stdin, check lines, filters, consistency, context."""

from __future__ import annotations

import io

import pytest

from rebac.cli import CliError
from rebac.cli.inputs import (
    SourcedLine,
    parse_check_arguments,
    parse_check_line,
    parse_consistency,
    parse_context,
    parse_filter,
    read_relationships,
)
from rebac.datastore.filters import ANY_RELATION, RelationshipFilter, SubjectFilter
from rebac.revision import AtExactSnapshot, AtLeastAsFresh, FullyConsistent, MinimizeLatency
from rebac.tuples import ObjectRef, SubjectRef, rel


class TestReadRelationships:
    def test_arguments_and_stdin_in_order(self):
        """`-` expands to the stdin lines at its position."""
        stdin = io.StringIO("document:2#viewer@user:b\n")
        got = read_relationships(["document:1#viewer@user:a", "-", "document:3#viewer@user:c"], stdin=stdin)
        assert [str(r) for r in got] == [
            "document:1#viewer@user:a",
            "document:2#viewer@user:b",
            "document:3#viewer@user:c",
        ]

    def test_stdin_only_once(self):
        """Naming stdin twice is refused."""
        with pytest.raises(CliError, match="only once"):
            read_relationships(["-"], file="-", stdin=io.StringIO(""))

    def test_missing_file(self, tmp_path):
        """A missing --file names the path."""
        with pytest.raises(CliError, match="no such file"):
            read_relationships([], file=str(tmp_path / "nope.txt"))

    def test_argument_error_position(self):
        """An argument error reads `argument N, column C`."""
        with pytest.raises(CliError, match=r"argument 1, column 10: "):
            read_relationships(["document:#viewer@user:a"])

    def test_error_quotes_the_line_once(self):
        """A stdin line the parser already quotes is not quoted a second time."""
        with pytest.raises(CliError) as caught:
            read_relationships(["-"], stdin=io.StringIO("bad line here\n"))
        assert str(caught.value).count("'bad line here'") == 1
        assert str(caught.value).startswith("stdin:1:")


class TestParseCheckLine:
    def test_three_words(self):
        """`RESOURCE PERMISSION SUBJECT` parses."""
        line = parse_check_line(SourcedLine("document:1 view group:g#member", "f:1"))
        assert (line.resource, line.permission, line.subject) == (
            ObjectRef("document", "1"),
            "view",
            SubjectRef("group", "g", "member"),
        )

    def test_tuple_form(self):
        """`resource#permission@subject` parses."""
        line = parse_check_line(SourcedLine("document:1#view@user:ann", "f:1"))
        assert str(line) == "document:1#view@user:ann"

    def test_bad_permission_column(self):
        """The column points at the permission word."""
        with pytest.raises(CliError, match=r"^f:1:12: "):
            parse_check_line(SourcedLine("document:1 View user:ann", "f:1"))

    def test_bad_subject_column(self):
        """The column points into the subject word."""
        with pytest.raises(CliError, match=r"^f:1:22: "):
            parse_check_line(SourcedLine("document:1 view user:a!", "f:1"))

    def test_caveated_tuple_is_not_a_check(self):
        """A check line cannot carry a caveat."""
        with pytest.raises(CliError, match="caveat"):
            parse_check_line(SourcedLine("document:1#view@user:ann[c]", "f:1"))

    def test_positionals_parse_one_by_one(self):
        """`rebac check`'s three arguments parse into one check."""
        line = parse_check_arguments("document:1", "view", "group:g#member")
        assert str(line) == "document:1#view@group:g#member"

    @pytest.mark.parametrize(
        ("arguments", "expected"),
        [
            (("document1", "view", "user:ann"), "RESOURCE, column 10: expected `:` in object 'document1'"),
            (("document:1", "Vi ew", "user:ann"), "PERMISSION: invalid relation 'Vi ew'"),
            (("document:1", "view", "user:a b"), "SUBJECT, column 6: invalid object id 'a b'"),
        ],
    )
    def test_bad_positional_is_named(self, arguments, expected):
        """A malformed argument is named (RESOURCE, PERMISSION or SUBJECT) with its own column."""
        with pytest.raises(CliError) as caught:
            parse_check_arguments(*arguments)
        assert str(caught.value).startswith(expected)
        assert caught.value.exit_code == 2

    def test_wrong_word_count(self):
        """Two words are refused with the expected shapes."""
        with pytest.raises(CliError, match="expected `RESOURCE PERMISSION SUBJECT`"):
            parse_check_line(SourcedLine("document:1 view", "f:1"))


class TestParseFilter:
    def test_shapes(self):
        """TYPE, TYPE:ID, TYPE#REL and TYPE:ID#REL map to filter fields."""
        assert parse_filter("document", None) == RelationshipFilter("document")
        assert parse_filter("document:1", None) == RelationshipFilter("document", ("1",))
        assert parse_filter("document#viewer", None) == RelationshipFilter("document", None, "viewer")
        assert parse_filter("document:1#viewer", None) == RelationshipFilter("document", ("1",), "viewer")

    def test_subject_shapes(self):
        """Subjects: any relation by default, `#rel` exactly, `#...` plain only, `:*` the wildcard."""
        assert parse_filter(None, "user:ann").subject == SubjectFilter("user", ("ann",), ANY_RELATION)
        assert parse_filter(None, "group:g#member").subject == SubjectFilter("group", ("g",), "member")
        assert parse_filter(None, "user:ann#...").subject == SubjectFilter("user", ("ann",), None)
        assert parse_filter(None, "user:*").subject == SubjectFilter("user", ("*",), ANY_RELATION)
        assert parse_filter(None, "user").subject == SubjectFilter("user", None, ANY_RELATION)

    def test_bad_parts(self):
        """Malformed parts are usage errors naming the filter."""
        with pytest.raises(CliError, match="filter 'document:'"):
            parse_filter("document:", None)
        with pytest.raises(CliError, match="subject filter 'User:a'"):
            parse_filter(None, "User:a")


class TestConsistencyAndContext:
    def test_consistency_values(self):
        """full is the default; min, token:T and exact:T map to their variants."""
        assert parse_consistency(None) == FullyConsistent()
        assert parse_consistency("min") == MinimizeLatency()
        assert parse_consistency("token:abc") == AtLeastAsFresh("abc")
        assert parse_consistency("exact:abc") == AtExactSnapshot("abc")
        with pytest.raises(CliError):
            parse_consistency("token:")

    def test_context(self):
        """A JSON object parses; other JSON and broken JSON are refused with a reason."""
        assert parse_context('{"ip": "10.0.0.1"}') == {"ip": "10.0.0.1"}
        assert parse_context(None) is None
        with pytest.raises(CliError, match="column"):
            parse_context('{"ip": ')


def test_rel_helper_still_parses():
    """The tuple helper used across these tests parses (guards the fixtures themselves)."""
    assert str(rel("document:1#viewer@user:ann")) == "document:1#viewer@user:ann"
