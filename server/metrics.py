"""Prometheus metrics in the text exposition format, served by a tiny asyncio HTTP server.

Per process: each worker keeps its own registry and serves it on its own port (worker i
on ``--metrics-listen`` port + i, every series labelled ``worker="i"``); a Prometheus
scrape config lists every worker's port and sums over the label. Series:

- ``rebac_grpc_requests_total{method,code}`` and ``rebac_grpc_request_duration_seconds``
  (histogram per method);
- ``rebac_datastore_query_duration_seconds{operation}`` (histogram: time from the call
  until its rows were consumed or the transaction committed);
- ``rebac_datastore_pool_connections{state="in_use"|"idle"|"max"}`` (PostgreSQL only);
- ``rebac_datastore_gc_runs_total{result}``, ``rebac_datastore_gc_removed_rows_total{table}``
  and ``rebac_datastore_gc_horizon_xid`` (the worker that runs GC, PostgreSQL only);
- ``rebac_engine_*`` from the engine's `stats` (datastore queries, dispatches, cache hits
  and misses) and the derived ``rebac_engine_cache_hit_rate``;
- ``rebac_python_gc_collections_total{generation}`` (the interpreter's garbage collector).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass

__all__ = ["LATENCY_BUCKETS", "Metrics", "start_metrics_server"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Histogram upper bounds in seconds (plus +Inf)."""


def _numeric_stats(stats: object) -> dict[str, float]:
    """Numeric fields of an engine stats object (dataclass, mapping or plain attributes)."""
    if stats is None:
        return {}
    if isinstance(stats, Mapping):
        items = dict(stats)
    elif is_dataclass(stats):
        items = {f.name: getattr(stats, f.name) for f in fields(stats)}
    else:
        items = {name: getattr(stats, name) for name in dir(stats) if not name.startswith("_")}
    return {k: float(v) for k, v in items.items() if isinstance(v, int | float) and not isinstance(v, bool)}


class _Histogram:
    """Latency histograms keyed by one label value."""

    def __init__(self, name: str, label: str, help_text: str) -> None:
        self.name = name
        self._label = label
        self._help = help_text
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = defaultdict(float)

    def observe(self, key: str, seconds: float) -> None:
        counts = self._buckets.setdefault(key, [0] * (len(LATENCY_BUCKETS) + 1))
        counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._sums[key] += seconds

    def count(self, key: str) -> int:
        return sum(self._buckets.get(key, ()))

    def render(self, worker_label: str) -> list[str]:
        out = [f"# HELP {self.name} {self._help}", f"# TYPE {self.name} histogram"]
        for key, counts in sorted(self._buckets.items()):
            labels = f'{worker_label},{self._label}="{key}"'
            running = 0
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(f'{self.name}_bucket{{{labels},le="{le}"}} {running}')
            out.append(f"{self.name}_sum{{{labels}}} {self._sums[key]}")
            out.append(f"{self.name}_count{{{labels}}} {running}")
        return out


