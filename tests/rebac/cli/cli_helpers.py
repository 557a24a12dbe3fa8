"""Shared helpers for the CLI client tests: a real `rebac serve` subprocess and the real binary.

`serve_memory()` starts ``rebac serve --datastore memory`` on a free loopback port with a
preshared key (and an extra check-only key) and stops it with SIGTERM. `Rebac` runs the
installed ``rebac`` console script with a clean environment that points at that server
(``REBAC_ENDPOINT``/``REBAC_TOKEN``/``REBAC_INSECURE``) and an isolated contexts file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REBAC_BIN = str(Path(sys.executable).with_name("rebac"))
ADMIN_KEY = "cli-admin-key-7d2a"
READER_KEY = "cli-reader-key-91be"

SCHEMA = """\
definition user {}

definition group {
    relation member: user | group#member
}

definition folder {
    relation owner: user
    relation viewer: user | group#member
    permission view = viewer + owner
}

definition document {
    relation parent: folder
    relation owner: user
    relation viewer: user | user:* | group#member
    relation banned: user
    permission edit = owner
    permission view = (viewer + edit + parent->view) - banned
}
"""

CAVEAT_SCHEMA = (
    'use expiration\n\ncaveat only_on_tuesday(day string) {\n    day == "tue"\n}\n\n'
    + SCHEMA.replace(
        "relation viewer: user | user:* | group#member",
        "relation viewer: user | user with only_on_tuesday | user with expiration | user:* | group#member",
    )
)
"""SCHEMA plus a caveat and expiring relationships on document#viewer."""


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env() -> dict[str, str]:
    """The test process environment without any REBAC_* or NO_COLOR setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("REBAC_") and k != "NO_COLOR"}


@dataclass(frozen=True)
class Server:
    """A running `rebac serve` subprocess."""

    endpoint: str
    process: subprocess.Popen[str]


@contextlib.contextmanager
def serve_memory(tmp: Path, *extra: str) -> Iterator[Server]:
    """Run a memory-datastore server with ADMIN_KEY (all scopes) and READER_KEY (check only).

    `extra` are more `rebac serve` flags (e.g. TLS certificates).
    """
    port = free_port()
    keys = tmp / "keys"
    keys.write_text(f"reader {READER_KEY} check\n")
    process = subprocess.Popen(
        [
            REBAC_BIN,
            "serve",
            "--datastore",
            "memory",
            "--listen",
            f"127.0.0.1:{port}",
            "--preshared-key",
            ADMIN_KEY,
            "--key-file",
            str(keys),
            "--audit-log",
            "off",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**_clean_env(), "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on" not in line:
            process.kill()
            _, err = process.communicate(timeout=30)
            pytest.fail(f"rebac serve did not start: {line!r} {err[-2000:]}")
        yield Server(f"127.0.0.1:{port}", process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


@dataclass(frozen=True)
class Result:
    """What one `rebac` run did."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        """Non-empty stdout lines."""
        return [line for line in self.out.splitlines() if line.strip()]


@dataclass(frozen=True)
class Rebac:
    """Runs the real `rebac` binary against `endpoint` with an isolated contexts file."""

    endpoint: str
    config: Path
    token: str = ADMIN_KEY

    def env(self, extra: Mapping[str, str] | None = None, *, connect: bool = True) -> dict[str, str]:
        """The environment of a run: the server's coordinates unless `connect` is False."""
        env = _clean_env()
        env["REBAC_CLI_CONFIG"] = str(self.config)
        if connect:
            env.update(REBAC_ENDPOINT=self.endpoint, REBAC_TOKEN=self.token, REBAC_INSECURE="1")
        env.update(extra or {})
        return env

    def __call__(
        self,
        *args: str,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        connect: bool = True,
        cwd: Path | None = None,
    ) -> Result:
        """Run `rebac ARGS` and capture its exit code and output."""
        done = subprocess.run(
            [REBAC_BIN, *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=self.env(env, connect=connect),
            timeout=120,
            check=False,
            cwd=cwd,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return Result(done.returncode, done.stdout, done.stderr)


@contextlib.contextmanager
def cli_against_server(tmp: Path, schema_text: str = SCHEMA) -> Iterator[Rebac]:
    """A server with `schema_text` (SCHEMA) written, and a `Rebac` runner pointed at it."""
    with serve_memory(tmp) as server:
        rebac = Rebac(server.endpoint, tmp / "contexts.json")
        schema = tmp / "schema.zed"
        schema.write_text(schema_text)
        result = rebac("schema", "write", str(schema))
        assert result.code == 0, result.err
        yield rebac
