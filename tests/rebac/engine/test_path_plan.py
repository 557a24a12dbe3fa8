"""`compile_path_plan`: which union-only permissions become a path search, and with which steps.

A plan exists only where every part of a permission that can lead to the subject is a
union of relations, computed usersets and ``->`` arrows, and every subject set stored on
the way is a nested-group closure (or can never lead to the subject). Anything else is
None: the evaluator answers it.
"""

from __future__ import annotations

import pytest

from rebac.datastore.path_search import PathStep
from rebac.engine.path_plan import COMBINED, BulkPathPlan, compile_path_plan
from rebac.engine.reachability import Reachability
from rebac.schema.builder import arrow, computed, definition, permission, relation, schema, union
from rebac.schema.compiler import compile_schema
from rebac.schema.definitions import CompiledSchema
from tests.rebac.engine.path_schemas import COMBINED_ARROWS, DRIVE


def _plan(
    text_or_schema: str | CompiledSchema, resource_type: str, permission_name: str, subject_type: str = "user"
) -> BulkPathPlan | None:
    compiled = compile_schema(text_or_schema) if isinstance(text_or_schema, str) else text_or_schema
    return compile_path_plan(compiled, Reachability(compiled), resource_type, permission_name, subject_type)


def _must(plan: BulkPathPlan | None) -> BulkPathPlan:
    assert plan is not None
    return plan


class TestDrive:
    def test_view_folds_computed_usersets_into_each_state(self) -> None:
        """document#view reads owner, editor and viewer as leaves and follows parent to folder#view only."""
        plan = _must(_plan(DRIVE, "document", "view"))
        search = plan.search
        assert (search.resource_type, search.start, search.subject_type) == ("document", "view", "user")
        assert search.steps == (
            PathStep("document", "view", "editor", None),
            PathStep("document", "view", "owner", None),
            PathStep("document", "view", "viewer", None),
            PathStep("document", "view", "parent", "view"),
            PathStep("folder", "view", "editor", None),
            PathStep("folder", "view", "owner", None),
            PathStep("folder", "view", "viewer", None),
            PathStep("folder", "view", "parent", "view"),
        )
        assert search.closure_nodes == (("group", "member"),)
        assert search.ignored_sets == ()

    def test_an_arrow_covered_by_another_over_the_same_tupleset_is_dropped(self) -> None:
        """`parent->edit` is inside `parent->view` (every folder's view includes its edit): no step to edit."""
        plan = _must(_plan(DRIVE, "document", "view"))
        assert [s for s in plan.search.steps if s.target is not None] == [
            PathStep("document", "view", "parent", "view"),
            PathStep("folder", "view", "parent", "view"),
        ]
        assert all(step.node != "edit" for step in plan.search.steps)

    def test_view_is_two_computed_hops_deep(self) -> None:
        """view -> edit -> owner: two computed usersets inside one object."""
        assert _must(_plan(DRIVE, "document", "view")).object_hops == 2

    def test_edit_follows_parent_to_edit(self) -> None:
        """document#edit: owner and editor as leaves, parent->edit followed, one computed hop."""
        plan = _must(_plan(DRIVE, "document", "edit"))
        assert plan.search.steps == (
            PathStep("document", "edit", "editor", None),
            PathStep("document", "edit", "owner", None),
            PathStep("document", "edit", "parent", "edit"),
            PathStep("folder", "edit", "editor", None),
            PathStep("folder", "edit", "owner", None),
            PathStep("folder", "edit", "parent", "edit"),
        )
        assert plan.object_hops == 1

    def test_a_relation_is_its_own_leaf(self) -> None:
        """A relation asked directly: one leaf step, no computed hops; group#member closes over itself."""
        viewer = _must(_plan(DRIVE, "document", "viewer"))
        assert viewer.search.steps == (PathStep("document", "viewer", "viewer", None),)
        assert (viewer.object_hops, viewer.search.closure_nodes) == (0, (("group", "member"),))
        owner = _must(_plan(DRIVE, "document", "owner"))
        assert owner.search.steps == (PathStep("document", "owner", "owner", None),)
        assert owner.search.closure_nodes == ()
        member = _must(_plan(DRIVE, "group", "member"))
        assert member.search.steps == (PathStep("group", "member", "member", None),)
        assert member.search.closure_nodes == (("group", "member"),)

    def test_states_group_steps_by_object_and_node(self) -> None:
        """`steps_from` gives a state's steps in plan order, none for a state the plan never reaches."""
        search = _must(_plan(DRIVE, "document", "view")).search
        assert [s.relation for s in search.steps_from("folder", "view")] == [
            "editor",
            "owner",
            "viewer",
            "parent",
        ]
        assert search.steps_from("folder", "edit") == ()
        assert search.steps_from("user", "view") == ()


