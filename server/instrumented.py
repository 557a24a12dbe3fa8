"""A Datastore decorator that times every call into Metrics and traces it (STYLE A6).

`InstrumentedDatastore(inner, metrics, tracer)` implements the Datastore protocol by
delegating to `inner`; readers it hands out are wrapped the same way. A streaming query
is measured from the call until its rows were consumed (or the consumer stopped), so
the latency includes how fast the engine pulled rows; a transaction from its start to
its commit, retries included. Attributes the protocol does not name (e.g. a Postgres
datastore's ``pool``) are reached through `inner`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from rebac.datastore.filters import RelationshipFilter
from rebac.datastore.protocol import Datastore, Reader, RevisionChanges, TxFn
from rebac.engine.caching import walks_graph
from rebac.revision import Revision
from rebac.schema.definitions import CompiledSchema
from rebac.tuples import Relationship
from rebac_server.metrics import Metrics
from rebac_server.tracing import Tracer

__all__ = ["InstrumentedDatastore", "InstrumentedGraphReader", "InstrumentedReader", "pool_stats"]


class _Timed:
    """Times one call into `metrics` inside a tracing span named after it."""

    def __init__(self, metrics: Metrics, tracer: Tracer) -> None:
        self.metrics = metrics
        self.tracer = tracer

    async def call(self, operation: str, awaitable: Any) -> Any:
        started = time.perf_counter()
        try:
            with self.tracer.span(f"rebac.datastore.{operation}"):
                return await awaitable
        finally:
            self.metrics.observe_datastore(operation, time.perf_counter() - started)

    async def stream(self, operation: str, rows: AsyncIterator[Relationship]) -> AsyncIterator[Relationship]:
        started = time.perf_counter()
        span = self.tracer.start_span(f"rebac.datastore.{operation}")
        try:
            async for row in rows:
                yield row
        finally:
            self.metrics.observe_datastore(operation, time.perf_counter() - started)
            if span is not None:
                span.end()


class InstrumentedReader:
    """A Reader that times each call of the reader it wraps."""

    def __init__(self, inner: Reader, timed: _Timed) -> None:
        self._inner = inner
        self._timed = timed

    @property
    def revision(self) -> Revision:
        """The wrapped reader's revision."""
        return self._inner.revision

    async def read_schema(self) -> CompiledSchema:
        """The wrapped reader's schema (timed as ``read_schema`` when it is a datastore call).

        A reader that already holds the schema at its revision (``cached_schema()``)
        answers untimed: that is no datastore call, and timing it cost a cached check
        more than the lookup itself.
        """
        peek = getattr(self._inner, "cached_schema", None)
        if peek is not None:
            known: CompiledSchema | None = peek()
            if known is not None:
                return known
        result: CompiledSchema = await self._timed.call("read_schema", self._inner.read_schema())
        return result

    async def read_schema_text(self) -> str | None:
        """The wrapped reader's schema text (timed as ``read_schema``)."""
        result: str | None = await self._timed.call("read_schema", self._inner.read_schema_text())
        return result

    def query_relationships(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the protocol's parameter name
        *,
        limit: int | None = None,
        after: Relationship | None = None,
    ) -> AsyncIterator[Relationship]:
        """The wrapped reader's rows (timed as ``query_relationships``)."""
        rows = self._inner.query_relationships(filter, limit=limit, after=after)
        return self._timed.stream("query_relationships", rows)

    def reverse_query_relationships(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the protocol's parameter name
        *,
        limit: int | None = None,
        after: Relationship | None = None,
    ) -> AsyncIterator[Relationship]:
        """The wrapped reader's rows (timed as ``reverse_query_relationships``)."""
        rows = self._inner.reverse_query_relationships(filter, limit=limit, after=after)
        return self._timed.stream("reverse_query_relationships", rows)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)  # AttributeError when the wrapped reader lacks it
        if name not in _TIMED_OPTIONAL:
            return attr
        timed = self._timed

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await timed.call(name, attr(*args, **kwargs))

        return call


_TIMED_OPTIONAL = frozenset({"reverse_edges", "search_paths"})
"""Optional reader calls (not every reader has them) timed when the wrapped reader does.

Reached through `__getattr__`, so a wrapper never claims a call its reader lacks: the
engine falls back to the protocol's calls exactly as with the bare reader.
"""


