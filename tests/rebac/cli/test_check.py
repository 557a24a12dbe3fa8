"""`rebac check` (single, --file bulk, --explain, --json, consistency) against a real server."""

from __future__ import annotations

import json

import pytest

from rebac.cli.check import explain_tree
from rebac.cli.output import expand_tree_node, render_tree
from rebac.engine.requests import ExpandOperation, ExpandTree
from rebac.tuples import ObjectRef, SubjectRef
from tests.rebac.cli.cli_helpers import CAVEAT_SCHEMA, cli_against_server

WORLD = [
    "document:c1#viewer@group:eng#member",
    "group:eng#member@user:bob",
    "document:c1#parent@folder:f1",
    "folder:f1#owner@user:carl",
    "document:c1#banned@user:dan",
    "group:eng#member@user:dan",
    "document:c2#owner@user:erin",
    "document:c5#viewer@user:tue[only_on_tuesday]",
]


@pytest.fixture(scope="module")
def rebac(tmp_path_factory):
    with cli_against_server(tmp_path_factory.mktemp("check"), CAVEAT_SCHEMA) as runner:
        assert runner("rel", "create", *WORLD).code == 0
        yield runner


class TestCheck:
    def test_granted_prints_true_and_exits_0(self, rebac):
        """A member of a viewer group may view: `true`, exit 0."""
        result = rebac("check", "document:c1", "view", "user:bob")
        assert (result.code, result.out) == (0, "true\n")

    def test_denied_prints_false_and_exits_1(self, rebac):
        """A stranger may not view: `false`, exit 1."""
        result = rebac("check", "document:c1", "view", "user:zoe")
        assert (result.code, result.out) == (1, "false\n")

    def test_one_users_access_does_not_grant_another(self, rebac):
        """erin owns c2, and that grants erin nothing on c1 and bob nothing on c2."""
        assert rebac("check", "document:c2", "edit", "user:erin").code == 0
        assert rebac("check", "document:c1", "edit", "user:erin").code == 1
        assert rebac("check", "document:c2", "view", "user:bob").code == 1

    def test_exclusion_denies_a_banned_member(self, rebac):
        """dan is in the group but banned: `false`."""
        assert rebac("check", "document:c1", "view", "user:dan").out == "false\n"

    def test_json_has_the_full_result_and_token(self, rebac):
        """`--json` carries result, permissionship, allowed and checked_at."""
        document = json.loads(rebac("check", "document:c1", "view", "user:carl", "--json").out)
        assert document["result"] == "true"
        assert document["allowed"] is True
        assert document["permissionship"] == "has_permission"
        assert document["checked_at"]
        assert document["subject"] == "user:carl"

    def test_explain_granted_shows_the_granting_path(self, rebac):
        """The tree of a grant marks the subject and leaves out branches that did not grant."""
        result = rebac("check", "document:c1", "view", "user:carl", "--explain")
        assert result.code == 0
        assert result.out.startswith("true\n")
        assert "user:carl  ✓" in result.out
        assert "folder:f1#owner" in result.out
        assert "user:bob" not in result.out

    def test_explain_denied_shows_the_whole_tree(self, rebac):
        """The tree of a denial marks the ban that excluded the subject."""
        result = rebac("check", "document:c1", "view", "user:dan", "--explain")
        assert result.code == 1
        assert "document:c1#banned" in result.out
        assert "user:dan  ✓" in result.out
        assert "user:carl" in result.out

    def test_explain_json(self, rebac):
        """`--explain --json` includes the tree under `explain`."""
        document = json.loads(rebac("check", "document:c1", "view", "user:bob", "--explain", "--json").out)
        assert document["explain"]["operation"] == "exclusion"

    def test_explain_labels_the_arrow_with_the_arrow(self, rebac):
        """carl views c1 through its folder: the tree shows `document:c1#parent->view`, not a second `#view`."""
        result = rebac("check", "document:c1", "view", "user:carl", "--explain")
        assert result.code == 0
        assert "document:c1#parent->view \u222a union" in result.out
        # Only the `viewer + edit + parent->view` union reads `#view` (a union); the arrow does not.
        assert result.out.count("document:c1#view \u222a union") == 1

    def test_explain_marks_a_caveat_only_path_with_a_question_mark(self, rebac):
        """tue views c5 only under a caveat: `caveated`, exit 1, and the leaf reads `[caveat ...]  ?`, never ✓."""
        result = rebac("check", "document:c5", "view", "user:tue", "--explain")
        assert result.code == 1
        assert result.out.startswith("caveated\n")
        assert "user:tue [caveat only_on_tuesday]  ?" in result.out
        assert "✓" not in result.out

    def test_explain_json_names_the_arrow_and_the_caveat(self, rebac):
        """`--explain --json` carries the arrow label and the caveated subject, like the drawn tree."""
        carl = json.loads(rebac("check", "document:c1", "view", "user:carl", "--explain", "--json").out)
        assert '"label": "parent->view"' in json.dumps(carl)
        tue = json.loads(rebac("check", "document:c5", "view", "user:tue", "--explain", "--json").out)
        assert '"subject_caveats": {"user:tue": "only_on_tuesday"}' in json.dumps(tue)

    def test_check_sees_a_write_made_just_before(self, rebac):
        """The CLI's default (full) consistency sees the previous command's write at once."""
        assert rebac("rel", "create", "document:c3#viewer@user:fay").code == 0
        assert rebac("check", "document:c3", "view", "user:fay").code == 0

    def test_consistency_with_a_revoke_token_does_not_see_old_access(self, rebac):
        """After a delete, a check at least as fresh as its token is denied."""
        rebac("rel", "create", "document:c4#viewer@user:gus")
        token = rebac("rel", "delete", "document:c4#viewer@user:gus").lines[0]
        result = rebac("check", "document:c4", "view", "user:gus", "--consistency", f"token:{token}")
        assert result.out == "false\n"

    def test_malformed_token_is_an_input_error(self, rebac):
        """A garbage token exits 2."""
        result = rebac("check", "document:c1", "view", "user:bob", "--consistency", "exact:!!!")
        assert result.code == 2

    def test_unknown_permission_is_an_input_error(self, rebac):
        """A permission the schema lacks exits 2 and names it; never `true`."""
        result = rebac("check", "document:c1", "vieww", "user:bob")
        assert result.code == 2
        assert result.out == ""
        assert "vieww" in result.err

    def test_malformed_subject_names_the_column(self, rebac):
        """A bad subject id exits 2 with the column in the arguments."""
        result = rebac("check", "document:c1", "view", "user:b b")
        assert result.code == 2
        assert "column" in result.err

    def test_missing_arguments_are_a_usage_error(self, rebac):
        """Two of three positionals exit 2 with an example."""
        result = rebac("check", "document:c1", "view")
        assert result.code == 2
        assert "rebac check document:42 view user:ann" in result.err

    def test_context_must_be_a_json_object(self, rebac):
        """`--context` that is not an object exits 2."""
        result = rebac("check", "document:c1", "view", "user:bob", "--context", "[1]")
        assert result.code == 2
        assert "JSON object" in result.err


