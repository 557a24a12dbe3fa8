"""Prometheus metrics in the text exposition format, served by a tiny asyncio HTTP server.

Per process (each worker serves its own registry on its own port): requests by RPC and
status code, a latency histogram per RPC, and whatever numeric counters the engine
exposes in `stats` (cache hits/misses, datastore queries) plus the derived cache hit rate.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
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


class Metrics:
    """Counters and histograms of one process; `render()` is the /metrics body."""

    def __init__(self, *, engine_stats: Callable[[], object] | None = None, worker: int = 0) -> None:
        self._requests: dict[tuple[str, str], int] = defaultdict(int)
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = defaultdict(float)
        self._engine_stats = engine_stats
        self._worker = worker

    def observe(self, method: str, code: str, seconds: float) -> None:
        """Count one finished call of `method` with status `code` that took `seconds`."""
        self._requests[method, code] += 1
        counts = self._buckets.setdefault(method, [0] * (len(LATENCY_BUCKETS) + 1))
        counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._sums[method] += seconds

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
        out += [
            "# HELP rebac_grpc_request_duration_seconds gRPC call latency.",
            "# TYPE rebac_grpc_request_duration_seconds histogram",
        ]
        for method, counts in sorted(self._buckets.items()):
            running = 0
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(
                    f'rebac_grpc_request_duration_seconds_bucket{{{w},method="{method}",le="{le}"}} {running}'
                )
            out.append(
                f'rebac_grpc_request_duration_seconds_sum{{{w},method="{method}"}} {self._sums[method]}'
            )
            out.append(f'rebac_grpc_request_duration_seconds_count{{{w},method="{method}"}} {running}')
        stats = _numeric_stats(self._engine_stats()) if self._engine_stats else {}
        for name, value in sorted(stats.items()):
            out += [f"# TYPE rebac_engine_{name} gauge", f"rebac_engine_{name}{{{w}}} {value}"]
        hits, misses = stats.get("cache_hits"), stats.get("cache_misses")
        if hits is not None and misses is not None:
            rate = hits / (hits + misses) if hits + misses else 0.0
            out += ["# TYPE rebac_engine_cache_hit_rate gauge", f"rebac_engine_cache_hit_rate{{{w}}} {rate}"]
        return "\n".join(out) + "\n"


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
