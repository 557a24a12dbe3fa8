"""benchmarks.profiler: collapsed stacks into top tables and flame graphs; py-spy on a live process."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from benchmarks.profiler import WorkerProfiler, _py_spy, flamegraph_svg, parse_folded, top_table

FOLDED = """\
main (app.py:1);handle (h.py:2);query (db.py:3) 6
main (app.py:1);handle (h.py:2) 2
main (app.py:1);idle <loop> (x.py:9) 2
not a stack line
"""

_BUSY = "import time\nend = time.time() + 30\nwhile time.time() < end:\n    sum(i * i for i in range(1000))\n"


class TestParseFolded:
    def test_counts_per_stack_and_skips_bad_lines(self):
        """Each well-formed line becomes a root-first stack with its count; a malformed line is ignored."""
        stacks = parse_folded(FOLDED)
        assert stacks[("main (app.py:1)", "handle (h.py:2)", "query (db.py:3)")] == 6
        assert sum(stacks.values()) == 10
        assert len(stacks) == 3


class TestTopTable:
    def test_own_and_total_shares(self):
        """Own share counts leaf samples, total share every sample with the function on the stack."""
        table = top_table(parse_folded(FOLDED), title="t")
        rows = {line.split(None, 2)[2]: line.split()[:2] for line in table.splitlines()[4:]}
        assert rows["query (db.py:3)"] == ["60.0", "60.0"]
        assert rows["handle (h.py:2)"] == ["20.0", "80.0"]
        assert rows["main (app.py:1)"] == ["0.0", "100.0"]
        assert table.splitlines()[1] == "10 samples"


class TestFlamegraphSvg:
    def test_frames_with_counts_and_escaped_names(self):
        """Every frame appears with its sample count, and markup in names is escaped."""
        svg = flamegraph_svg(parse_folded(FOLDED), title="worker 1")
        assert svg.startswith("<svg")
        assert svg.rstrip().endswith("</svg>")
        assert "query (db.py:3) (6 samples, 60.0%)" in svg
        assert "handle (h.py:2) (8 samples, 80.0%)" in svg
        assert "idle &lt;loop&gt;" in svg
        assert "<loop>" not in svg

    def test_no_samples_is_still_a_valid_svg(self):
        """An empty profile gives an SVG that says zero samples instead of failing."""
        assert "(0 samples)" in flamegraph_svg(parse_folded(""), title="empty")


class TestWorkerProfiler:
    def test_records_a_live_process(self, tmp_path):
        """py-spy on a busy Python process writes a flame graph, a top table and the stacks."""
        if _py_spy() is None:
            pytest.skip("py-spy is not installed in this environment")
        busy = subprocess.Popen([sys.executable, "-c", _BUSY])
        profiler = WorkerProfiler(tmp_path, rate=100)
        try:
            with profiler.recording("busy", [busy.pid]):
                time.sleep(1.5)
        finally:
            busy.kill()
            busy.wait()
        assert profiler.problems == []
        top = (tmp_path / f"busy-worker{busy.pid}-top.txt").read_text()
        assert int(top.splitlines()[1].split()[0]) > 10
        assert "<genexpr>" in top
        assert (tmp_path / f"busy-worker{busy.pid}.svg").read_text().startswith("<svg")

    def test_a_pid_that_cannot_be_profiled_is_a_problem_not_a_crash(self, tmp_path):
        """A vanished process yields a recorded problem naming the pid, and no files."""
        if _py_spy() is None:
            pytest.skip("py-spy is not installed in this environment")
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        profiler = WorkerProfiler(tmp_path)
        with profiler.recording("gone", [gone.pid]):
            time.sleep(0.2)
        assert len(profiler.problems) == 1
        assert str(gone.pid) in profiler.problems[0]
        assert profiler.written == []
