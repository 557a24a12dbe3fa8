"""Counters the Engine keeps about its work (for benchmarks, tests and operators)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

__all__ = ["EngineStats"]


@dataclass(slots=True)
class EngineStats:
    """Running totals since the Engine was created (mutated in place; read a `snapshot()`).

    `datastore_queries` counts reader calls (one per batched query, however many ids);
    `dispatches` counts sub-problems evaluated locally (not answered by cache or
    de-duplication); `prefetches` counts one-round-trip walks along arrows (`prefetch.py`);
    `closure_loads`/`closure_hits` count nested-group closures read / reused from the
    per-revision cache (`closure.py`). Prefetches and closure loads are datastore queries too.
    `memo_hits` counts sub-problems answered from the request's own earlier answers.
    `prefetched_checks` counts root questions answered in one synchronous pass over the
    prefetched rows (`prefetched_check.py`) instead of by dispatch. `path_searches` counts
    CheckBulk path searches (datastore queries too) and `path_answers` the items they
    answered (`bulk_paths.py`).
    """

    datastore_queries: int = 0
    dispatches: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    deduplicated: int = 0
    prefetches: int = 0
    closure_loads: int = 0
    closure_hits: int = 0
    memo_hits: int = 0
    prefetched_checks: int = 0
    path_searches: int = 0
    path_answers: int = 0

    def snapshot(self) -> EngineStats:
        """A frozen-in-time copy."""
        return replace(self)

    def since(self, earlier: EngineStats) -> EngineStats:
        """The work done between `earlier` (a snapshot) and now."""
        return EngineStats(**{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)})
