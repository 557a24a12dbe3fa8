"""CI smoke run of the full harness: real server, real Postgres, client processes, answers checked."""

from __future__ import annotations

import asyncio
import json
import os

import asyncpg
import pytest

from benchmarks.__main__ import EXIT_OK, main
from benchmarks.profiler import _py_spy

DSN = os.environ.get("REBAC_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")
SMOKE_WORKLOADS = "L0_health,L1_direct_check,cold_check,warm_check,write"


def _postgres_or_skip() -> None:
    async def probe() -> None:
        conn = await asyncpg.connect(DSN, timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL at {DSN} unavailable: {exc}")


class TestHarnessSmoke:
    def test_runs_once_at_10k_and_every_answer_agrees(self, tmp_path, capsys):
        """The harness runs end to end at 10k (one server worker, one client process) with zero mismatches."""
        _postgres_or_skip()
        out = tmp_path / "report"
        code = main(
            [
                "run",
                "--dataset",
                "drive",
                "--size",
                "10k",
                "--datastore-uri",
                DSN,
                "--workers",
                "1",
                "--client-processes",
                "1",
                "--concurrency",
                "2",
                "--duration",
                "1",
                "--checks",
                "300",
                "--workloads",
                SMOKE_WORKLOADS,
                "--out",
                str(out),
            ]
        )
        printed = capsys.readouterr()
        assert code == EXIT_OK, printed.err[-2000:]
        report = json.loads((out / "report.json").read_text())
        assert report["mismatches"] == 0
        assert report["errors"] == 0
        assert report["dataset"]["relationships"] > 9000
        assert set(report["workloads"]) == set(SMOKE_WORKLOADS.split(","))
        for name, entry in report["workloads"].items():
            assert entry["operations"] > 0, name
            assert entry["p50_ms"] <= entry["p99_ms"] <= entry["max_ms"], name
            assert entry["fraction_of_L0"] is not None, name
        assert report["workloads"]["L0_health"]["fraction_of_L0"] == 1.0
        assert (out / "report.md").read_text().startswith("# rebac benchmark: drive")
        assert (out / "latency_cdf.png").stat().st_size > 0
        assert report["workloads"]["L1_direct_check"]["datastore_calls_per_op"] is not None
        # warm_check was measured after a warm-up that reached the one worker with its whole hot set.
        warm = report["config"]["warm_up"]
        assert set(warm) == {"warm_check"}
        assert warm["warm_check"]["workers_warmed"] == [0]
        assert warm["warm_check"]["identified"] is True
        assert 0 < warm["warm_check"]["distinct"] <= 300
        assert warm["warm_check"]["calls"] >= warm["warm_check"]["distinct"]
        assert report["workloads"]["warm_check"]["warm_up_calls"] == warm["warm_check"]["calls"]
        assert report["workloads"]["cold_check"]["warm_up_calls"] is None
        notes = [n for n in report["notes"] if n.startswith("warm_check: an unmeasured warm-up of")]
        assert len(notes) == 1
        assert f"{warm['warm_check']['calls']:,} calls" in notes[0]
        assert notes[0] in (out / "report.md").read_text()

    def test_profile_of_the_cold_checks(self, tmp_path):
        """--profile leaves a flame graph and a top table per server worker for the cold-check workload."""
        if _py_spy() is None:
            pytest.skip("py-spy is not installed in this environment")
        _postgres_or_skip()
        args = ["run", "--dataset", "drive", "--size", "2000", "--datastore-uri", DSN, "--workers", "1"]
        args += ["--client-processes", "1", "--concurrency", "2", "--duration", "1", "--checks", "100"]
        args += ["--workloads", "cold_check", "--out", str(tmp_path / "r"), "--profile", str(tmp_path / "p")]
        assert main(args) == EXIT_OK
        tops = list((tmp_path / "p").glob("cold_check-worker*-top.txt"))
        assert len(tops) == 1
        assert "%Own" in tops[0].read_text()
        assert tops[0].with_name(tops[0].name.replace("-top.txt", ".svg")).read_text().startswith("<svg")
