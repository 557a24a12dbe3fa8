import json

import pytest

from benchmarks.datasets import make_world, tenant_of
from benchmarks.queries import build_sample, sampled_tenants


class TestSampledTenants:
    def test_spreads_over_the_world(self):
        """Three of 200 tenants are the first, the middle and the last."""
        world = make_world("drive", 10_000_000)
        assert sampled_tenants(world, 3) == [0, 100, 199]

    def test_never_more_than_exist(self):
        """Asking for more tenants than exist returns them all."""
        assert sampled_tenants(make_world("drive", 10_000), 3) == [0]


@pytest.mark.parametrize("name", ["drive", "github", "wide"])
class TestBuildSample:
    def test_is_deterministic(self, name):
        """The same world gives the same sample, answers included."""
        world = make_world(name, 10_000)
        assert build_sample(world, checks=50) == build_sample(make_world(name, 10_000), checks=50)

    def test_mixes_positive_and_negative_checks(self, name):
        """Between a quarter and three quarters of the checks expect permission; all are distinct."""
        sample = build_sample(make_world(name, 10_000), checks=200)
        assert len(sample.checks) == 200
        assert 50 <= sample.positive_checks() <= 150
        assert len(set(sample.checks)) == 200

    def test_lookups_have_answers_and_serialize(self, name):
        """Lookup queries carry sorted expected ids and the sample is JSON-serializable."""
        sample = build_sample(make_world(name, 10_000), checks=10)
        assert sample.lookup_resources
        assert sample.lookup_subjects
        for q in (*sample.lookup_resources, *sample.lookup_subjects):
            assert list(q.expected) == sorted(q.expected)
        assert json.loads(json.dumps(sample.to_json()))["dataset"] == name


class TestCrossTenantChecks:
    def test_drive_asks_foreign_users_and_denies_them(self):
        """With many tenants, some checks ask a user of another tenant, and all expect denial."""
        world = make_world("drive", 12_000, tenant_budget=2_000)
        sample = build_sample(world, checks=200)
        foreign = [q for q in sample.checks if tenant_of(q.subject_id) != tenant_of(q.resource_id)]
        assert foreign
        assert not any(q.expected for q in foreign)

    def test_wide_public_documents_admit_foreign_users(self):
        """A public document of the global tenant admits users of other tenants."""
        world = make_world("wide", 12_000, tenant_budget=2_000)
        sample = build_sample(world, checks=300)
        foreign_yes = [
            q for q in sample.checks if tenant_of(q.subject_id) != tenant_of(q.resource_id) and q.expected
        ]
        assert foreign_yes
        assert all(tenant_of(q.resource_id) == 0 for q in foreign_yes)
