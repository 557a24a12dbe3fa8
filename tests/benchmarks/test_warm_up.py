"""The warm-up before warm workloads: what it sends, that it reaches every server worker, that it is checked."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import urllib.request
from collections.abc import Iterator

import pytest

from benchmarks.datasets import make_world, relationships
from benchmarks.harness import _load_server, _request_counts
from benchmarks.load_driver import RunResult, warm_up
from benchmarks.peer_bench import time_checks
from benchmarks.peer_driver import warm_up_on_peer
from benchmarks.queries import CheckQuery, build_sample
from benchmarks.report import Report
from benchmarks.server_process import BenchDatabase, ServerProcess
from benchmarks.workloads import HealthOp, Workload, WriteOp, build_workloads, distinct_reads
from tests.benchmarks.test_harness_smoke import DSN, _postgres_or_skip

_WORLD = make_world("drive", 2000)
_SAMPLE = build_sample(_WORLD, checks=40, lookup_resources=2, lookup_subjects=2, tenants=1)
_WORKERS = 2


@pytest.fixture(scope="module", name="pools")
def _pools() -> dict[str, Workload]:
    return build_workloads(_WORLD, _SAMPLE)


class TestWarmUpSets:
    def test_warm_workloads_expose_every_distinct_read_of_their_pool(self, pools):
        """warm_check and mixed carry their pool's distinct reads, in first-use order; the rest carry none."""
        for name in ("warm_check", "mixed"):
            workload = pools[name]
            reads = [op for op in workload.operations if not isinstance(op, WriteOp | HealthOp)]
            assert workload.warm_up == tuple(dict.fromkeys(reads)), name
            assert len(set(workload.warm_up)) == len(workload.warm_up), name
        assert {type(op) for op in pools["warm_check"].warm_up} == {CheckQuery}
        assert not any(isinstance(op, WriteOp) for op in pools["mixed"].warm_up)
        assert {name for name, w in pools.items() if w.warm_up} == {"warm_check", "mixed"}

    def test_warm_check_warms_the_hot_checks_it_repeats(self, pools):
        """Every check the warm pool repeats is in its warm-up, and the warm-up reads at the pool's consistency."""
        warm = pools["warm_check"]
        assert set(warm.operations) == set(warm.warm_up)
        assert len(warm.warm_up) <= len(_SAMPLE.checks)
        assert warm.consistency == "min"

    def test_a_warm_up_must_be_distinct_reads_of_the_pool(self):
        """Duplicates, writes and operations outside the pool are refused."""
        a, b = _SAMPLE.checks[:2]
        with pytest.raises(ValueError, match="distinct"):
            Workload("w", "w", (a, b), "min", cycle=True, warm_up=(a, a))
        with pytest.raises(ValueError, match="reads only"):
            Workload("w", "w", (a, WriteOp()), "min", cycle=True, warm_up=(WriteOp(),))
        with pytest.raises(ValueError, match="from the pool"):
            Workload("w", "w", (a,), "min", cycle=True, warm_up=(b,))
        assert distinct_reads((a, WriteOp(), b, a, HealthOp())) == (a, b)


class TestReportRecordsTheWarmUp:
    def test_warm_up_goes_to_the_config_and_the_entry(self):
        """Report.add with a warm-up records it under config.warm_up and its call count in the entry."""
        report = Report(machine={}, versions={}, dataset={"name": "drive", "relationships": 0}, config={})
        run = RunResult(latencies_ms=[1.0], operations=1, items=1, wall_seconds=1.0)
        report.add("warm_check", "w", run, server={}, peer=None, warm_up={"calls": 81, "distinct": 40})
        report.add("L0_health", "h", run, server={}, peer=None)
        assert report.config["warm_up"] == {"warm_check": {"calls": 81, "distinct": 40}}
        assert report.to_json()["workloads"]["warm_check"]["warm_up_calls"] == 81
        assert report.to_json()["workloads"]["L0_health"]["warm_up_calls"] is None


def _check_calls_per_worker(server: ServerProcess) -> dict[int, float]:
    """Check calls (any status) each worker has counted, from its own /metrics."""
    counts = {}
    for worker in range(server.workers):
        with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port + worker}/metrics") as response:
            text = response.read().decode()
        counts[worker] = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if re.match(r'rebac_grpc_requests_total\{.*method="[^"]*/Check"', line)
        )
    return counts


