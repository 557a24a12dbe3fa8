"""The rebac server under test: a fresh database, `rebac migrate`, `rebac serve` as a subprocess.

`BenchDatabase` creates ``rebac_bench_<pid>`` on the given PostgreSQL server and drops it
afterwards unless told to keep it. `ServerProcess` starts ``rebac serve`` with the Postgres
datastore, waits for its "listening on" line, exposes the endpoint, samples CPU and RSS of
the whole process tree (psutil) and scrapes each worker's Prometheus ``/metrics``
(worker i serves on metrics port + i).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self
from urllib.parse import urlsplit, urlunsplit

import psutil

__all__ = ["DEFAULT_ADMIN_DSN", "BenchDatabase", "ServerProcess", "ServerUsage", "rebac_command"]

DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
"""The PostgreSQL server the harness uses when no --datastore-uri is given."""

_LISTENING = re.compile(r"listening on (\S+):(\d+)")
_METRIC = re.compile(r"^(rebac_[a-z_]+)\{([^}]*)\} (\S+)$")


def rebac_command() -> list[str]:
    """How to run the `rebac` CLI of this interpreter's environment."""
    script = Path(sys.executable).with_name("rebac")
    if script.exists():
        return [str(script)]
    found = shutil.which("rebac")
    return [found] if found else [sys.executable, "-m", "rebac.cli"]


def _with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


class BenchDatabase:
    """A database created for one run on the server of `admin_dsn`; dropped on exit unless `keep`."""

    def __init__(self, admin_dsn: str, *, keep: bool = False, name: str | None = None) -> None:
        self.admin_dsn = admin_dsn
        self.name = name or f"rebac_bench_{__import__('os').getpid()}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self.name):
            raise ValueError(f"invalid database name {self.name!r}")
        self.dsn = _with_database(admin_dsn, self.name)
        self.keep = keep

    async def _execute(self, statement: str, *, dsn: str | None = None) -> None:
        import asyncpg  # noqa: PLC0415 - only needed around a run

        conn = await asyncpg.connect(dsn or self.admin_dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    def __enter__(self) -> Self:
        asyncio.run(self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        asyncio.run(self._execute(f'CREATE DATABASE "{self.name}"'))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.keep:
            asyncio.run(self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    def analyze(self) -> None:
        """``ANALYZE`` the bench database, as autovacuum would within about a minute of a bulk load.

        Without it the planner has no statistics right after the import and picks plans
        that scan thousands of rows per lookup (a group-closure query measured 123 ms
        before and 0.18 ms after at drive 100k).
        """
        asyncio.run(self._execute("ANALYZE", dsn=self.dsn))

    def migrate(self) -> str:
        """Run ``rebac migrate --dsn``; its output. CalledProcessError if it fails."""
        done = subprocess.run(
            [*rebac_command(), "migrate", "--dsn", self.dsn],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rebac migrate failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout


@dataclass(frozen=True, slots=True)
class ServerUsage:
    """Cumulative CPU seconds of the server's process tree and the RSS summed over it."""

    cpu_seconds: float
    rss_bytes: int


def _free_port_block(count: int) -> int:
    """A port p such that p..p+count-1 were free a moment ago (best effort)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count >= 65535:
            continue
        try:
            held = []
            for offset in range(count):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        return base
    raise OSError("no block of free ports for the metrics endpoints")


class ServerProcess:
    """`rebac serve` on the Postgres `dsn` with `workers` worker processes, audit log off."""

    def __init__(self, dsn: str, *, workers: int, log_path: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.dsn = dsn
        self.workers = workers
        self.log_path = log_path
        self.metrics_port = _free_port_block(workers)
        self._extra = extra_args
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self.endpoint = ""

    @property
    def pid(self) -> int:
        """The server's parent process id."""
        if self._process is None:
            raise RuntimeError("server not started")
        return self._process.pid

    def __enter__(self) -> Self:
        self._log = self.log_path.open("w", encoding="utf-8")
        command = [
            *rebac_command(),
            "serve",
            "--datastore",
            "postgres",
            "--datastore-uri",
            self.dsn,
            "--migrate",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            str(self.workers),
            "--audit-log",
            "off",
            "--metrics-listen",
            f"127.0.0.1:{self.metrics_port}",
            *self._extra,
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._log, text=True)
        self.endpoint = self._wait_listening(timeout=120)
        return self

    def _wait_listening(self, *, timeout: float) -> str:
        if self._process is None or self._process.stdout is None:
            raise RuntimeError("server not started")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if not line:
                break
            match = _LISTENING.search(line)
            if match:
                return f"{match.group(1)}:{match.group(2)}"
        self.stop()
        raise RuntimeError(f"rebac serve did not start; see {self.log_path}: {self._tail()}")

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            return " | ".join(self.log_path.read_text(encoding="utf-8").strip().splitlines()[-5:])
        return ""

    def stop(self) -> None:
        """SIGTERM the server and wait for it (kill after 30 s); idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.pid)
        return [root, *root.children(recursive=True)]

    def usage(self) -> ServerUsage:
        """CPU seconds (user+system) so far and current RSS, summed over the server's processes."""
        cpu, rss = 0.0, 0
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                cpu += times.user + times.system
                rss += proc.memory_info().rss
        return ServerUsage(cpu, rss)

    def worker_pids(self) -> list[int]:
        """Pids of the serving processes (the parent itself when it serves alone)."""
        children = psutil.Process(self.pid).children(recursive=False)
        return [c.pid for c in children] or [self.pid]

    def scrape(self) -> dict[str, float] | None:
        """Engine counters and gRPC request totals summed over workers; None if no worker answered.

        Keys: ``rebac_engine_<stat>``, ``requests:<method>`` (successful calls) and
        ``datastore:<operation>`` (every datastore call the server made, revision reads and
        schema reads included, whether or not the engine counted it).
        """
        totals: dict[str, float] = {}
        answered = 0
        for worker in range(self.workers):
            url = f"http://127.0.0.1:{self.metrics_port + worker}/metrics"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                continue
            answered += 1
            for line in text.splitlines():
                match = _METRIC.match(line)
                if not match:
                    continue
                name, labels, value = match.groups()
                if name == "rebac_grpc_requests_total" and 'code="OK"' in labels:
                    method = re.search(r'method="([^"]+)"', labels)
                    key = f"requests:{method.group(1).rsplit('/', 1)[-1] if method else '?'}"
                elif name.startswith("rebac_engine_") and name != "rebac_engine_cache_hit_rate":
                    key = name
                elif name == "rebac_datastore_query_duration_seconds_count":
                    operation = re.search(r'operation="([^"]+)"', labels)
                    key = f"datastore:{operation.group(1) if operation else '?'}"
                else:
                    continue
                totals[key] = totals.get(key, 0.0) + float(value)
        return totals if answered else None
