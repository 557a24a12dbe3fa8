"""Turn measured runs into figures and write report.json, report.md and the PNG plots.

Figures per workload: latency percentiles (ms), throughput (operations/s and items/s),
throughput as a fraction of the L0 (health RPC) and L1 (direct-relation Check) limits,
server and client CPU (cores used; server CPU milliseconds per call), server RSS,
datastore queries per item and cache hit rate (from the engine's counters), datastore
calls per operation (every call the server made, revision and schema reads included),
and the SpiceDB peer's figures with the ratio. A workload measured after a warm-up has
``warm_up_calls`` in its entry and its warm-up under ``config.warm_up.<workload>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.load_driver import RunResult

__all__ = ["Figures", "Report", "figures_of", "percentile"]


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (0.0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@dataclass(slots=True)
class Figures:
    """One workload's measured figures on one system (rebac or the peer)."""

    operations: int
    items: int
    errors: int
    mismatches: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    throughput_per_s: float
    items_per_s: float
    seconds: float
    client_cpu_cores: float
    pool_exhausted: bool


def figures_of(run: RunResult) -> Figures:
    """Percentiles and rates of one run (rates over the clients' wall time)."""
    wall = max(run.wall_seconds, 1e-9)
    return Figures(
        operations=run.operations,
        items=run.items,
        errors=run.errors,
        mismatches=run.mismatch_count,
        p50_ms=round(percentile(run.latencies_ms, 0.50), 3),
        p95_ms=round(percentile(run.latencies_ms, 0.95), 3),
        p99_ms=round(percentile(run.latencies_ms, 0.99), 3),
        max_ms=round(max(run.latencies_ms, default=0.0), 3),
        throughput_per_s=round(run.operations / wall, 1),
        items_per_s=round(run.items / wall, 1),
        seconds=round(run.wall_seconds, 2),
        client_cpu_cores=round(run.client_cpu_seconds / wall, 2),
        pool_exhausted=run.exhausted,
    )