@pytest.fixture(scope="module", name="server")
def _server(tmp_path_factory) -> Iterator[ServerProcess]:
    """A two-worker rebac server on a fresh database holding the 2000-relationship drive world."""
    _postgres_or_skip()
    log = tmp_path_factory.mktemp("warm") / "server.log"
    with BenchDatabase(DSN, name=f"rebac_bench_warm_{os.getpid()}") as database:
        database.migrate()
        with ServerProcess(database.dsn, workers=_WORKERS, log_path=log) as server:
            asyncio.run(_load_server(server.endpoint, _WORLD))
            yield server


class TestWarmUpReachesEveryWorker:
    def test_every_worker_gets_every_distinct_check(self, server, pools):
        """Each server worker counts at least one Check call per distinct warm-up check; none is wrong."""
        workload = pools["warm_check"]
        before = _check_calls_per_worker(server)
        done, failures = asyncio.run(
            warm_up(
                server.endpoint,
                workload,
                workers=server.workers,
                request_counts=lambda: _request_counts(server),
                concurrency=4,
            )
        )
        after = _check_calls_per_worker(server)
        assert done.identified
        assert done.complete
        assert done.workers_warmed == (0, 1)
        assert done.distinct == len(workload.warm_up)
        # One probe per connection; the two kept ones then send the rest of the set each.
        assert done.calls == done.connections + _WORKERS * (done.distinct - 1)
        assert (failures.errors, failures.mismatch_count) == (0, 0)
        assert failures.operations == done.calls
        for worker in range(_WORKERS):
            assert after[worker] - before[worker] >= done.distinct, (worker, before, after)
        assert "2 of 2 server workers" in done.describe()

    def test_without_metrics_every_blind_connection_carries_the_whole_set(self, server, pools):
        """When workers cannot be told apart, 4 x workers connections each send every distinct check."""
        workload = pools["warm_check"]
        done, failures = asyncio.run(
            warm_up(server.endpoint, workload, workers=server.workers, request_counts=lambda: None)
        )
        assert not done.identified
        assert done.complete
        assert done.workers_warmed == ()
        assert done.connections == 4 * _WORKERS
        assert done.calls == done.connections * done.distinct
        assert (failures.errors, failures.mismatch_count) == (0, 0)

    def test_a_wrong_answer_in_the_warm_up_is_a_mismatch(self, server):
        """A warm-up check whose expected answer is wrong is counted as a mismatch on every worker it reaches."""
        right = _SAMPLE.checks[0]
        wrong = dataclasses.replace(right, expected=not right.expected)
        workload = Workload("w", "w", (wrong, *_SAMPLE.checks[1:5]), "min", cycle=True)
        workload = dataclasses.replace(workload, warm_up=workload.operations)
        done, failures = asyncio.run(
            warm_up(
                server.endpoint,
                workload,
                workers=server.workers,
                request_counts=lambda: _request_counts(server),
            )
        )
        assert done.complete
        # The wrong check is the probe: sent on every connection opened.
        assert failures.mismatch_count == done.connections
        assert str(wrong) in failures.mismatches[0]


class TestPeerWarmUp:
    def test_peer_gets_every_distinct_read_once_and_answers_are_checked(self, new_spicedb, pools):
        """The SpiceDB peer receives the warm-up set once (one in-process instance); a wrong answer is a mismatch."""
        peer = new_spicedb()
        peer.write_schema(_WORLD.schema)
        peer.load(relationships(_WORLD))
        # Fully consistent here: a minimize_latency read right after the load may see SpiceDB's
        # quantized revision from before it (the harness reads long after its load).
        workload = dataclasses.replace(pools["mixed"], consistency="full")
        done = warm_up_on_peer(peer, workload, concurrency=4)
        assert done.operations == len(workload.warm_up)
        assert (done.errors, done.mismatch_count) == (0, 0)
        right = _SAMPLE.checks[0]
        wrong = dataclasses.replace(right, expected=not right.expected)
        bad = Workload("w", "w", (wrong,), "full", cycle=True, warm_up=(wrong,))
        assert warm_up_on_peer(peer, bad, concurrency=1).mismatch_count == 1
        # A spent budget starts nothing: the warm-up is bounded however slow the peer is.
        assert warm_up_on_peer(peer, workload, concurrency=4, budget=0.0).operations == 0

    def test_peer_bench_can_time_after_a_warm_up(self, new_spicedb):
        """time_checks(warm_up=True) sends every distinct check once, untimed, before the timed batch."""
        peer = new_spicedb()
        peer.write_schema(_WORLD.schema)
        peer.load(relationships(_WORLD))
        checks = _SAMPLE.checks[:10]
        figures = time_checks(peer, (*checks, *checks), warm_up=True)
        assert figures.warm_up_checks == len(set(checks))
        assert figures.checks == 2 * len(checks)
        assert time_checks(peer, checks).warm_up_checks == 0