class TestCheckFile:
    def test_bulk_file_prints_one_answer_per_line(self, rebac, tmp_path):
        """Both line syntaxes work; any false makes the exit code 1."""
        path = tmp_path / "checks.txt"
        path.write_text("document:c1 view user:bob\n// comment\ndocument:c1#view@user:zoe\n")
        result = rebac("check", "--file", str(path))
        assert result.code == 1
        assert [line.split() for line in result.lines] == [
            ["true", "document:c1#view@user:bob"],
            ["false", "document:c1#view@user:zoe"],
        ]

    def test_all_true_exits_0_from_stdin(self, rebac):
        """`--file -` reads stdin; all granted exits 0."""
        result = rebac(
            "check", "--file", "-", stdin="document:c1 view user:bob\ndocument:c1 view user:carl\n"
        )
        assert result.code == 0
        assert all(line.startswith("true") for line in result.lines)

    def test_item_errors_are_reported_per_line(self, rebac):
        """An unknown permission on one line is an error on that line only (exit 2)."""
        result = rebac("check", "--file", "-", stdin="document:c1 view user:bob\ndocument:c1 nope user:bob\n")
        assert result.code == 2
        assert result.lines[0].startswith("true")
        assert result.lines[1].startswith("error")
        assert "stdin:2" in result.lines[1]

    def test_json_summary(self, rebac):
        """`--json` lists each result and counts them, with one checked_at token."""
        result = rebac(
            "check", "--file", "-", "--json", stdin="document:c1 view user:bob\ndocument:c1 view user:zoe\n"
        )
        document = json.loads(result.out)
        assert document["summary"] == {"true": 1, "false": 1, "caveated": 0, "error": 0}
        assert document["checked_at"]
        assert [r["result"] for r in document["results"]] == ["true", "false"]

    def test_malformed_line_names_file_line_and_column_and_checks_nothing(self, rebac, tmp_path):
        """A malformed line exits 2 before any check is made."""
        path = tmp_path / "bad.txt"
        path.write_text("document:c1 view user:bob\ndocument:c1 view\n")
        result = rebac("check", "--file", str(path))
        assert result.code == 2
        assert f"{path}:2:" in result.err
        assert result.out == ""

    def test_more_checks_than_one_bulk_call_holds(self, rebac):
        """1,100 lines go out in several bulk calls at one revision and are answered in order."""
        lines = [
            "document:c1 view user:bob" if i % 2 == 0 else "document:c1 view user:zoe" for i in range(1100)
        ]
        result = rebac("check", "--file", "-", "--json", stdin="\n".join(lines) + "\n")
        document = json.loads(result.out)
        assert result.code == 1
        assert [r["result"] for r in document["results"]] == ["true", "false"] * 550
        assert document["summary"]["true"] == 550

    def test_file_and_positionals_together_are_refused(self, rebac):
        """Giving both forms exits 2."""
        assert rebac("check", "document:c1", "view", "user:bob", "--file", "-").code == 2


