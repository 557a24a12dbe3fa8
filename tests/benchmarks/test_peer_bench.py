from benchmarks.datasets import make_world
from benchmarks.peer_bench import measure_generation, run_peer_bench


class TestMeasureGeneration:
    def test_counts_the_whole_stream(self):
        """The generation measurement counts every relationship and reports a positive rate."""
        count, rate = measure_generation(make_world("github", 3_000))
        assert 2_700 <= count <= 3_300
        assert rate > 0


class TestRunPeerBench:
    def test_measures_and_verifies_at_a_small_size(self, new_spicedb):
        """A tiny peer bench verifies answers and reports ordered percentiles per thread count."""
        new_spicedb().close()  # skips here, naming the reason, when SpiceDB is unavailable
        report = run_peer_bench(make_world("drive", 2_000), checks=40, threads=(1, 2))
        assert report.sample_queries_agreed > 40
        assert [c.threads for c in report.checks] == [1, 2]
        for figures in report.checks:
            assert 0 < figures.p50_ms <= figures.p95_ms <= figures.p99_ms <= figures.max_ms
            assert figures.throughput_per_s > 0
        assert "dispatch cache" in report.to_text()
