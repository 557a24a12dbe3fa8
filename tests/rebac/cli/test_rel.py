"""`rebac rel create|touch|delete|read` through the real binary against a real server."""

from __future__ import annotations

import json

import pytest

from tests.rebac.cli.cli_helpers import CAVEAT_SCHEMA, READER_KEY, cli_against_server


@pytest.fixture(scope="module")
def rebac(tmp_path_factory):
    with cli_against_server(tmp_path_factory.mktemp("rel"), CAVEAT_SCHEMA) as runner:
        yield runner


class TestRelWrite:
    def test_create_prints_the_revision_token_and_the_tuples_are_stored(self, rebac):
        """A create prints one token on stdout; reading back finds exactly the created tuples."""
        result = rebac("rel", "create", "document:w1#viewer@user:ann", "document:w1#viewer@group:eng#member")
        assert result.code == 0, result.err
        assert len(result.lines) == 1
        assert result.lines[0]
        read = rebac("rel", "read", "document:w1")
        assert read.lines == ["document:w1#viewer@group:eng#member", "document:w1#viewer@user:ann"]

    def test_create_json_reports_operation_count_and_token(self, rebac):
        """`--json` prints {operation, count, written_at}."""
        result = rebac("rel", "create", "document:w2#owner@user:ann", "--json")
        assert result.code == 0, result.err
        document = json.loads(result.out)
        assert document["operation"] == "create"
        assert document["count"] == 1
        assert document["written_at"]

    def test_tuples_from_stdin_one_per_line_with_comments_skipped(self, rebac):
        """`-` reads stdin; blank and `//` lines are skipped."""
        stdin = "// two viewers\ndocument:w3#viewer@user:ann\n\ndocument:w3#viewer@user:bob\n"
        result = rebac("rel", "create", "-", stdin=stdin)
        assert result.code == 0, result.err
        assert rebac("rel", "read", "document:w3#viewer").lines == [
            "document:w3#viewer@user:ann",
            "document:w3#viewer@user:bob",
        ]

    def test_tuples_from_a_file(self, rebac, tmp_path):
        """`--file FILE` reads one tuple per line."""
        path = tmp_path / "tuples.txt"
        path.write_text("document:w4#viewer@user:carl\ndocument:w4#banned@user:dan\n")
        assert rebac("rel", "touch", "--file", str(path)).code == 0
        assert len(rebac("rel", "read", "document:w4").lines) == 2

    def test_create_of_an_existing_tuple_fails_and_changes_nothing(self, rebac):
        """A second create of the same tuple exits 1 naming it; the batch's other tuple is not written."""
        assert rebac("rel", "create", "document:w5#viewer@user:ann").code == 0
        result = rebac("rel", "create", "document:w5#viewer@user:bob", "document:w5#viewer@user:ann")
        assert result.code == 1
        assert "already exists" in result.err
        assert result.err.count("\n") == 1
        assert rebac("rel", "read", "document:w5").lines == ["document:w5#viewer@user:ann"]

    def test_touch_is_idempotent(self, rebac):
        """Touching the same tuple twice succeeds both times and stores it once."""
        for _ in range(2):
            assert rebac("rel", "touch", "document:w6#viewer@user:ann").code == 0
        assert rebac("rel", "read", "document:w6").lines == ["document:w6#viewer@user:ann"]

    def test_malformed_tuple_names_argument_and_column(self, rebac):
        """A bad id exits 2 with the argument number and column, and writes nothing."""
        result = rebac("rel", "create", "document:w7#viewer@user:ann", "document:w7#viewer@user:a b")
        assert result.code == 2
        assert "argument 2, column 25" in result.err
        assert rebac("rel", "read", "document:w7").lines == []

    def test_malformed_stdin_line_names_the_line_and_column(self, rebac):
        """A bad stdin line is reported as stdin:LINE:COLUMN."""
        result = rebac("rel", "create", "-", stdin="document:w8#viewer@user:ann\ndocument:w8#viewer\n")
        assert result.code == 2
        assert "stdin:2:" in result.err
        assert "expected `@`" in result.err

    def test_unknown_relation_is_an_input_error(self, rebac):
        """A relation the schema lacks exits 2 and names it."""
        result = rebac("rel", "create", "document:w9#viewr@user:ann")
        assert result.code == 2
        assert "viewr" in result.err

    def test_no_tuples_is_a_usage_error(self, rebac):
        """Nothing to write exits 2 and says how to give tuples."""
        result = rebac("rel", "create")
        assert result.code == 2
        assert "no relationships given" in result.err

    def test_a_check_only_key_cannot_write(self, rebac):
        """A key without the write scope is refused (exit 3) and nothing is written."""
        result = rebac("rel", "create", "document:w10#viewer@user:ann", env={"REBAC_TOKEN": READER_KEY})
        assert result.code == 3
        assert rebac("rel", "read", "document:w10").lines == []


