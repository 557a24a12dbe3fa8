"""Expand trees name what each node stands for: arrows, computed usersets and caveats."""

from __future__ import annotations

from rebac.engine import Engine
from rebac.engine.requests import ExpandOperation, ExpandTree
from rebac.testing import memory_datastore
from rebac.tuples import ObjectRef, SubjectRef

SCHEMA = """
use expiration

caveat only_on_tuesday(day string) {
  day == "tue"
}

definition user {}

definition group {
  relation member: user | user with only_on_tuesday
}

definition folder {
  relation owner: user
  permission edit = owner
}

definition document {
  relation parent: folder | folder with only_on_tuesday
  relation owner: user
  relation viewer: user | user with only_on_tuesday | user with expiration | group#member | group#member with only_on_tuesday
  permission edit = owner + parent->edit
  permission edit_all = parent.all(edit)
  permission view = viewer + edit
}
"""

DOC = ObjectRef("document", "42")


async def _expand(relationships: list[str], permission: str, *, recursive: bool) -> ExpandTree:
    ds, rev = await memory_datastore(SCHEMA, relationships)
    return await Engine().expand(ds.snapshot_reader(rev), DOC, permission, recursive=recursive)


class TestExpandLabels:
    async def test_recursive_arrow_node_is_labelled_with_the_arrow(self) -> None:
        """`edit = owner + parent->edit`: the arrow child reads `parent->edit`, not the permission's own label."""
        tree = await _expand(["document:42#parent@folder:f", "folder:f#owner@user:ann"], "edit", recursive=True)
        assert tree.label == ""
        arrow = tree.children[1]
        assert arrow.label == "parent->edit"
        # folder#edit = owner, so the recursive tree goes straight on to folder:f#owner.
        assert [(c.resource, c.relation) for c in arrow.children] == [(ObjectRef("folder", "f"), "owner")]

    async def test_all_arrow_is_labelled_with_all(self) -> None:
        """`parent.all(edit)` is labelled as spelled in the schema."""
        tree = await _expand(["document:42#parent@folder:f"], "edit_all", recursive=True)
        assert tree.label == "parent.all(edit)"
        assert tree.operation is ExpandOperation.INTERSECTION

    async def test_one_level_arrow_and_computed_userset_labels(self) -> None:
        """One level: the arrow leaf reads `parent->edit` and the computed userset leaf its relation."""
        tree = await _expand(["document:42#parent@folder:f"], "edit", recursive=False)
        owner, arrow = tree.children
        assert (owner.label, owner.subjects) == ("owner", (SubjectRef("document", "42", "owner"),))
        assert (arrow.label, arrow.subjects) == ("parent->edit", (SubjectRef("folder", "f", "edit"),))


class TestExpandCaveats:
    async def test_caveated_leaf_subject_carries_its_caveat_name(self) -> None:
        """A subject stored with a caveat is marked with it; an uncaveated neighbour is not."""
        tree = await _expand(
            ["document:42#viewer@user:ann[only_on_tuesday]", "document:42#viewer@user:bob"], "viewer", recursive=False
        )
        assert tree.subjects == (SubjectRef("user", "ann"), SubjectRef("user", "bob"))
        assert tree.subject_caveats == ("only_on_tuesday", "")
        assert tree.caveat_of(SubjectRef("user", "ann")) == "only_on_tuesday"
        assert tree.caveat_of(SubjectRef("user", "bob")) == ""

    async def test_uncaveated_leaf_has_no_caveat_list(self) -> None:
        """Leaves without caveated subjects keep `subject_caveats` empty (the default)."""
        tree = await _expand(["document:42#viewer@user:bob"], "viewer", recursive=False)
        assert tree.subject_caveats == ()

    async def test_caveated_subject_set_marks_the_subtree_it_leads_to(self) -> None:
        """`viewer@group:eng#member[caveat]`: the group's subtree is marked, its members are not."""
        tree = await _expand(
            ["document:42#viewer@group:eng#member[only_on_tuesday]", "group:eng#member@user:bob"],
            "viewer",
            recursive=True,
        )
        leaf, group = tree.children
        assert leaf.subject_caveats == ("only_on_tuesday",)
        assert (group.resource, group.caveat) == (ObjectRef("group", "eng"), "only_on_tuesday")
        assert group.subject_caveats == ()

    async def test_caveated_arrow_row_marks_the_target(self) -> None:
        """A caveated `parent` row marks the folder subtree reached through the arrow."""
        tree = await _expand(
            ["document:42#parent@folder:f[only_on_tuesday]", "folder:f#owner@user:ann"], "edit", recursive=True
        )
        (target,) = tree.children[1].children
        assert (target.resource, target.caveat) == (ObjectRef("folder", "f"), "only_on_tuesday")

    async def test_expiring_subject_is_not_marked_as_caveated(self) -> None:
        """A live expiring relationship is a full grant until it expires: no caveat marker."""
        tree = await _expand(["document:42#viewer@user:ann[expiration:2999-01-01T00:00:00Z]"], "viewer", recursive=False)
        assert tree.subjects == (SubjectRef("user", "ann"),)
        assert tree.subject_caveats == ()