class TestCombinedArrows:
    def test_arrows_over_one_tupleset_walk_to_one_combined_node(self) -> None:
        """`parent->view + parent->comment`, neither covering the other: one state at ``comment|view``."""
        plan = _must(_plan(COMBINED_ARROWS, "doc", "view"))
        assert plan.search.steps == (
            PathStep("doc", "view", "viewer", None),
            PathStep("doc", "view", "parent", "comment|view"),
            # a box has no `comment`: its part of the combined node is `view` alone
            PathStep("box", "comment|view", "viewer", None),
            PathStep("box", "comment|view", "parent", "view"),
            PathStep("folder", "comment|view", "commenter", None),
            PathStep("folder", "comment|view", "viewer", None),
            PathStep("folder", "comment|view", "parent", "comment|view"),
            PathStep("box", "view", "viewer", None),
            PathStep("box", "view", "parent", "view"),
        )
        assert plan.object_hops == 1
        assert COMBINED == "|"

    def test_each_relation_is_read_once_per_node_as_a_leaf_and_once_as_an_arrow(self) -> None:
        """The combined node keeps the plan valid: no (type, node, relation) read twice the same way."""
        for text, resource_type in ((COMBINED_ARROWS, "doc"), (DRIVE, "document")):
            steps = _must(_plan(text, resource_type, "view")).search.steps
            actions = [(s.resource_type, s.node, s.relation, s.target is None) for s in steps]
            assert len(actions) == len(set(actions))


class TestDepthBounds:
    def test_leaf_hops_counts_arrows_and_computed_usersets(self) -> None:
        """A leaf read `step` arrows away sits step * (object_hops + 1) + object_hops levels down."""
        view = _must(_plan(DRIVE, "document", "view"))  # object_hops 2
        assert [view.leaf_hops(step) for step in range(4)] == [2, 5, 8, 11]
        viewer = _must(_plan(DRIVE, "document", "viewer"))  # object_hops 0
        assert [viewer.leaf_hops(step) for step in range(4)] == [0, 1, 2, 3]

    @pytest.mark.parametrize(("max_depth", "expected"), [(1, 0), (2, 0), (3, 1), (5, 1), (6, 2), (50, 16)])
    def test_max_steps_is_the_first_step_out_of_reach(self, max_depth: int, expected: int) -> None:
        """max_steps(d): the first step whose leaves are `d` or more levels down (document#view)."""
        plan = _must(_plan(DRIVE, "document", "view"))
        assert plan.max_steps(max_depth) == expected
        assert plan.leaf_hops(expected) >= max_depth
        assert expected == 0 or plan.leaf_hops(expected - 1) < max_depth

    def test_max_steps_of_a_relation_is_the_depth(self) -> None:
        """With no computed hops every step is one level: max_steps(d) == d."""
        plan = _must(_plan(DRIVE, "document", "viewer"))
        assert [plan.max_steps(d) for d in (1, 2, 5, 50)] == [1, 2, 5, 50]


