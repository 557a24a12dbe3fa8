"""`PathPlan` values: which steps a plan may hold, and merging plans for one search."""

from __future__ import annotations

import pytest

from rebac.datastore.path_search import PathPlan, PathStep

EDIT = (PathStep("folder", "edit", "owner", None), PathStep("folder", "edit", "parent", "edit"))
VIEW = (PathStep("folder", "view", "viewer", None), PathStep("folder", "view", "parent", "view"))


class TestSteps:
    def test_a_relation_may_be_a_leaf_and_an_arrow_at_one_node(self) -> None:
        plan = PathPlan("folder", "edit", "user", (*EDIT, PathStep("folder", "edit", "parent", None)))
        assert len(plan.steps_from("folder", "edit")) == 3

    def test_two_arrows_over_one_relation_at_one_node_are_refused(self) -> None:
        twice = (*EDIT, PathStep("folder", "edit", "parent", "view"))
        with pytest.raises(ValueError, match="two arrow steps read folder#parent at node edit"):
            PathPlan("folder", "edit", "user", twice)

    def test_two_leaves_of_one_relation_at_one_node_are_refused(self) -> None:
        with pytest.raises(ValueError, match="two leaf steps read folder#owner at node edit"):
            PathPlan("folder", "edit", "user", (*EDIT, EDIT[0]))

    def test_steps_from_an_unknown_state_are_none(self) -> None:
        assert PathPlan("folder", "edit", "user", EDIT).steps_from("document", "edit") == ()


class TestMerge:
    def test_the_union_of_steps_and_nodes_starting_where_the_first_does(self) -> None:
        edit = PathPlan("folder", "edit", "user", EDIT, closure_nodes=(("group", "member"),))
        view = PathPlan("folder", "view", "user", (*VIEW, *EDIT), ignored_sets=(("team", "member"),))
        merged = PathPlan.merge([edit, view])
        assert (merged.resource_type, merged.start, merged.subject_type) == ("folder", "edit", "user")
        assert merged.steps == (*EDIT, *VIEW)  # each step once, in first-seen order
        assert merged.closure_nodes == (("group", "member"),)
        assert merged.ignored_sets == (("team", "member"),)

    def test_plans_of_two_subject_types_are_not_merged(self) -> None:
        with pytest.raises(ValueError, match="different subject types"):
            PathPlan.merge([PathPlan("folder", "edit", "user", EDIT), PathPlan("folder", "edit", "bot", EDIT)])

    def test_plans_that_disagree_on_a_state_are_not_merged(self) -> None:
        other = (PathStep("folder", "edit", "parent", "view"),)
        with pytest.raises(ValueError, match="two arrow steps"):
            PathPlan.merge([PathPlan("folder", "edit", "user", EDIT), PathPlan("folder", "edit", "user", other)])