class TestCaveatsAndContextualRelationships:
    def test_undecided_caveat_prints_caveated_and_exits_1(self, rebac):
        """Without the caveat's context: `caveated`, exit 1 (fail closed), the missing name on stderr."""
        result = rebac("check", "document:c5", "view", "user:tue")
        assert (result.code, result.out) == (1, "caveated\n")
        assert "day" in result.err

    def test_json_lists_the_missing_context(self, rebac):
        """`--json` marks the answer conditional, not allowed, and names `day` as missing."""
        document = json.loads(rebac("check", "document:c5", "view", "user:tue", "--json").out)
        assert document["result"] == "caveated"
        assert document["permissionship"] == "conditional"
        assert document["allowed"] is False
        assert document["missing_context"] == ["day"]

    def test_context_decides_the_caveat(self, rebac):
        """`--context` with day=tue grants; day=wed denies; the caveat never grants another user."""
        assert (
            rebac("check", "document:c5", "view", "user:tue", "--context", '{"day": "tue"}').out == "true\n"
        )
        wrong_day = rebac("check", "document:c5", "view", "user:tue", "--context", '{"day": "wed"}')
        assert (wrong_day.code, wrong_day.out) == (1, "false\n")
        other = rebac("check", "document:c5", "view", "user:bob", "--context", '{"day": "tue"}')
        assert other.out == "false\n"

    def test_context_of_the_wrong_type_is_an_input_error(self, rebac):
        """A number for the string parameter `day` exits 2 naming the parameter; never `true`."""
        result = rebac("check", "document:c5", "view", "user:tue", "--context", '{"day": 3}')
        assert (result.code, result.out) == (2, "")
        assert "`day`" in result.err

    def test_file_takes_context_for_every_line(self, rebac):
        """`check --file` marks caveated lines with what is missing, and `--context` decides them."""
        stdin = "document:c5 view user:tue\ndocument:c1 view user:bob\n"
        undecided = rebac("check", "--file", "-", stdin=stdin)
        assert undecided.code == 1
        assert undecided.lines[0].split() == ["caveated", "document:c5#view@user:tue", "(missing", "day)"]
        decided = rebac("check", "--file", "-", "--json", "--context", '{"day": "tue"}', stdin=stdin)
        assert decided.code == 0, decided.out
        assert json.loads(decided.out)["summary"] == {"true": 2, "false": 0, "caveated": 0, "error": 0}

    def test_with_counts_for_one_request_only(self, rebac):
        """`--with` grants for that check alone: before and after it, the subject is denied."""
        assert rebac("check", "document:c6", "view", "user:zed").code == 1
        granted = rebac("check", "document:c6", "view", "user:zed", "--with", "document:c6#viewer@user:zed")
        assert (granted.code, granted.out) == (0, "true\n")
        assert rebac("check", "document:c6", "view", "user:zed").code == 1
        assert rebac("rel", "read", "document:c6").lines == []

    def test_with_carries_a_caveat_and_works_with_file(self, rebac):
        """A caveated `--with` relationship is decided by `--context`, also across `--file` lines."""
        flags = (
            "--with",
            "group:eng#member@user:zed",
            "--with",
            "document:c6#viewer@user:amy[only_on_tuesday]",
        )
        result = rebac(
            "check", "--file", "-", "--context", '{"day": "tue"}', *flags,
            stdin="document:c1 view user:zed\ndocument:c6 view user:amy\ndocument:c6 view user:zed\n",
        )  # fmt: skip
        assert [line.split()[0] for line in result.lines] == ["true", "true", "false"]

    def test_malformed_with_names_which_and_where(self, rebac):
        """A bad `--with` exits 2 naming its position and column; nothing is checked."""
        result = rebac("check", "document:c6", "view", "user:zed", "--with", "document:c6#viewer@user:a b")
        assert result.code == 2
        assert "--with #1, column" in result.err
        assert result.out == ""

    def test_with_that_the_schema_forbids_is_refused(self, rebac):
        """A contextual relationship the schema does not allow is an input error, never `true`."""
        result = rebac("check", "document:c6", "view", "user:zed", "--with", "document:c6#viewer@folder:f1")
        assert result.code == 2
        assert result.out == ""

    def test_explain_with_with_is_refused(self, rebac):
        """`--explain` cannot draw `--with` relationships, so the pair is a usage error."""
        result = rebac(
            "check", "document:c6", "view", "user:zed", "--explain", "--with", "document:c6#viewer@user:zed"
        )
        assert result.code == 2
        assert "--explain" in result.err


