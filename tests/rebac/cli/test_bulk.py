"""`rebac import` and `rebac export` through the real binary against a real server."""

from __future__ import annotations

import io
import json
import shlex
import signal
import subprocess
import time

import pytest

from rebac.cli.bulk import Progress, resume_command
from tests.rebac.cli.cli_helpers import REBAC_BIN, SCHEMA, cli_against_server


@pytest.fixture(scope="module")
def rebac(tmp_path_factory):
    with cli_against_server(tmp_path_factory.mktemp("bulk")) as runner:
        yield runner


def _count(rebac, resource_filter: str) -> int:
    return len(rebac("rel", "read", resource_filter).lines)


class TestImport:
    def test_tuple_file_with_summary_and_token(self, rebac, tmp_path):
        """Every line is created; stderr has the summary, stdout the revision token."""
        path = tmp_path / "t.txt"
        path.write_text("".join(f"document:i1x{i}#viewer@user:u{i}\n" for i in range(250)))
        result = rebac("import", str(path), "--batch-size", "100")
        assert result.code == 0, result.err
        assert "imported 250 relationships" in result.err
        assert len(result.lines) == 1
        assert _count(rebac, "document") >= 250

    def test_csv_with_header(self, rebac, tmp_path):
        """CSV rows `resource,relation,subject` (header skipped) are imported."""
        path = tmp_path / "t.csv"
        path.write_text(
            "resource,relation,subject\ndocument:i2,viewer,user:ann\ndocument:i2,owner,user:bob\n"
        )
        assert rebac("import", str(path)).code == 0
        assert _count(rebac, "document:i2") == 2

    def test_json_lines_and_json_summary(self, rebac, tmp_path):
        """JSON lines in both shapes are imported; `--json` prints the summary document."""
        path = tmp_path / "t.jsonl"
        path.write_text(
            json.dumps({"resource": "document:i3", "relation": "viewer", "subject": "user:ann"})
            + "\n"
            + json.dumps({"relationship": "document:i3#viewer@group:eng#member"})
            + "\n"
        )
        result = rebac("import", str(path), "--json")
        assert result.code == 0, result.err
        summary = json.loads(result.out)
        assert summary["imported"] == 2
        assert summary["written_at"]
        assert _count(rebac, "document:i3") == 2

    def test_validation_yaml_relationships(self, rebac, tmp_path):
        """The relationships block of a zed validation file is imported."""
        schema = "\n".join("  " + line for line in SCHEMA.splitlines())
        path = tmp_path / "world.yaml"
        path.write_text(
            f"schema: |-\n{schema}\nrelationships: |-\n  document:i4#viewer@user:ann\n  document:i4#owner@user:bob\n"
        )
        result = rebac("import", str(path))
        assert result.code == 0, result.err
        assert _count(rebac, "document:i4") == 2

    def test_stdin(self, rebac):
        """`rebac import -` reads tuples from stdin."""
        result = rebac("import", "-", stdin="document:i5#viewer@user:ann\n")
        assert result.code == 0, result.err
        assert _count(rebac, "document:i5") == 1

    def test_malformed_record_stops_before_writing_anything(self, rebac, tmp_path):
        """A malformed line 3 exits 2 naming file:line:column, and lines 1-2 are not written."""
        path = tmp_path / "bad.txt"
        path.write_text("document:i6#viewer@user:a\ndocument:i6#viewer@user:b\ndocument:i6#viewer@user:c d\n")
        result = rebac("import", str(path))
        assert result.code == 2
        assert f"{path}:3:25:" in result.err
        assert _count(rebac, "document:i6") == 0

    def test_malformed_csv_names_the_field(self, rebac, tmp_path):
        """A bad CSV subject names the line and the `subject` field."""
        path = tmp_path / "bad.csv"
        path.write_text("document:i7,viewer,usr\n")
        result = rebac("import", str(path))
        assert result.code == 2
        assert f"{path}:1: subject:" in result.err

    def test_server_failure_prints_where_it_stopped_and_resumes(self, rebac, tmp_path):
        """An unknown relation in batch 3 keeps batches 1-2, prints the resume command, which then works."""
        lines = [f"document:i8x{i}#viewer@user:u{i}" for i in range(6)]
        lines[4] = "document:i8x4#viewr@user:u4"
        path = tmp_path / "fail.txt"
        path.write_text("\n".join(lines) + "\n")
        result = rebac("import", str(path), "--batch-size", "2")
        assert result.code == 2
        assert "viewr" in result.err
        assert f"{path}:5 to {path}:6" in result.err
        resume = f"rebac import {path} --batch-size 2 --skip 4"
        assert resume in result.err
        assert _count(rebac, "document") >= 4
        assert rebac("rel", "read", "document:i8x4").lines == []
        lines[4] = "document:i8x4#viewer@user:u4"
        path.write_text("\n".join(lines) + "\n")
        again = rebac(*shlex.split(resume)[1:])
        assert again.code == 0, again.err
        assert all(rebac("rel", "read", f"document:i8x{i}").lines for i in range(6))

    def test_skip_beyond_the_file_is_refused(self, rebac, tmp_path):
        """`--skip` larger than the record count exits 2."""
        path = tmp_path / "one.txt"
        path.write_text("document:i9#viewer@user:a\n")
        assert rebac("import", str(path), "--skip", "5").code == 2

    def test_batch_size_bounds(self, rebac, tmp_path):
        """`--batch-size` outside 1..1000 exits 2."""
        path = tmp_path / "one.txt"
        path.write_text("document:i10#viewer@user:a\n")
        assert rebac("import", str(path), "--batch-size", "5000").code == 2

    def test_ctrl_c_leaves_whole_batches_and_a_resume_hint(self, rebac, tmp_path):
        """SIGINT mid-import exits 130; exactly the reported records exist; resuming completes the file."""
        total = 3000
        path = tmp_path / "big.txt"
        path.write_text("".join(f"folder:cc{i}#viewer@user:u{i}\n" for i in range(total)))
        process = subprocess.Popen(
            [REBAC_BIN, "import", str(path), "--batch-size", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=rebac.env(),
        )
        time.sleep(2.0)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert "Traceback" not in err
        skip = int(err.split("--skip ")[1].split()[0])
        assert 0 < skip < total
        assert _count(rebac, "folder") == skip
        again = rebac("import", str(path), "--batch-size", "1000", "--skip", str(skip))
        assert again.code == 0, again.err
        assert _count(rebac, "folder") == total


class TestExport:
    def test_export_formats_list_every_relationship(self, rebac):
        """tuples, csv and jsonl exports have one record per stored relationship."""
        rebac("rel", "touch", "document:e1#viewer@user:ann")
        tuples = rebac("export").lines
        assert "document:e1#viewer@user:ann" in tuples
        csv_lines = rebac("export", "--format", "csv").lines
        assert csv_lines[0] == "resource,relation,subject,caveat,expiration"
        assert "document:e1,viewer,user:ann" in csv_lines
        assert len(csv_lines) == len(tuples) + 1
        rows = [json.loads(line) for line in rebac("export", "--format", "jsonl").lines]
        assert {"resource": "document:e1", "relation": "viewer", "subject": "user:ann"} in rows
        assert len(rows) == len(tuples)

    def test_export_to_a_closed_pipe_is_quiet(self, rebac):
        """`rebac export | head -1` exits without an error message."""
        done = subprocess.run(
            f"{shlex.quote(REBAC_BIN)} export | head -1",
            shell=True,
            capture_output=True,
            text=True,
            env=rebac.env(),
            check=False,
        )
        assert len(done.stdout.splitlines()) == 1
        assert "error" not in done.stderr


class TestResumeCommand:
    def test_replaces_an_existing_skip(self):
        """A previous --skip is dropped and the new one appended."""
        assert resume_command(["import", "a b.txt", "--skip", "3", "--batch-size", "10"], 13) == (
            "rebac import 'a b.txt' --batch-size 10 --skip 13"
        )


class TestProgress:
    def test_bar_with_known_total(self):
        """The bar shows done/total and percent."""
        text = Progress(200, stream=None, tty=True).line(50)  # type: ignore[arg-type]
        assert "50/200" in text
        assert "25%" in text

    def test_terminal_redraws_one_line_and_finishes_it(self):
        """On a terminal the bar is redrawn with a carriage return and ended with a newline."""
        stream = io.StringIO()
        progress = Progress(10, stream=stream, tty=True)
        progress.update(10)
        progress.finish()
        assert stream.getvalue().startswith("\r[")
        assert stream.getvalue().endswith("\n")
        assert "10/10" in stream.getvalue()

    def test_plain_output_is_throttled(self):
        """Without a terminal nothing is printed until the interval has passed."""
        stream = io.StringIO()
        progress = Progress(10, stream=stream, tty=False)
        progress.update(1)
        progress.finish()
        assert stream.getvalue() == ""

    def test_unknown_total(self):
        """Without a total only the count and rate show."""
        assert Progress(None, stream=None, tty=False).line(7).startswith("7 imported")  # type: ignore[arg-type]
