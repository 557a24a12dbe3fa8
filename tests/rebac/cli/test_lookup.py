"""`rebac expand`, `rebac lookup-resources` and `rebac lookup-subjects` against a real server."""

from __future__ import annotations

import json

import pytest

from tests.rebac.cli.cli_helpers import CAVEAT_SCHEMA, cli_against_server

WORLD = [
    "document:l1#viewer@user:ann",
    "document:l2#viewer@group:eng#member",
    "group:eng#member@user:ann",
    "group:eng#member@user:bob",
    "document:l3#owner@user:bob",
    "document:l4#viewer@user:*",
    "document:l4#banned@user:carl",
    "document:l5#viewer@user:tess[only_on_tuesday]",
]


@pytest.fixture(scope="module")
def rebac(tmp_path_factory):
    with cli_against_server(tmp_path_factory.mktemp("lookup"), CAVEAT_SCHEMA) as runner:
        assert runner("rel", "create", *WORLD).code == 0
        yield runner


class TestExpand:
    def test_draws_a_tree(self, rebac):
        """The tree names the permission, its operation and the stored subjects."""
        result = rebac("expand", "document:l2", "view", "--recursive")
        assert result.code == 0, result.err
        assert result.lines[0].startswith("document:l2#view")
        assert "exclusion" in result.lines[0]
        assert any("user:bob" in line for line in result.lines)
        assert any(line.lstrip("│ ").startswith(("├──", "└──")) for line in result.lines[1:])

    def test_json_tree(self, rebac):
        """`--json` prints resource, relation, operation and children/subjects."""
        tree = json.loads(rebac("expand", "document:l1", "viewer", "--json").out)
        assert tree == {
            "resource": "document:l1",
            "relation": "viewer",
            "operation": "leaf",
            "subjects": ["user:ann"],
        }

    def test_caveated_subject_is_marked_in_the_tree_and_json(self, rebac):
        """tess views l5 only under a caveat: the tree says `[caveat only_on_tuesday]`, and so does --json."""
        result = rebac("expand", "document:l5", "viewer")
        assert result.lines[1:] == ["└── user:tess [caveat only_on_tuesday]"]
        tree = json.loads(rebac("expand", "document:l5", "viewer", "--json").out)
        assert tree["subject_caveats"] == {"user:tess": "only_on_tuesday"}

    def test_one_level_arrow_is_labelled(self, rebac):
        """A one-level expand of view shows the arrow as `document:l1#parent->view`."""
        result = rebac("expand", "document:l1", "view")
        assert result.code == 0, result.err
        assert any("document:l1#parent->view" in line for line in result.lines)

    def test_unknown_permission(self, rebac):
        """An unknown permission exits 2 naming it."""
        result = rebac("expand", "document:l1", "nope")
        assert result.code == 2
        assert "nope" in result.err

    def test_malformed_resource(self, rebac):
        """A resource without an id exits 2."""
        assert rebac("expand", "document", "view").code == 2


class TestLookupResources:
    def test_streams_ids_the_subject_can_reach(self, rebac):
        """ann reaches l1 directly, l2 through the group and l4 through the wildcard; not l3."""
        result = rebac("lookup-resources", "document", "view", "user:ann")
        assert result.code == 0, result.err
        assert sorted(result.lines) == ["l1", "l2", "l4"]

    def test_banned_subject_does_not_get_the_wildcard_resource(self, rebac):
        """carl is banned from l4, so only what carl otherwise has is listed (nothing)."""
        assert rebac("lookup-resources", "document", "view", "user:carl").lines == []

    def test_limit_prints_the_next_cursor_and_the_cursor_resumes(self, rebac):
        """Two pages of one cover every result once."""
        first = rebac("lookup-resources", "document", "view", "user:ann", "--limit", "1")
        assert len(first.lines) == 1
        assert "next cursor: " in first.err
        cursor = first.err.split("next cursor: ", 1)[1].split()[0]
        rest = rebac("lookup-resources", "document", "view", "user:ann", "--cursor", cursor)
        assert sorted(first.lines + rest.lines) == ["l1", "l2", "l4"]

    def test_json_lines(self, rebac):
        """`--json` prints one object per result with its cursor."""
        rows = [
            json.loads(line)
            for line in rebac("lookup-resources", "document", "edit", "user:bob", "--json").lines
        ]
        assert [r["resource_id"] for r in rows] == ["l3"]
        assert rows[0]["permissionship"] == "has_permission"
        assert rows[0]["cursor"]

    def test_bad_limit(self, rebac):
        """`--limit 0` exits 2."""
        assert rebac("lookup-resources", "document", "view", "user:ann", "--limit", "0").code == 2

    def test_malformed_cursor_names_the_flag(self, rebac):
        """A cursor that is not one exits 2 naming `--cursor`, not the request field, and lists nothing."""
        result = rebac("lookup-resources", "document", "view", "user:ann", "--cursor", "garbage")
        assert (result.code, result.out) == (2, "")
        assert result.err == "rebac: error: --cursor: malformed cursor\n"