class Metrics:
    """Counters and histograms of one process; `render()` is the /metrics body.

    `pool_stats` returns the datastore pool's ``in_use``/``idle``/``max`` connection counts
    (None or an empty mapping when the datastore has no pool).
    """

    def __init__(
        self,
        *,
        engine_stats: Callable[[], object] | None = None,
        pool_stats: Callable[[], Mapping[str, int] | None] | None = None,
        worker: int = 0,
    ) -> None:
        self._requests: dict[tuple[str, str], int] = defaultdict(int)
        self._latency = _Histogram("rebac_grpc_request_duration_seconds", "method", "gRPC call latency.")
        self._datastore = _Histogram(
            "rebac_datastore_query_duration_seconds", "operation", "Datastore call latency."
        )
        self._gc_runs: dict[str, int] = defaultdict(int)
        self._gc_removed: dict[str, int] = defaultdict(int)
        self._gc_horizon: int | None = None
        self._engine_stats = engine_stats
        self._pool_stats = pool_stats
        self._worker = worker

    def observe(self, method: str, code: str, seconds: float) -> None:
        """Count one finished call of `method` with status `code` that took `seconds`."""
        self._requests[method, code] += 1
        self._latency.observe(method, seconds)

    def observe_datastore(self, operation: str, seconds: float) -> None:
        """Record one datastore call (`operation` e.g. ``query_relationships``) of `seconds`."""
        self._datastore.observe(operation, seconds)

    def datastore_calls(self, operation: str) -> int:
        """How many `operation` datastore calls were recorded."""
        return self._datastore.count(operation)

    def observe_gc(self, removed: Mapping[str, int] | None, horizon: int | None = None) -> None:
        """Record one datastore GC run: rows removed per table, or None if the run failed."""
        if removed is None:
            self._gc_runs["error"] += 1
            return
        self._gc_runs["ok"] += 1
        for table, count in removed.items():
            self._gc_removed[table] += count
        if horizon:
            self._gc_horizon = horizon

    def requests(self, method: str, code: str) -> int:
        """How many calls of `method` ended with `code` (for tests and dashboards)."""
        return self._requests.get((method, code), 0)

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        w = f'worker="{self._worker}"'
        out = [
            "# HELP rebac_grpc_requests_total gRPC calls by method and status code.",
            "# TYPE rebac_grpc_requests_total counter",
        ]
        out += [
            f'rebac_grpc_requests_total{{{w},method="{m}",code="{c}"}} {n}'
            for (m, c), n in sorted(self._requests.items())
        ]
        out += self._latency.render(w)
        out += self._datastore.render(w)
        out += self._render_pool_and_gc(w)
        stats = _numeric_stats(self._engine_stats()) if self._engine_stats else {}
        for name, value in sorted(stats.items()):
            out += [f"# TYPE rebac_engine_{name} gauge", f"rebac_engine_{name}{{{w}}} {value}"]
        hits, misses = stats.get("cache_hits"), stats.get("cache_misses")
        if hits is not None and misses is not None:
            rate = hits / (hits + misses) if hits + misses else 0.0
            out += ["# TYPE rebac_engine_cache_hit_rate gauge", f"rebac_engine_cache_hit_rate{{{w}}} {rate}"]
        out += ["# TYPE rebac_python_gc_collections_total counter"]
        out += [
            f'rebac_python_gc_collections_total{{{w},generation="{generation}"}} {entry["collections"]}'
            for generation, entry in enumerate(gc.get_stats())
        ]
        return "\n".join(out) + "\n"

    def _render_pool_and_gc(self, w: str) -> list[str]:
        out: list[str] = []
        pool = self._pool_stats() if self._pool_stats else None
        if pool:
            out.append("# TYPE rebac_datastore_pool_connections gauge")
            out += [
                f'rebac_datastore_pool_connections{{{w},state="{state}"}} {count}'
                for state, count in sorted(pool.items())
            ]
        if self._gc_runs:
            out.append("# TYPE rebac_datastore_gc_runs_total counter")
            out += [
                f'rebac_datastore_gc_runs_total{{{w},result="{r}"}} {n}'
                for r, n in sorted(self._gc_runs.items())
            ]
            out.append("# TYPE rebac_datastore_gc_removed_rows_total counter")
            out += [
                f'rebac_datastore_gc_removed_rows_total{{{w},table="{t}"}} {n}'
                for t, n in sorted(self._gc_removed.items())
            ]
        if self._gc_horizon is not None:
            out += [
                "# TYPE rebac_datastore_gc_horizon_xid gauge",
                f"rebac_datastore_gc_horizon_xid{{{w}}} {self._gc_horizon}",
            ]
        return out


async def start_metrics_server(metrics: Metrics, host: str, port: int) -> asyncio.Server:
    """Serve ``GET /metrics`` (anything else: 404) until the returned server is closed."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in {b"\r\n", b"\n", b""}:
                pass
            parts = request_line.decode("latin-1").split()
            if len(parts) >= 2 and parts[0] == "GET" and parts[1].split("?")[0] == "/metrics":
                body, status = metrics.render().encode(), "200 OK"
            else:
                body, status = b"not found\n", "404 Not Found"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port)
