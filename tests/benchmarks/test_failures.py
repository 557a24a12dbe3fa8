"""Failed and timed-out calls are errors of their workload: counted, reported, never a crash."""

from __future__ import annotations

import json

from benchmarks.__main__ import EXIT_ERRORS, main
from benchmarks.load_driver import ClientPool, RunResult
from benchmarks.report import Report
from benchmarks.workloads import HealthOp, Workload
from tests.benchmarks.test_harness_smoke import DSN, _postgres_or_skip

_HEALTH = Workload("L0_health", "health", (HealthOp(),), "min", cycle=True)


def _report_with(runs: dict[str, RunResult]) -> Report:
    report = Report(machine={}, versions={}, dataset={"name": "drive", "relationships": 0}, config={})
    for name, run in runs.items():
        report.add(name, name, run, server={}, peer=None)
    report.finish()
    return report


class TestClientPoolFailures:
    def test_unreachable_server_is_counted_as_errors(self):
        """Against a port nobody listens on, every call is an error with its message; run() returns normally."""
        with ClientPool("127.0.0.1:1", processes=1) as pool:
            run = pool.run(_HEALTH, concurrency=2, duration=0.5, call_timeout=0.2)
        assert run.errors > 0
        assert run.operations == 0
        assert run.mismatch_count == 0
        assert "UNAVAILABLE" in run.error_messages[0] or "DEADLINE" in run.error_messages[0]


class TestReportErrors:
    def test_errors_per_workload_in_the_table_and_listed(self):
        """The Markdown table has an errors column per workload and lists the first error of each failing one."""
        failing = RunResult(latencies_ms=[1.0], operations=1, items=1, errors=3, wall_seconds=1.0)
        failing.error_messages.append("pre-workload write: AioRpcError: DEADLINE_EXCEEDED")
        clean = RunResult(latencies_ms=[1.0], operations=5, items=5, wall_seconds=1.0)
        report = _report_with({"L0_health": clean, "cold_check": failing})
        text = report.to_markdown()
        rows = {
            line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in text.splitlines() if "| " in line
        }
        errors_column = rows["workload"].index("errors")
        assert rows["cold_check"][errors_column] == "3"
        assert rows["L0_health"][errors_column] == "0"
        assert "- cold_check: pre-workload write: AioRpcError: DEADLINE_EXCEEDED" in text
        assert report.errors == 3
        assert report.mismatches == 0


class TestRunWithTimeouts:
    def test_timeouts_are_errors_and_exit_3_not_a_crash(self, tmp_path, capsys):
        """With an impossible --call-timeout the run completes, reports errors per workload and exits 3."""
        _postgres_or_skip()
        out = tmp_path / "report"
        args = ["run", "--dataset", "drive", "--size", "2000", "--datastore-uri", DSN]
        args += ["--workers", "1", "--client-processes", "1", "--concurrency", "2", "--duration", "0.5"]
        args += ["--checks", "50", "--workloads", "cold_check", "--call-timeout", "0.0001", "--out", str(out)]
        code = main(args)
        printed = capsys.readouterr()
        assert code == EXIT_ERRORS, printed.err[-2000:]
        assert "ERRORS:" in printed.err
        assert "cold_check" in printed.err
        report = json.loads((out / "report.json").read_text())
        assert report["mismatches"] == 0
        entry = report["workloads"]["cold_check"]
        assert entry["errors"] > 0
        assert entry["error_examples"][0].startswith("pre-workload write:")