class TestRelDelete:
    def test_delete_given_tuples(self, rebac):
        """Deleting a tuple removes only it."""
        rebac("rel", "create", "document:d1#viewer@user:ann", "document:d1#viewer@user:bob")
        result = rebac("rel", "delete", "document:d1#viewer@user:ann")
        assert result.code == 0
        assert result.lines
        assert rebac("rel", "read", "document:d1").lines == ["document:d1#viewer@user:bob"]

    def test_delete_by_filter_needs_confirmation_without_a_terminal(self, rebac):
        """Without --yes and without a terminal the delete is refused (exit 2) and nothing goes."""
        rebac("rel", "create", "document:d2#viewer@user:ann")
        result = rebac("rel", "delete", "--filter", "document:d2")
        assert result.code == 2
        assert "--yes" in result.err
        assert rebac("rel", "read", "document:d2").lines == ["document:d2#viewer@user:ann"]

    def test_delete_by_filter_with_yes_reports_the_count(self, rebac):
        """`--filter ... --subject ... --yes --json` deletes the matches only and counts them."""
        rebac(
            "rel",
            "create",
            "document:d3#viewer@user:ann",
            "document:d3#viewer@user:bob",
            "document:d4#viewer@user:ann",
        )
        result = rebac("rel", "delete", "--filter", "document", "--subject", "user:ann", "--yes", "--json")
        assert result.code == 0, result.err
        assert json.loads(result.out)["count"] >= 2
        assert rebac("rel", "read", "document:d3").lines == ["document:d3#viewer@user:bob"]
        assert rebac("rel", "read", "document:d4").lines == []

    def test_filter_and_tuples_together_are_refused(self, rebac):
        """Tuples and --filter at once exit 2."""
        result = rebac("rel", "delete", "document:d5#viewer@user:ann", "--filter", "document", "--yes")
        assert result.code == 2


