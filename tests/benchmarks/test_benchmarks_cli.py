from benchmarks.__main__ import EXIT_OK, EXIT_USAGE, main
from benchmarks.datasets import make_world, relationships


class TestGenerate:
    def test_writes_relationships_schema_and_queries(self, tmp_path, capsys):
        """generate writes one relationship per line, the schema beside it, and the query sample."""
        out = tmp_path / "drive.txt"
        code = main(
            [
                "generate",
                "--dataset",
                "drive",
                "--size",
                "10k",
                "--out",
                str(out),
                "--queries",
                str(tmp_path / "q.json"),
                "--checks",
                "20",
            ]
        )
        assert code == EXIT_OK
        assert out.read_text().splitlines() == list(relationships(make_world("drive", 10_000)))
        assert (tmp_path / "drive.zed").read_text().startswith("definition user {}")
        assert '"checks"' in (tmp_path / "q.json").read_text()
        assert "wrote 9" in capsys.readouterr().out

    def test_bad_size_is_one_line_and_exit_2(self, tmp_path, capsys):
        """An invalid size prints one error line naming it and writes nothing."""
        code = main(["generate", "--size", "huge", "--out", str(tmp_path / "x.txt")])
        assert code == EXIT_USAGE
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "invalid size 'huge'" in err
        assert not (tmp_path / "x.txt").exists()


class TestRun:
    def test_bad_concurrency_sweep_is_one_line_and_exit_2(self, tmp_path, capsys):
        """A malformed --concurrency-sweep prints one error line naming it and starts nothing."""
        code = main(["run", "--out", str(tmp_path / "r"), "--concurrency-sweep", "1,x"])
        assert code == EXIT_USAGE
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "'1,x'" in err
        assert not (tmp_path / "r").exists()

    def test_unknown_workload_is_rejected(self, tmp_path, capsys):
        """An unknown workload name is a usage error that lists the known ones."""
        code = main(["run", "--out", str(tmp_path / "r"), "--workloads", "cold_check,teleport"])
        assert code == EXIT_USAGE
        assert "unknown workload(s) teleport" in capsys.readouterr().err


class TestVerify:
    def test_verify_reports_agreement(self, new_spicedb, capsys):
        """verify at a small size loads SpiceDB and reports agreement with the reference."""
        new_spicedb().close()  # skips here, naming the reason, when SpiceDB is unavailable
        code = main(["verify", "--dataset", "wide", "--size", "3000", "--checks", "30"])
        out = capsys.readouterr().out
        assert code == EXIT_OK, out
        assert "OK: SpiceDB agrees with the reference" in out
        assert "disables SpiceDB's dispatch cache" in out