@dataclass(slots=True)
class Report:
    """The whole run: context, per-workload figures, answer checks, sweep, notes."""

    machine: dict[str, Any]
    versions: dict[str, Any]
    dataset: dict[str, Any]
    config: dict[str, Any]
    workloads: dict[str, dict[str, Any]] = field(default_factory=dict)
    sweep: list[dict[str, Any]] = field(default_factory=list)
    mismatches: int = 0
    mismatch_examples: list[str] = field(default_factory=list)
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)

    def add(
        self,
        name: str,
        description: str,
        run: RunResult,
        *,
        server: dict[str, Any],
        peer: RunResult | None,
        warm_up: Mapping[str, Any] | None = None,
    ) -> None:
        """Record one workload's rebac run (with server-side figures) and the peer's run if any.

        `warm_up` describes the unmeasured warm-up before the run (its ``calls`` at least):
        it goes to ``config["warm_up"][name]``, and its call count to the entry.
        """
        ours = figures_of(run)
        entry: dict[str, Any] = {
            "description": description,
            **asdict(ours),
            **server,
            "warm_up_calls": None if warm_up is None else warm_up["calls"],
            "error_examples": run.error_messages[:5],
        }
        if warm_up is not None:
            self.config.setdefault("warm_up", {})[name] = dict(warm_up)
        if peer is not None:
            theirs = figures_of(peer)
            entry["peer"] = asdict(theirs)
            entry["peer_error_examples"] = peer.error_messages[:5]
            entry["ratio_vs_peer"] = (
                round(ours.items_per_s / theirs.items_per_s, 3) if theirs.items_per_s else None
            )
            self._count(peer)
        self._count(run)
        self.workloads[name] = entry
        self.latencies_ms[name] = run.latencies_ms

    def _count(self, run: RunResult) -> None:
        self.mismatches += run.mismatch_count
        self.mismatch_examples.extend(run.mismatches[: 50 - len(self.mismatch_examples)])
        self.errors += run.errors
        self.error_examples.extend(run.error_messages[: 50 - len(self.error_examples)])

    def finish(self) -> None:
        """Compute every workload's fraction of the L0 and L1 limits (items/s over limit ops/s)."""
        for limit, key in (("L0_health", "fraction_of_L0"), ("L1_direct_check", "fraction_of_L1")):
            base = self.workloads.get(limit, {}).get("throughput_per_s")
            for entry in self.workloads.values():
                entry[key] = round(entry["items_per_s"] / base, 3) if base else None

    def to_json(self) -> dict[str, Any]:
        """The report.json document (latency samples are left out; the plots show them)."""
        data = asdict(self)
        data.pop("latencies_ms")
        return data

    def to_markdown(self) -> str:
        """A Markdown summary: context, one table row per workload, notes, answer checks."""
        ds = self.dataset
        context = (
            f"Machine: {self.machine.get('cpus')} CPUs, {self.machine.get('platform')}; "
            f"rebac server workers {self.config.get('workers')}, "
            f"client processes {self.config.get('client_processes')}, "
            f"concurrency {self.config.get('concurrency')}, {self.config.get('duration_s')} s per workload."
        )
        header = (
            "| workload | p50 ms | p95 ms | p99 ms | max ms | ops/s | items/s | errors | of L0 | of L1 | "
            "server cores | server CPU ms/op | DS queries/item | DS calls/op | cache hit | "
            "SpiceDB items/s | SpiceDB p50 ms | vs SpiceDB |"
        )
        lines = [
            f"# rebac benchmark: {ds['name']} {ds['relationships']:,} relationships",
            "",
            context,
            "",
            header,
            "|---|" + "---:|" * 17,
        ]
        for name, e in self.workloads.items():
            peer = e.get("peer") or {}
            lines.append(
                f"| {name} | {e['p50_ms']} | {e['p95_ms']} | {e['p99_ms']} | {e['max_ms']} | "
                f"{e['throughput_per_s']:,} | {e['items_per_s']:,} | {_errors(e)} | "
                f"{_fmt(e.get('fraction_of_L0'))} | "
                f"{_fmt(e.get('fraction_of_L1'))} | {_fmt(e.get('server_cpu_cores'))} | "
                f"{_fmt(e.get('server_cpu_ms_per_op'))} | "
                f"{_fmt(e.get('datastore_queries_per_item'))} | {_fmt(e.get('datastore_calls_per_op'))} | "
                f"{_fmt(e.get('cache_hit_rate'))} | "
                f"{_fmt(peer.get('items_per_s'))} | {_fmt(peer.get('p50_ms'))} | "
                f"{_fmt(e.get('ratio_vs_peer'))}x |"
            )
        if self.sweep:
            lines += [
                "",
                "Throughput against concurrency (items/s):",
                "",
                "| workload | concurrency | items/s | p50 ms |",
                "|---|---:|---:|---:|",
            ]
            lines += [
                f"| {s['workload']} | {s['concurrency']} | {s['items_per_s']:,} | {s['p50_ms']} |"
                for s in self.sweep
            ]
        lines += ["", f"Answer mismatches: **{self.mismatches}**; RPC errors: {self.errors}.", ""]
        failing = {name: e["error_examples"] for name, e in self.workloads.items() if e["error_examples"]}
        if failing:
            lines += ["Errors (first of each workload):", ""]
            lines += [f"- {name}: {' '.join(examples[0].split())}" for name, examples in failing.items()]
            lines.append("")
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def write(self, out: Path) -> list[Path]:
        """Write report.json, report.md and the plots into `out`; the paths written."""
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        (out / "report.md").write_text(self.to_markdown(), encoding="utf-8")
        return [out / "report.json", out / "report.md", *self._plots(out)]

    def _plots(self, out: Path) -> list[Path]:
        import matplotlib as mpl  # noqa: PLC0415 - optional (the `bench` extra), imported on use

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415

        written = []
        fig, ax = plt.subplots(figsize=(8, 5))
        plotted = 0
        for name, values in self.latencies_ms.items():
            if values:
                ordered = sorted(values)
                ax.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=name)
                plotted += 1
        if not plotted:
            ax.text(0.5, 0.5, "no successful calls", ha="center", transform=ax.transAxes)
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("fraction of calls")
        ax.set_title(
            f"rebac latency CDF: {self.dataset['name']} {self.dataset['relationships']:,} relationships"
        )
        ax.grid(visible=True, which="both", alpha=0.3)
        if plotted:
            ax.legend(fontsize="small")
        fig.savefig(out / "latency_cdf.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(out / "latency_cdf.png")
        if self.sweep:
            fig, ax = plt.subplots(figsize=(8, 5))
            for workload in dict.fromkeys(s["workload"] for s in self.sweep):
                points = [s for s in self.sweep if s["workload"] == workload]
                ax.plot(
                    [p["concurrency"] for p in points],
                    [p["items_per_s"] for p in points],
                    marker="o",
                    label=workload,
                )
            ax.set_xscale("log", base=2)
            ax.set_xlabel("concurrency (in-flight calls)")
            ax.set_ylabel("items/s")
            ax.set_title("rebac throughput against concurrency")
            ax.grid(visible=True, alpha=0.3)
            ax.legend(fontsize="small")
            fig.savefig(out / "throughput_vs_concurrency.png", dpi=110, bbox_inches="tight")
            plt.close(fig)
            written.append(out / "throughput_vs_concurrency.png")
        return written


def _errors(entry: dict[str, Any]) -> str:
    """The errors cell: rebac's count, and SpiceDB's after a slash when the peer ran."""
    peer = entry.get("peer")
    return f"{entry['errors']:,}" + (f" / {peer['errors']:,}" if peer else "")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,}"
