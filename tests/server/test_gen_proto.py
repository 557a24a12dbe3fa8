"""The committed generated code in server/_gen matches what scripts/gen_proto.py produces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class TestGeneratedCode:
    def test_server_gen_is_not_stale(self, tmp_path):
        """Regenerating into a temp dir gives byte-identical files (run scripts/gen_proto.py if not)."""
        out = tmp_path / "_gen"
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), str(out)],
            check=True,
            capture_output=True,
        )
        committed = ROOT / "server" / "_gen"
        fresh = {p.relative_to(out): p.read_bytes() for p in out.rglob("*.py*") if p.is_file()}
        current = {
            p.relative_to(committed): p.read_bytes()
            for p in committed.rglob("*.py*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        assert sorted(map(str, fresh)) == sorted(map(str, current)), (
            "file set differs: run scripts/gen_proto.py"
        )
        stale = [str(name) for name in fresh if fresh[name] != current[name]]
        assert not stale, f"stale generated files {stale}: run scripts/gen_proto.py"

    def test_generated_imports_do_not_touch_the_engine_package(self):
        """No generated module imports `rebac.v1` (which would collide with the engine package)."""
        for path in (ROOT / "server" / "_gen").rglob("*.py*"):
            if path.is_file() and "__pycache__" not in path.parts:
                text = path.read_text()
                assert "from rebac.v1" not in text
                assert "import rebac.v1" not in text
