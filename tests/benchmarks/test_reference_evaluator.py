import pytest

from benchmarks.datasets import make_world, relationships
from benchmarks.queries import build_sample
from benchmarks.reference import (
    DriveReference,
    GithubReference,
    Graph,
    SubjectSet,
    WideReference,
    materialize,
    reference_for,
)


def _graph(*lines):
    graph = Graph()
    for line in lines:
        graph.add(line)
    return graph


class TestSubjectSet:
    def test_union_of_concrete_sets(self):
        """A union of concrete sets holds the users of both."""
        s = SubjectSet(frozenset({"a"})).union(SubjectSet(frozenset({"b"})))
        assert s == SubjectSet(frozenset({"a", "b"}))

    def test_wildcard_minus_users_excludes_them(self):
        """Everyone minus bob holds ann and strangers but not bob."""
        s = SubjectSet(wildcard=True).minus(SubjectSet(frozenset({"bob"})))
        assert s.contains("ann")
        assert s.contains("stranger")
        assert not s.contains("bob")

    def test_anything_minus_wildcard_is_empty(self):
        """X minus everyone is empty."""
        s = SubjectSet(frozenset({"a", "b"}), wildcard=True).minus(SubjectSet(wildcard=True))
        assert s == SubjectSet()

    def test_union_restores_an_excluded_user(self):
        """(everyone - bob) + bob holds bob again."""
        s = (
            SubjectSet(wildcard=True)
            .minus(SubjectSet(frozenset({"bob"})))
            .union(SubjectSet(frozenset({"bob"})))
        )
        assert s.contains("bob")
        assert not s.excluded

    def test_concrete_minus_concrete_has_no_exclusions(self):
        """Subtracting from a concrete set leaves a concrete set."""
        assert SubjectSet(frozenset({"a", "b"})).minus(SubjectSet(frozenset({"b"}))) == SubjectSet(
            frozenset({"a"})
        )


class TestGraph:
    def test_rejects_a_malformed_line(self):
        """A line that is not a relationship raises ValueError quoting it."""
        with pytest.raises(ValueError, match="not a relationship: 'document:1#viewer'"):
            Graph().add("document:1#viewer")


class TestDriveReference:
    GRAPH = (
        "group:eng#member@group:backend#member",
        "group:backend#member@user:ann",
        "folder:root#viewer@group:eng#member",
        "folder:sub#parent@folder:root",
        "document:d1#parent@folder:sub",
        "document:d2#owner@user:bob",
        "folder:root#editor@user:cat",
    )

    def test_nested_group_on_ancestor_folder_grants_view(self):
        """ann views d1 through backend -> eng -> root folder -> sub -> d1."""
        ref = DriveReference(_graph(*self.GRAPH))
        assert ref.check("document", "d1", "view", "ann")
        assert not ref.check("document", "d1", "edit", "ann")

    def test_user_cannot_reach_anothers_document(self):
        """ann cannot view bob's private d2, and bob cannot view d1."""
        ref = DriveReference(_graph(*self.GRAPH))
        assert not ref.check("document", "d2", "view", "ann")
        assert not ref.check("document", "d1", "view", "bob")

    def test_edit_implies_view_and_inherits(self):
        """An editor of the root folder edits and views every descendant."""
        ref = DriveReference(_graph(*self.GRAPH))
        assert ref.check("document", "d1", "edit", "cat")
        assert ref.check("document", "d1", "view", "cat")
        assert ref.lookup_resources("document", "view", "cat") == ["d1"]

    def test_cycle_is_reported(self):
        """A folder cycle (never generated) is an AssertionError, not a wrong answer."""
        ref = DriveReference(_graph("folder:a#parent@folder:b", "folder:b#parent@folder:a"))
        with pytest.raises(AssertionError, match="cycle"):
            ref.permission("folder", "a", "view")

    def test_unknown_permission_is_named(self):
        """Asking for a permission the schema lacks raises ValueError naming it."""
        with pytest.raises(ValueError, match="drive has no document#share"):
            DriveReference(_graph(*self.GRAPH)).permission("document", "d1", "share")


class TestGithubReference:
    GRAPH = (
        "organization:o#owner@user:boss",
        "organization:o#member@team:all#member",
        "organization:o#banned@user:troll",
        "team:all#direct_member@team:core#member",
        "team:core#maintainer@user:ann",
        "team:core#direct_member@user:troll",
        "repository:r#organization@organization:o",
        "repository:r#internal@organization:o",
        "repository:r#writer@team:core#member",
        "repository:r#reader@user:eve",
        "repository:r#banned@user:eve",
    )

    def test_roles_and_org_inheritance(self):
        """A nested team's member writes; the org owner manages; members read internal repos."""
        ref = GithubReference(_graph(*self.GRAPH))
        assert ref.check("repository", "r", "write", "ann")
        assert ref.check("repository", "r", "manage", "boss")
        assert ref.check("repository", "r", "read", "ann")
        assert not ref.check("repository", "r", "manage", "ann")

    def test_bans_subtract_at_repo_and_org(self):
        """A repo-banned reader and an org-banned writer are both denied."""
        ref = GithubReference(_graph(*self.GRAPH))
        assert not ref.check("repository", "r", "read", "eve")
        assert not ref.check("repository", "r", "write", "troll")
        assert not ref.check("repository", "r", "read", "troll")


class TestWideReference:
    def test_wildcard_grants_every_user_and_lookup_subjects_shows_it(self):
        """A public document is viewable by anyone, and its holders include the wildcard."""
        ref = WideReference(
            _graph(
                "document:p#viewer@user:*",
                "document:p#editor@user:ann",
                "document:q#viewer@group:g#member",
                "group:g#member@user:bob",
            )
        )
        assert ref.check("document", "p", "view", "anyone")
        assert not ref.check("document", "p", "edit", "anyone")
        holders = ref.permission("document", "p", "view")
        assert holders.wildcard
        assert holders.ids == {"ann"}
        assert ref.lookup_resources("document", "view", "bob") == ["p", "q"]


class TestRestriction:
    def test_restricted_reference_agrees_for_its_users(self):
        """Restricting to some users changes no answer about them."""
        world = make_world("drive", 10_000)
        graph = materialize(world, [0])
        users = ["t0-u1", "t0-u2", "t0-u500"]
        full = reference_for("drive", graph)
        cut = reference_for("drive", graph, among=frozenset(users))
        for user in users:
            assert cut.lookup_resources("document", "view", user) == full.lookup_resources(
                "document", "view", user
            )


@pytest.mark.parametrize("name", ["drive", "github", "wide"])
class TestPerTenantScope:
    def test_tenant_reference_equals_whole_world_reference(self, name):
        """Answers from the sampled tenants alone equal answers over the whole world's relationships."""
        world = make_world(name, 12_000, tenant_budget=2_000)
        sample = build_sample(world, checks=60, lookup_resources=3, lookup_subjects=3)
        whole = Graph()
        for line in relationships(world):
            whole.add(line)
        ref = reference_for(name, whole)
        for q in sample.checks:
            assert ref.check(q.resource_type, q.resource_id, q.permission, q.subject_id) == q.expected, str(q)
        for lr in sample.lookup_resources:
            assert (
                tuple(ref.lookup_resources(lr.resource_type, lr.permission, lr.subject_id)) == lr.expected
            ), str(lr)
        for ls in sample.lookup_subjects:
            holders = ref.permission(ls.resource_type, ls.resource_id, ls.permission)
            assert tuple(sorted([*holders.ids, *(["*"] if holders.wildcard else [])])) == ls.expected, str(ls)
