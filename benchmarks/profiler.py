"""Sample the server's worker processes with py-spy while a workload runs.

`WorkerProfiler(out_dir)` attaches one ``py-spy record --format raw`` per worker pid
(non-blocking: the worker is never paused; with ``native=True`` it is paused per sample to
unwind C frames too, e.g. inside grpc's Cython core) for the duration of a ``with profiler.recording(
name, pids):`` block, then writes, per worker, into `out_dir`:

- ``<name>-worker<pid>.svg``: a flame graph of the collapsed stacks (drawn here, so no
  external tool is needed);
- ``<name>-worker<pid>-top.txt``: a ``py-spy top``-style table (own and total share of the
  samples per function, highest own first);
- ``<name>-worker<pid>.folded``: the raw collapsed stacks (``frame;frame;... count``).

A profiler that cannot start (py-spy missing, no ptrace permission) or that fails is
recorded in `problems` and never fails the benchmark run: profiles are diagnostics.
"""

from __future__ import annotations

import contextlib
import html
import shutil
import signal
import subprocess
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ProfileSummary", "WorkerProfiler", "flamegraph_svg", "parse_folded", "top_table"]

_STOP_TIMEOUT_S = 20.0


def _py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def parse_folded(text: str) -> Counter[tuple[str, ...]]:
    """Collapsed stacks (``a;b;c 12`` per line, root first) as {stack: samples}; bad lines skipped."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    """One function's share of the samples: `own` (it was running) and `total` (on the stack)."""

    function: str
    own: int
    total: int


def summarize(stacks: Counter[tuple[str, ...]]) -> tuple[int, list[ProfileSummary]]:
    """(total samples, per-function summaries ordered by own samples, then total, then name)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for stack, count in stacks.items():
        samples += count
        own[stack[-1]] += count
        for frame in set(stack):
            total[frame] += count
    rows = [ProfileSummary(name, own[name], total[name]) for name in total]
    rows.sort(key=lambda r: (-r.own, -r.total, r.function))
    return samples, rows


def top_table(stacks: Counter[tuple[str, ...]], *, title: str, limit: int = 40) -> str:
    """A ``py-spy top``-like text table of the `limit` functions with the most own samples."""
    samples, rows = summarize(stacks)
    lines = [title, f"{samples} samples", "", f"{'%Own':>6} {'%Total':>7}  Function (file:line)"]
    for row in rows[:limit]:
        share = 100.0 / max(samples, 1)
        lines.append(f"{row.own * share:6.1f} {row.total * share:7.1f}  {row.function}")
    return "\n".join(lines) + "\n"


@dataclass(slots=True)
class _Node:
    samples: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(stacks: Counter[tuple[str, ...]]) -> _Node:
    root = _Node()
    for stack, count in stacks.items():
        node = root
        node.samples += count
        for frame in stack:
            node = node.children.setdefault(frame, _Node())
            node.samples += count
    return root


def flamegraph_svg(stacks: Counter[tuple[str, ...]], *, title: str, width: int = 1200) -> str:
    """A static SVG flame graph (root at the bottom, width proportional to samples; hover for names)."""
    root = _tree(stacks)
    row_height, min_width = 16, 0.5
    depth = max((len(s) for s in stacks), default=0)
    height = (depth + 2) * row_height + 30
    scale = (width - 20) / max(root.samples, 1)
    rects: list[str] = []

    def draw(node: _Node, name: str, x: float, level: int) -> None:
        w = node.samples * scale
        if w < min_width:
            return
        y = height - (level + 1) * row_height - 10
        hue = 20 + zlib.crc32(name.encode()) % 40
        label = html.escape(name)
        share = 100.0 * node.samples / max(root.samples, 1)
        text = html.escape(name if len(name) * 6.5 < w else name[: max(0, int(w / 6.5) - 2)] + "..")
        rects.append(
            f"<g><title>{label} ({node.samples} samples, {share:.1f}%)</title>"
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_height - 1}" '
            f'fill="hsl({hue},90%,60%)"/>'
            + (f'<text x="{x + 3:.1f}" y="{y + 12}">{text}</text>' if w > 20 else "")
            + "</g>"
        )
        offset = x
        for child_name, child in sorted(node.children.items()):
            draw(child, child_name, offset, level + 1)
            offset += child.samples * scale

    draw(root, "all", 10.0, 0)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="monospace" font-size="11">'
        f'<text x="10" y="16" font-size="14">{html.escape(title)} ({root.samples} samples)</text>'
        + "".join(rects)
        + "</svg>\n"
    )


class WorkerProfiler:
    """py-spy recordings of server workers into `out_dir` (see the module docstring)."""

    def __init__(self, out_dir: Path, *, rate: int = 200, native: bool = False) -> None:
        self.out_dir = out_dir
        self.rate = rate
        self.native = native
        self.problems: list[str] = []
        self.written: list[Path] = []
        self._executable = _py_spy()

    @contextlib.contextmanager
    def recording(self, name: str, pids: Iterable[int]) -> Iterator[None]:
        """Sample every pid in `pids` while the block runs, then write the files for each."""
        if self._executable is None:
            self.problems.append(f"{name}: py-spy is not installed (pip install py-spy); no profile")
            yield
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        running: list[tuple[int, Path, subprocess.Popen[bytes]]] = []
        for pid in pids:
            folded = self.out_dir / f"{name}-worker{pid}.folded"
            command = [self._executable, "record", "--pid", str(pid), "--rate", str(self.rate)]
            # Native frames (C extensions such as grpc's) need the worker paused for each sample.
            command += ["--native"] if self.native else ["--nonblocking"]
            command += ["--format", "raw", "--output", str(folded)]
            try:
                process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            except OSError as exc:
                self.problems.append(f"{name}: py-spy did not start for pid {pid}: {exc}")
                continue
            running.append((pid, folded, process))
        try:
            yield
        finally:
            for pid, folded, process in running:
                self._finish(name, pid, folded, process)

    def _finish(self, name: str, pid: int, folded: Path, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            _, err = process.communicate(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        if not folded.exists():
            tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
            self.problems.append(f"{name}: py-spy wrote no profile for pid {pid}: {' '.join(tail)}")
            return
        stacks = parse_folded(folded.read_text(encoding="utf-8", errors="replace"))
        title = f"rebac worker {pid}, workload {name}"
        svg = self.out_dir / f"{name}-worker{pid}.svg"
        top = self.out_dir / f"{name}-worker{pid}-top.txt"
        svg.write_text(flamegraph_svg(stacks, title=title), encoding="utf-8")
        top.write_text(top_table(stacks, title=title), encoding="utf-8")
        self.written += [svg, top, folded]