class InstrumentedGraphReader(InstrumentedReader):
    """An InstrumentedReader of a GraphReader, naming the graph walks on the class.

    The walks are passed through untimed, as `__getattr__` did; naming them lets the
    engine recognise a graph reader by its class (`walks_graph`) instead of a runtime
    Protocol check per request.
    """

    async def walk_relations(
        self,
        resource_type: str,
        resource_ids: Sequence[str],
        *,
        follow: Sequence[str],
        relations: Sequence[str],
        max_rows: int,
    ) -> list[Relationship] | None:
        """The wrapped reader's walk (see `GraphReader.walk_relations`)."""
        result: list[Relationship] | None = await self._inner.walk_relations(  # type: ignore[attr-defined]
            resource_type, resource_ids, follow=follow, relations=relations, max_rows=max_rows
        )
        return result

    async def subject_set_closure(
        self, resource_type: str, relation: str, subject_type: str, subject_id: str, *, max_rows: int
    ) -> list[Relationship] | None:
        """The wrapped reader's closure (see `GraphReader.subject_set_closure`)."""
        result: list[Relationship] | None = await self._inner.subject_set_closure(  # type: ignore[attr-defined]
            resource_type, relation, subject_type, subject_id, max_rows=max_rows
        )
        return result

    async def subject_set_height(
        self, resource_type: str, relation: str, resource_ids: Sequence[str], *, max_height: int
    ) -> int:
        """The wrapped reader's height (see `GraphReader.subject_set_height`)."""
        result: int = await self._inner.subject_set_height(  # type: ignore[attr-defined]
            resource_type, relation, resource_ids, max_height=max_height
        )
        return result


class InstrumentedDatastore:
    """A Datastore that times calls of `inner`; it does not own `inner` beyond `aclose`."""

    def __init__(self, inner: Datastore, metrics: Metrics, tracer: Tracer = Tracer.NOOP) -> None:
        self.inner = inner
        self._timed = _Timed(metrics, tracer)
        self._peek_optimized = getattr(inner, "cached_optimized_revision", None)

    def snapshot_reader(self, revision: Revision) -> InstrumentedReader:
        """A timed reader at `revision`."""
        inner = self.inner.snapshot_reader(revision)
        wrapper = InstrumentedGraphReader if walks_graph(inner) else InstrumentedReader
        return wrapper(inner, self._timed)

    async def read_write_tx(self, fn: TxFn) -> Revision:
        """The wrapped transaction (timed as ``read_write_tx``)."""
        result: Revision = await self._timed.call("read_write_tx", self.inner.read_write_tx(fn))
        return result

    async def head_revision(self) -> Revision:
        """The wrapped head revision (timed as ``head_revision``)."""
        result: Revision = await self._timed.call("head_revision", self.inner.head_revision())
        return result

    async def optimized_revision(self) -> Revision:
        """The wrapped optimized revision, timed when it is a datastore call.

        Within a quantization window the datastore already knows it
        (``cached_optimized_revision()``): returned untimed, as no datastore call.
        """
        peek = self._peek_optimized
        if peek is not None:
            known: Revision | None = peek()
            if known is not None:
                return known
        result: Revision = await self._timed.call("optimized_revision", self.inner.optimized_revision())
        return result

    async def check_revision(self, revision: Revision) -> None:
        """The wrapped revision check (timed as ``check_revision``)."""
        await self._timed.call("check_revision", self.inner.check_revision(revision))

    def revision_from_string(self, value: str) -> Revision:
        """Parse with the wrapped datastore (no I/O, not timed)."""
        return self.inner.revision_from_string(value)

    def watch(self, after: Revision) -> AsyncIterator[RevisionChanges]:
        """The wrapped change stream (not timed: it lasts as long as the client listens)."""
        return self.inner.watch(after)

    async def aclose(self) -> None:
        """Close the wrapped datastore."""
        await self.inner.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def pool_stats(datastore: object) -> Mapping[str, int] | None:
    """``in_use``/``idle``/``max`` connections of a datastore's asyncpg pool; None without one."""
    inner = getattr(datastore, "inner", datastore)
    try:
        pool = getattr(inner, "pool", None)
    except Exception:  # noqa: BLE001 - a closed datastore raises; it has no pool to report
        return None
    if pool is None or not hasattr(pool, "get_size"):
        return None
    size, idle = int(pool.get_size()), int(pool.get_idle_size())
    return {"in_use": size - idle, "idle": idle, "max": int(pool.get_max_size())}
