"""Properties every dataset world must have: deterministic, valid, sized, shaped as described."""

import hashlib
from collections import Counter, defaultdict

import pytest

from benchmarks.datasets import DATASETS, make_world, relationships
from rebac.schema import TypeSystem, compile_schema
from rebac.tuples import Relationship


def _digest(lines):
    h = hashlib.sha256()
    count = 0
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
        count += 1
    return h.hexdigest(), count


@pytest.mark.parametrize("name", sorted(DATASETS))
class TestEveryWorld:
    def test_same_seed_same_stream(self, name):
        """Two generations with the same (size, seed) yield identical streams."""
        assert _digest(relationships(make_world(name, 10_000, 7))) == _digest(
            relationships(make_world(name, 10_000, 7))
        )

    def test_other_seed_other_stream(self, name):
        """A different seed yields different data."""
        assert (
            _digest(relationships(make_world(name, 10_000, 7)))[0]
            != _digest(relationships(make_world(name, 10_000, 8)))[0]
        )

    def test_tenants_regenerate_alone(self, name):
        """Regenerating one tenant alone gives exactly its slice of the full stream."""
        world = make_world(name, 6_000, tenant_budget=2_000)
        full = list(relationships(world))
        alone = list(world.tenant_relationships(1))
        start = sum(1 for _ in world.tenant_relationships(0))
        assert full[start : start + len(alone)] == alone

    def test_size_is_approximately_the_count(self, name):
        """The relationship count is within 10% of the requested size."""
        _, count = _digest(relationships(make_world(name, 10_000)))
        assert 9_000 <= count <= 11_000

    def test_every_line_is_valid_and_unique(self, name):
        """Every line parses as a canonical relationship, round-trips, and none repeats."""
        lines = list(relationships(make_world(name, 10_000)))
        for line in lines:
            assert str(Relationship.parse(line)) == line
        assert len(set(lines)) == len(lines)

    def test_schema_compiles_and_allows_every_relationship(self, name):
        """The schema compiles and allows every generated relationship."""
        world = make_world(name, 10_000)
        types = TypeSystem(compile_schema(world.schema))
        for line in relationships(world):
            types.validate_relationship(Relationship.parse(line))


def _edges(name, size=10_000):
    edges = defaultdict(list)
    for line in relationships(make_world(name, size)):
        resource, subject = line.split("@")
        edges[resource].append(subject)
    return edges


class TestDriveShape:
    def test_groups_nest_at_least_five_levels(self):
        """Some user reaches the `everyone` group through 5 or more nested groups."""
        parent = {}
        for resource, subjects in _edges("drive").items():
            if resource.startswith("group:") and resource.endswith("#member"):
                for s in subjects:
                    if s.startswith("group:"):
                        parent[s.split("#")[0]] = resource.split("#")[0]

        def depth(g):
            return 0 if g not in parent else 1 + depth(parent[g])

        assert max(depth(g) for g in parent) >= 5

    def test_folder_chains_reach_but_never_exceed_ten(self):
        """Folder parent chains are at most 10 long, and some are 8 or longer."""
        parent = {}
        for resource, subjects in _edges("drive").items():
            if resource.startswith("folder:") and resource.endswith("#parent"):
                parent[resource.split("#")[0]] = subjects[0]

        def depth(f):
            return 0 if f not in parent else 1 + depth(parent[f])

        depths = [depth(f) for f in parent]
        assert max(depths) <= 10
        assert max(depths) >= 8

    def test_every_document_has_a_folder_and_an_owner(self):
        """Each document has exactly one parent folder and one owner."""
        edges = _edges("drive")
        docs = {r.split("#")[0] for r in edges if r.startswith("document:")}
        for doc in docs:
            assert len(edges[f"{doc}#parent"]) == 1
            assert len(edges[f"{doc}#owner"]) == 1


class TestGithubShape:
    def test_has_nested_teams_roles_and_bans(self):
        """Teams nest in teams, repositories grant every role, and some users are banned."""
        relations = Counter()
        nested = 0
        for resource, subjects in _edges("github").items():
            relations[resource.split(":")[0] + "#" + resource.split("#")[1]] += len(subjects)
            if resource.startswith("team:") and any(s.startswith("team:") for s in subjects):
                nested += 1
        assert nested > 10
        for role in ("admin", "maintainer", "writer", "triager", "reader", "banned", "internal"):
            assert relations[f"repository#{role}"] > 0, role
        assert relations["organization#banned"] > 0


class TestWideShape:
    def test_has_public_documents_and_large_flat_groups(self):
        """Some documents are public (user:*) and every group has hundreds of direct members."""
        edges = _edges("wide")
        public = [r for r, s in edges.items() if "user:*" in s]
        groups = {r: len(s) for r, s in edges.items() if r.startswith("group:")}
        assert len(public) > 100
        assert len(groups) == 8
        assert min(groups.values()) >= 300
        assert all(s.startswith("user:") for r, ss in edges.items() if r.startswith("group:") for s in ss)