def _leaf(resource: str, relation: str, *subjects: str) -> ExpandTree:
    return ExpandTree(
        ObjectRef.parse(resource),
        relation,
        ExpandOperation.LEAF,
        subjects=tuple(SubjectRef.parse(s) for s in subjects),
    )


class TestExplainTree:
    def test_union_keeps_only_granting_branches(self):
        """Branches without the subject are pruned from a union."""
        tree = ExpandTree(
            ObjectRef("doc", "d1"),
            "view",
            ExpandOperation.UNION,
            children=(
                _leaf("doc:d1", "viewer", "user:ann", "user:bob"),
                _leaf("doc:d1", "owner", "user:cat"),
            ),
        )
        pruned = explain_tree(tree, SubjectRef("user", "ann"))
        assert pruned is not None
        assert pruned.children == (_leaf("doc:d1", "viewer", "user:ann"),)

    def test_wildcard_counts_for_a_plain_subject_but_not_for_a_subject_set(self):
        """`user:*` reaches user:ann; it never reaches group:g#member."""
        tree = _leaf("doc:d1", "viewer", "user:*")
        assert explain_tree(tree, SubjectRef("user", "ann")) == tree
        assert explain_tree(tree, SubjectRef("group", "g", "member")) is None

    def test_exclusion_keeps_the_subtracted_branch_whole(self):
        """The ban list stays visible next to the granting path."""
        tree = ExpandTree(
            ObjectRef("doc", "d1"),
            "view",
            ExpandOperation.EXCLUSION,
            children=(
                _leaf("doc:d1", "viewer", "user:ann", "user:bob"),
                _leaf("doc:d1", "banned", "user:bob"),
            ),
        )
        pruned = explain_tree(tree, SubjectRef("user", "ann"))
        assert pruned is not None
        assert pruned.children == (
            _leaf("doc:d1", "viewer", "user:ann"),
            _leaf("doc:d1", "banned", "user:bob"),
        )

    def test_absent_subject_gives_none(self):
        """A tree that never mentions the subject explains nothing."""
        assert explain_tree(_leaf("doc:d1", "viewer", "user:bob"), SubjectRef("user", "ann")) is None

    def test_stored_leaf_keeps_the_subject_set_that_leads_to_the_subject(self):
        """A recursive relation expansion keeps `group:g#member` in the leaf when its subtree grants."""
        group = _leaf("group:g", "member", "user:ann")
        tree = ExpandTree(
            ObjectRef("doc", "d1"),
            "viewer",
            ExpandOperation.UNION,
            children=(_leaf("doc:d1", "viewer", "user:bob", "group:g#member"), group),
        )
        pruned = explain_tree(tree, SubjectRef("user", "ann"))
        assert pruned is not None
        assert pruned.children == (_leaf("doc:d1", "viewer", "group:g#member"), group)

    def test_pruning_keeps_caveats_and_labels(self):
        """A pruned leaf keeps each kept subject's caveat, and a pruned arrow keeps its label."""
        leaf = ExpandTree(
            ObjectRef("doc", "d1"),
            "view",
            ExpandOperation.LEAF,
            subjects=(SubjectRef("user", "ann"), SubjectRef("user", "bob")),
            subject_caveats=("only_on_tuesday", ""),
            label="parent->view",
        )
        tree = ExpandTree(ObjectRef("doc", "d1"), "view", ExpandOperation.UNION, children=(leaf,), label="x")
        pruned = explain_tree(tree, SubjectRef("user", "ann"))
        assert pruned is not None
        assert pruned.label == "x"
        (kept,) = pruned.children
        assert (kept.subjects, kept.subject_caveats, kept.label) == (
            (SubjectRef("user", "ann"),),
            ("only_on_tuesday",),
            "parent->view",
        )