class TestRelRead:
    def test_filters_by_relation_and_subject(self, rebac):
        """`TYPE:ID#REL` and `--subject` narrow the stream."""
        rebac(
            "rel",
            "create",
            "document:r1#viewer@user:ann",
            "document:r1#owner@user:ann",
            "document:r1#viewer@user:bob",
        )
        assert rebac("rel", "read", "document:r1#owner").lines == ["document:r1#owner@user:ann"]
        assert rebac("rel", "read", "document:r1", "--subject", "user:bob").lines == [
            "document:r1#viewer@user:bob"
        ]

    def test_read_other_users_relationships_does_not_leak(self, rebac):
        """Filtering by ann's subject never returns bob's tuples."""
        rebac("rel", "create", "document:r2#viewer@user:bob")
        lines = rebac("rel", "read", "--subject", "user:ann").lines
        assert lines
        assert all(line.endswith("@user:ann") for line in lines)

    def test_json_lines(self, rebac):
        """`--json` prints one object per line with resource, relation and subject."""
        rebac("rel", "create", "document:r3#viewer@group:eng#member")
        result = rebac("rel", "read", "document:r3", "--json")
        assert [json.loads(line) for line in result.lines] == [
            {"resource": "document:r3", "relation": "viewer", "subject": "group:eng#member"}
        ]

    def test_limit(self, rebac):
        """`--limit N` prints at most N tuples."""
        rebac(
            "rel",
            "create",
            "document:r4#viewer@user:a1",
            "document:r4#viewer@user:a2",
            "document:r4#viewer@user:a3",
        )
        assert len(rebac("rel", "read", "document:r4", "--limit", "2").lines) == 2

    def test_malformed_filter_is_a_usage_error(self, rebac):
        """A filter with a bad type exits 2 naming the filter."""
        result = rebac("rel", "read", "Document:1")
        assert result.code == 2
        assert "filter 'Document:1'" in result.err

    def test_read_with_a_write_token_sees_the_write(self, rebac):
        """`--consistency token:T` with the token of a write sees that write."""
        token = rebac("rel", "create", "document:r5#viewer@user:ann").lines[0]
        result = rebac("rel", "read", "document:r5", "--consistency", f"token:{token}")
        assert result.lines == ["document:r5#viewer@user:ann"]

    def test_bad_consistency_is_a_usage_error(self, rebac):
        """An unknown --consistency value exits 2 listing the choices."""
        result = rebac("rel", "read", "document:r5", "--consistency", "sometimes")
        assert result.code == 2
        assert "full, min, token:TOKEN or exact:TOKEN" in result.err


CAVEATED = 'document:cv1#viewer@user:cv_tue[only_on_tuesday:{"day":"tue"}]'
EXPIRING = "document:cv1#viewer@user:cv_exp[expiration:2030-01-01T00:00:00Z]"


class TestRelCaveatsAndExpiration:
    def test_caveat_and_expiration_round_trip_through_read_and_export(self, rebac):
        """Suffixes given to `rel create` come back unchanged from `rel read`, `--json` and `export`."""
        assert rebac("rel", "create", CAVEATED, EXPIRING).code == 0
        assert rebac("rel", "read", "document:cv1").lines == [EXPIRING, CAVEATED]  # in key order
        rows = [json.loads(line) for line in rebac("rel", "read", "document:cv1", "--json").lines]
        assert rows[0]["expiration"] == "2030-01-01T00:00:00Z"
        assert rows[1]["caveat"] == {"name": "only_on_tuesday", "context": {"day": "tue"}}
        exported = rebac("export").lines
        assert CAVEATED in exported
        assert EXPIRING in exported

    def test_touch_replaces_the_caveat_context(self, rebac):
        """Touching the same tuple with new caveat context stores the new context only."""
        first = 'document:cv2#viewer@user:cv_t[only_on_tuesday:{"day":"tue"}]'
        second = 'document:cv2#viewer@user:cv_t[only_on_tuesday:{"day":"wed"}]'
        assert rebac("rel", "touch", first).code == 0
        assert rebac("rel", "touch", second).code == 0
        assert rebac("rel", "read", "document:cv2").lines == [second]

    def test_unknown_caveat_is_refused_and_nothing_is_written(self, rebac):
        """A caveat the schema does not declare fails the whole write, naming the caveat."""
        result = rebac(
            "rel", "create", "document:cv3#viewer@user:cv_a", "document:cv3#viewer@user:cv_b[no_such_caveat]"
        )
        assert result.code == 2
        assert "no_such_caveat" in result.err
        assert rebac("rel", "read", "document:cv3").lines == []

    def test_malformed_suffix_names_the_column(self, rebac):
        """Broken caveat JSON is an input error with the argument and column."""
        result = rebac("rel", "create", 'document:cv4#viewer@user:cv_a[only_on_tuesday:{"day":]')
        assert result.code == 2
        assert "argument 1, column" in result.err
