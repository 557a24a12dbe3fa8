"""The built wheel installs `server/` as `rebac_server`, never as a generic `server` module."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(name="wheel", scope="module")
def _wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("rebac-*.whl")
    return wheel


class TestWheel:
    def test_wheel_holds_rebac_and_rebac_server_only(self, wheel: Path) -> None:
        """Top-level packages in the wheel are `rebac` and `rebac_server`, with generated code and SQL."""
        names = zipfile.ZipFile(wheel).namelist()
        tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
        assert tops == {"rebac", "rebac_server"}
        assert "rebac_server/_gen/rebac/v1/core_pb2.py" in names
        assert "rebac/datastore/postgres/migrations/0001_initial.sql" in names
        assert "rebac/py.typed" in names

    def test_unpacked_wheel_imports_without_the_source_tree(self, wheel: Path, tmp_path: Path) -> None:
        """The server, the client and the CLI import from the unpacked wheel alone."""
        zipfile.ZipFile(wheel).extractall(tmp_path)
        site_packages = sysconfig.get_paths()["purelib"]
        code = (
            "import rebac_server.app, rebac.client, rebac.cli, rebac_server._gen.rebac.v1.core_pb2;"
            "import rebac_server; print(rebac_server.__file__)"
        )
        # -S skips site-packages' .pth files, so the editable install's path hook cannot help.
        result = subprocess.run(
            [sys.executable, "-S", "-c", code],
            env={"PYTHONPATH": f"{tmp_path}:{site_packages}"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().startswith(str(tmp_path))
