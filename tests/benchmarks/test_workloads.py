"""Workload pools: deterministic, distinct cold checks, writes that never touch a sampled answer."""

from __future__ import annotations

import pytest

from benchmarks.datasets import make_world
from benchmarks.load_driver import ops_for_process
from benchmarks.queries import build_sample
from benchmarks.workloads import BENCH_WRITER, WORKLOAD_NAMES, BulkCheckOp, WriteOp, build_workloads


@pytest.fixture(scope="module", name="pools")
def _pools():
    world = make_world("drive", 3000)
    sample = build_sample(world, checks=300)
    return sample, build_workloads(world, sample)


class TestBuildWorkloads:
    def test_every_named_workload_is_built_in_order(self, pools):
        """All workloads exist, in the documented run order."""
        _, workloads = pools
        assert tuple(workloads) == WORKLOAD_NAMES

    def test_cold_checks_are_distinct_and_never_repeat(self, pools):
        """The cold pool asks each sampled check once and does not cycle."""
        sample, workloads = pools
        cold = workloads["cold_check"]
        assert not cold.cycle
        assert cold.consistency == "full"
        assert len(set(cold.operations)) == len(cold.operations) == len(sample.checks)

    def test_bulk_calls_hold_one_hundred_items(self, pools):
        """Each CheckBulk operation carries exactly 100 items."""
        _, workloads = pools
        assert all(
            isinstance(op, BulkCheckOp) and len(op.items) == 100 for op in workloads["bulk_check"].operations
        )

    def test_bulk_items_are_distinct_and_never_repeat(self, pools):
        """Bulk items are cold like cold checks: each sampled check at most once, no second pass."""
        _, workloads = pools
        bulk = workloads["bulk_check"]
        assert not bulk.cycle
        assert bulk.consistency == "full"
        items = [item for op in bulk.operations for item in op.items]
        assert len(set(items)) == len(items)

    def test_direct_checks_expect_yes(self, pools):
        """L1 asks stored relations (relation names, not permissions), all of which hold."""
        _, workloads = pools
        ops = workloads["L1_direct_check"].operations
        assert ops
        assert all(op.expected and op.permission in {"owner", "editor", "viewer", "member"} for op in ops)

    def test_writes_use_a_subject_no_query_asks_about(self, pools):
        """Writes grant only user:bench-writer, who appears in no sampled query."""
        sample, workloads = pools
        writes = [op for op in workloads["mixed"].operations if isinstance(op, WriteOp)]
        assert writes
        assert writes[0].relationship("x").endswith(f"@user:{BENCH_WRITER}")
        assert all(q.subject_id != BENCH_WRITER for q in sample.checks)

    def test_unknown_workload_is_an_error(self, pools):
        """Asking for an unknown workload raises ValueError naming it."""
        sample, _ = pools
        with pytest.raises(ValueError, match="teleport"):
            build_workloads(make_world("drive", 3000), sample, names=("teleport",))


class TestOpsForProcess:
    def test_non_cycling_pool_is_dealt_without_overlap(self, pools):
        """Two processes share the cold pool with no check sent twice."""
        _, workloads = pools
        cold = workloads["cold_check"]
        first, second = list(ops_for_process(cold, 0, 2)), list(ops_for_process(cold, 1, 2))
        assert not set(first) & set(second)
        assert len(first) + len(second) == len(cold.operations)