class TestSubjectSets:
    def test_a_subject_set_that_cannot_lead_to_the_subject_is_ignored(self) -> None:
        """team#member holds only bots (nested): a user search skips those rows."""
        plan = _must(
            _plan(
                """
                definition user {}
                definition bot {}
                definition team { relation member: bot | team#member }
                definition doc { relation viewer: user | team#member
                  permission view = viewer }
                """,
                "doc",
                "view",
            )
        )
        assert plan.search.steps == (PathStep("doc", "view", "viewer", None),)
        assert plan.search.ignored_sets == (("team", "member"),)
        assert plan.search.closure_nodes == ()

    def test_a_subject_set_that_is_not_a_closure_node_has_no_plan(self) -> None:
        """team#member allows users but does not nest: the evaluator walks it."""
        text = """
            definition user {}
            definition team { relation member: user }
            definition doc { relation viewer: user | team#member
              permission view = viewer }
        """
        assert _plan(text, "doc", "view") is None

    def test_a_closure_node_mixing_in_another_subject_set_has_no_plan(self) -> None:
        """group#member also storing team#member is not a closure node."""
        text = """
            definition user {}
            definition team { relation member: user }
            definition group { relation member: user | group#member | team#member }
            definition doc { relation viewer: user | group#member
              permission view = viewer }
        """
        assert _plan(text, "doc", "view") is None


class TestNoPlan:
    @pytest.mark.parametrize(
        "expression",
        [
            "viewer - banned",  # exclusion
            "viewer & banned",  # intersection
            "viewer + parent.all(view)",  # .all arrow
            "(viewer - banned) + parent->view",  # an exclusion inside a union
        ],
    )
    def test_other_operators_have_no_plan(self, expression: str) -> None:
        """Anything but a union of relations, computed usersets and `->` arrows on the way: None."""
        text = f"""
            definition user {{}}
            definition doc {{
              relation parent: doc
              relation viewer: user
              relation banned: user
              permission view = {expression}
            }}
        """
        assert _plan(text, "doc", "view") is None

    def test_an_operator_on_a_branch_that_cannot_reach_the_subject_does_not_matter(self) -> None:
        """An exclusion over bots only is pruned from a user search, and keeps the bot search planless."""
        text = """
            definition user {}
            definition bot {}
            definition doc {
              relation viewer: user
              relation bots: bot
              relation banned: bot
              permission botview = bots - banned
              permission view = viewer + botview
            }
        """
        plan = _must(_plan(text, "doc", "view"))
        assert plan.search.steps == (PathStep("doc", "view", "viewer", None),)
        assert _plan(text, "doc", "view", "bot") is None

    def test_an_arrow_over_a_permission_has_no_plan(self) -> None:
        """The validator refuses `par->view` over a permission; a schema built without it gets no plan."""
        built = schema(
            definition("user"),
            definition("folder", relation("viewer", "user"), permission("view", "viewer")),
            definition(
                "doc",
                relation("parent", "folder"),
                permission("par", "parent"),
                permission("view", union(computed("par"), arrow("par", "view"))),
            ),
        )
        assert _plan(built, "doc", "view") is None

    def test_a_computed_userset_cycle_has_no_plan(self) -> None:
        """`aaa = bbb + viewer`, `bbb = aaa`: the evaluator's cycle rules apply."""
        text = """
            definition user {}
            definition doc {
              relation viewer: user
              permission aaa = bbb + viewer
              permission bbb = aaa
            }
        """
        assert _plan(text, "doc", "aaa") is None
        assert _plan(text, "doc", "bbb") is None

    @pytest.mark.parametrize(
        ("resource_type", "name", "subject_type"),
        [
            ("nosuch", "view", "user"),  # unknown type
            ("document", "nosuch", "user"),  # unknown permission
            ("document", "view", "nosuch"),  # unknown subject type
        ],
    )
    def test_unknown_names_have_no_plan(self, resource_type: str, name: str, subject_type: str) -> None:
        """The evaluator reports unknown names; the plan compiler only declines."""
        assert _plan(DRIVE, resource_type, name, subject_type) is None

    def test_a_permission_the_subject_type_never_reaches_has_no_plan(self) -> None:
        """No group object is ever a plain subject of document#view: the evaluator says "no" unread."""
        assert _plan(DRIVE, "document", "view", "group") is None
        assert _plan(DRIVE, "document", "parent", "user") is None