class TestExplainDrawing:
    def test_unconditional_subject_gets_a_check_mark(self):
        """A highlighted subject on an uncaveated path is marked ✓."""
        drawn = render_tree(expand_tree_node(_leaf("doc:d1", "viewer", "user:ann"), highlight=frozenset({SubjectRef("user", "ann")})))
        assert "user:ann  ✓" in drawn

    def test_subject_under_a_caveated_node_gets_a_question_mark(self):
        """A subject reached through a caveated subject set is `?`, and the node names the caveat."""
        group = ExpandTree(
            ObjectRef("group", "g"),
            "member",
            ExpandOperation.LEAF,
            subjects=(SubjectRef("user", "ann"),),
            caveat="only_on_tuesday",
        )
        drawn = render_tree(expand_tree_node(group, highlight=frozenset({SubjectRef("user", "ann")})))
        assert drawn.splitlines() == ["group:g#member [caveat only_on_tuesday]", "└── user:ann  ?"]

    def test_arrow_node_title_is_the_arrow(self):
        """An arrow node reads `resource#tupleset->relation` with its operation."""
        arrow = ExpandTree(ObjectRef("doc", "d1"), "view", ExpandOperation.UNION, label="parent->view")
        assert render_tree(expand_tree_node(arrow)).splitlines()[0] == "doc:d1#parent->view \u222a union"
