from itertools import islice

import pytest

from benchmarks.datasets import (
    DATASETS,
    IsolationError,
    check_tenant_isolation,
    make_world,
    parse_size,
    relationships,
    tenant_of,
)
from benchmarks.datasets.base import Budget


class TestParseSize:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("10k", 10_000),
            ("100K", 100_000),
            ("1m", 1_000_000),
            ("10M", 10_000_000),
            ("2500", 2_500),
            ("3k", 3_000),
        ],
    )
    def test_accepts_named_and_numeric_sizes(self, text, value):
        """Named sizes and plain or suffixed integers parse to relationship counts."""
        assert parse_size(text) == value

    @pytest.mark.parametrize("text", ["", "ten", "-5", "0", "1g", "1.5m"])
    def test_rejects_other_text_naming_it(self, text):
        """Anything else is a ValueError quoting the input and listing the accepted forms."""
        with pytest.raises(ValueError, match="invalid size") as info:
            parse_size(text)
        assert repr(text) in str(info.value)
        assert "10k" in str(info.value)


class TestBudget:
    def test_small_sizes_make_one_smaller_tenant(self):
        """A size below the tenant budget is one tenant of that size."""
        assert Budget.split(10_000, 50_000) == Budget(tenant_budget=10_000, tenant_count=1)

    def test_large_sizes_make_many_full_tenants(self):
        """A size above the budget is split into full tenants."""
        assert Budget.split(10_000_000, 50_000) == Budget(tenant_budget=50_000, tenant_count=200)

    def test_rejects_non_positive(self):
        """A zero size is refused with a message naming both numbers."""
        with pytest.raises(ValueError, match="positive"):
            Budget.split(0, 50_000)


class TestMakeWorld:
    def test_unknown_dataset_is_named(self):
        """An unknown dataset name raises ValueError listing the known ones."""
        with pytest.raises(ValueError, match="unknown dataset 'nope': expected one of drive, github, wide"):
            make_world("nope", 10_000)

    @pytest.mark.parametrize("name", sorted(DATASETS))
    def test_streams_without_materializing(self, name):
        """The first relationships of a 10M world arrive at once: nothing is built up front."""
        first = list(islice(relationships(make_world(name, 10_000_000)), 5))
        assert len(first) == 5
        assert all(tenant_of(line.split(":", 1)[1]) == 0 for line in first)


class TestTenantIsolation:
    @pytest.mark.parametrize("name", sorted(DATASETS))
    def test_every_tenant_keeps_to_itself(self, name):
        """With many small tenants, no relationship crosses tenants except global wildcards."""
        world = make_world(name, 12_000, tenant_budget=2_000)
        assert world.tenant_count == 6
        for tenant in range(world.tenant_count):
            for _ in check_tenant_isolation(world, tenant, world.tenant_relationships(tenant)):
                pass

    def test_foreign_subject_is_reported(self):
        """A subject from another tenant raises IsolationError quoting the relationship."""
        world = make_world("drive", 10_000)
        with pytest.raises(IsolationError, match="foreign subject: document:t0-d1#viewer@user:t1-u1"):
            list(check_tenant_isolation(world, 0, ["document:t0-d1#viewer@user:t1-u1"]))

    def test_foreign_resource_is_reported(self):
        """A resource of another tenant raises IsolationError."""
        world = make_world("drive", 10_000)
        with pytest.raises(IsolationError, match="foreign resource"):
            list(check_tenant_isolation(world, 0, ["document:t1-d1#viewer@user:t0-u1"]))

    def test_wildcard_outside_a_global_tenant_is_reported(self):
        """A wildcard written by a non-global tenant would grant across tenants: refused."""
        world = make_world("wide", 300_000)
        assert world.global_tenants == (0,)
        list(check_tenant_isolation(world, 0, ["document:t0-d1#viewer@user:*"]))
        with pytest.raises(IsolationError, match="not global"):
            list(check_tenant_isolation(world, 1, ["document:t1-d1#viewer@user:*"]))