class TestLookupSubjects:
    def test_streams_subject_ids(self, rebac):
        """The group members of l2 are listed by id."""
        result = rebac("lookup-subjects", "document:l2", "view", "user")
        assert sorted(result.lines) == ["ann", "bob"]

    def test_wildcard_lists_exclusions(self, rebac):
        """A wildcard result shows who it does not cover."""
        result = rebac("lookup-subjects", "document:l4", "view", "user")
        assert "*  (except carl)" in result.lines

    def test_subject_relation(self, rebac):
        """`--subject-relation member` finds the group subject set."""
        result = rebac("lookup-subjects", "document:l2", "view", "group", "--subject-relation", "member")
        assert result.lines == ["eng"]

    def test_json(self, rebac):
        """`--json` carries the subject and its exclusions."""
        rows = [
            json.loads(line)
            for line in rebac("lookup-subjects", "document:l4", "view", "user", "--json").lines
        ]
        wildcard = next(r for r in rows if r["subject_id"] == "*")
        assert wildcard["excluded"] == ["user:carl"]

    def test_unknown_type(self, rebac):
        """An unknown subject type exits 2."""
        assert rebac("lookup-subjects", "document:l2", "view", "robot").code == 2


class TestLookupCaveatsAndContextualRelationships:
    def test_resources_marks_a_caveated_result(self, rebac):
        """Without context the caveated document is listed with what is missing; l4 (wildcard) plainly."""
        result = rebac("lookup-resources", "document", "view", "user:tess")
        assert result.code == 0, result.err
        assert sorted(result.lines) == ["l4", "l5  (caveated: missing day)"]

    def test_resources_json_carries_the_permissionship(self, rebac):
        """`--json` lines say conditional with the missing names, or has_permission."""
        rows = {
            r["resource_id"]: r
            for r in map(
                json.loads, rebac("lookup-resources", "document", "view", "user:tess", "--json").lines
            )
        }
        assert rows["l5"]["permissionship"] == "conditional"
        assert rows["l5"]["missing_context"] == ["day"]
        assert rows["l4"]["permissionship"] == "has_permission"

    def test_resources_context_decides(self, rebac):
        """day=tue makes l5 a plain result; day=wed drops it."""
        tue = rebac("lookup-resources", "document", "view", "user:tess", "--context", '{"day": "tue"}')
        assert sorted(tue.lines) == ["l4", "l5"]
        wed = rebac("lookup-resources", "document", "view", "user:tess", "--context", '{"day": "wed"}')
        assert wed.lines == ["l4"]

    def test_subjects_marks_and_context_decides(self, rebac):
        """lookup-subjects shows tess as caveated, and plainly once the context says tuesday."""
        assert rebac("lookup-subjects", "document:l5", "view", "user").lines == [
            "tess  (caveated: missing day)"
        ]
        decided = rebac("lookup-subjects", "document:l5", "view", "user", "--context", '{"day": "tue"}')
        assert decided.lines == ["tess"]

    def test_with_adds_results_for_one_request(self, rebac):
        """`--with` makes l9 visible to nina (and nina to l9) for that request only."""
        extra = ("--with", "document:l9#viewer@user:nina")
        assert rebac("lookup-resources", "document", "view", "user:nina", *extra).lines == ["l4", "l9"]
        assert rebac("lookup-resources", "document", "view", "user:nina").lines == ["l4"]
        assert rebac("lookup-subjects", "document:l9", "view", "user", *extra).lines == ["nina"]

    def test_malformed_with_is_an_input_error(self, rebac):
        """A malformed `--with` exits 2 naming it, before any request."""
        result = rebac("lookup-subjects", "document:l9", "view", "user", "--with", "document:l9#viewer")
        assert result.code == 2
        assert "--with #1" in result.err
