"""Metrics (datastore latency, pool, GC, interpreter GC) and optional OpenTelemetry tracing."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import timedelta

import pytest

from rebac.datastore.memory import MemoryDatastore
from rebac.datastore.postgres import PostgresDatastore
from rebac.errors import InvalidRequestError
from rebac.writes import write_schema
from rebac_server._gen.rebac.v1 import core_pb2, permissions_pb2
from rebac_server.app import start_server
from rebac_server.background import collect_garbage_once
from rebac_server.config import ServerConfig
from rebac_server.instrumented import InstrumentedDatastore, pool_stats
from rebac_server.metrics import Metrics
from rebac_server.tracing import Tracer
from tests.server.server_helpers import HAS, check, subj, touch


class TestDatastoreMetrics:
    async def test_datastore_calls_are_timed(self, server):
        """A write and a check show up as datastore latency observations by operation."""
        await server.relationships.WriteRelationships(touch("document:1#viewer@user:ann"))
        response = await server.permissions.Check(check("document:1", "view", "user:ann"))
        assert response.permissionship == HAS
        metrics = server.running.metrics
        assert metrics.datastore_calls("read_write_tx") >= 1
        assert metrics.datastore_calls("query_relationships") >= 1
        text = metrics.render()
        assert 'rebac_datastore_query_duration_seconds_count{worker="0",operation="read_write_tx"}' in text
        assert 'rebac_python_gc_collections_total{worker="0",generation="2"}' in text

    async def test_lookup_edge_reads_are_timed_where_the_reader_has_them(self, server):
        """PostgreSQL's LookupResources edge reads count as datastore calls; memory has none to count."""
        await server.relationships.WriteRelationships(touch("document:1#viewer@user:ann"))
        request = permissions_pb2.LookupResourcesRequest(
            consistency=core_pb2.Consistency(fully_consistent=True),
            resource_object_type="document",
            permission="view",
            subject=subj("user:ann"),
        )
        found = [
            r.resource_object_id async for m in server.permissions.LookupResources(request) for r in m.results
        ]
        assert found == ["1"]
        calls = server.running.metrics.datastore_calls("reverse_edges")
        if "Memory" in type(server.datastore).__name__:
            assert calls == 0
        else:
            assert calls >= 1

    async def test_cached_revision_and_schema_are_not_datastore_calls(self, pg_dsn):
        """Within a quantization window, the optimized revision and a schema already read cost no timed call."""
        async with PostgresDatastore.connect(pg_dsn, migrate=True, quantization=timedelta(hours=1)) as inner:
            await write_schema(inner, "definition user {}")
            metrics = Metrics()
            ds = InstrumentedDatastore(inner, metrics)
            revisions = [await ds.optimized_revision() for _ in range(3)]
            assert revisions == [revisions[0]] * 3
            assert metrics.datastore_calls("optimized_revision") == 1
            schemas = [await ds.snapshot_reader(revisions[0]).read_schema() for _ in range(3)]
            assert schemas[0].definition("user") is not None
            assert all(schema is schemas[0] for schema in schemas)
            assert metrics.datastore_calls("read_schema") == 1

    async def test_pool_use_only_for_postgres(self, server):
        """PostgreSQL reports in-use, idle and max pool connections; memory reports no pool."""
        stats = pool_stats(server.running.datastore)
        if "Memory" in type(server.datastore).__name__:
            assert stats is None
            assert "rebac_datastore_pool_connections" not in server.running.metrics.render()
        else:
            assert stats is not None
            assert stats["max"] == 4
            assert stats["in_use"] + stats["idle"] <= stats["max"]
            assert 'state="max"} 4' in server.running.metrics.render()

    async def test_gc_runs_are_counted_on_postgres_and_skipped_on_memory(self, server):
        """One GC pass on PostgreSQL is counted as ok; the memory datastore has nothing to collect."""
        ran = await collect_garbage_once(server.running.datastore, server.running.metrics)
        text = server.running.metrics.render()
        if "Memory" in type(server.datastore).__name__:
            assert ran is False
            assert "rebac_datastore_gc_runs_total" not in text
        else:
            assert ran is True
            assert 'rebac_datastore_gc_runs_total{worker="0",result="ok"} 1' in text
            assert 'rebac_datastore_gc_removed_rows_total{worker="0",table="relationships"}' in text

    def test_failed_gc_run_is_counted_as_error(self):
        """A GC run that failed is counted under result="error" and removes nothing."""
        metrics = Metrics()
        metrics.observe_gc(None)
        text = metrics.render()
        assert 'rebac_datastore_gc_runs_total{worker="0",result="error"} 1' in text
        assert 'result="ok"' not in text


class TestTracing:
    def test_off_is_a_no_op(self):
        """With tracing off a span is None and nothing is imported or recorded."""
        with Tracer.NOOP.span("x") as span:
            assert span is None
        assert Tracer.NOOP.start_span("x") is None
        assert Tracer.from_mode("off") is Tracer.NOOP

    def test_unknown_mode_is_refused(self):
        """An unknown --tracing value is a config error naming the option."""
        with pytest.raises(InvalidRequestError, match="tracing"):
            Tracer.from_mode("jaeger")
        with pytest.raises(InvalidRequestError, match="tracing"):
            ServerConfig(tracing="jaeger").validate()

    @pytest.mark.parametrize("mode", ["otel", "console", "otlp"])
    def test_missing_packages_name_what_to_install(self, mode, monkeypatch):
        """Without the opentelemetry packages, asking for tracing fails at startup naming the package."""
        monkeypatch.setitem(sys.modules, "opentelemetry", None)  # makes `import opentelemetry` fail
        with pytest.raises(InvalidRequestError, match="pip install opentelemetry-api"):
            Tracer.from_mode(mode)

    async def test_spans_follow_a_request_through_the_datastore(self, tmp_path):
        """An RPC span continues the caller's trace and parents the datastore spans under it."""
        sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk is not installed")
        export = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415 - optional

        from rebac.writes import write_schema  # noqa: PLC0415
        from tests.server.server_helpers import SCHEMA  # noqa: PLC0415

        exporter = export.InMemorySpanExporter()
        provider = sdk.TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        config = replace(ServerConfig(listen="127.0.0.1:0", datastore="memory", audit_log=None))
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        async with MemoryDatastore() as ds:
            await write_schema(ds, SCHEMA)
            running = await start_server(config, ds, tracer=Tracer.from_provider(provider))
            try:
                from grpc import aio  # noqa: PLC0415

                from rebac_server._gen.rebac.v1 import permissions_pb2_grpc  # noqa: PLC0415

                async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                    stub = permissions_pb2_grpc.PermissionsServiceStub(channel)
                    await stub.Check(
                        check("document:1", "view", "user:ann"),
                        metadata=(("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"),),
                    )
            finally:
                await running.stop(0.5)
        spans = {span.name: span for span in exporter.get_finished_spans()}
        rpc = spans["rebac.rpc/Check"]
        assert format(rpc.context.trace_id, "032x") == trace_id
        assert rpc.attributes["rpc.method"] == "/rebac.v1.PermissionsService/Check"
        datastore_spans = [s for name, s in spans.items() if name.startswith("rebac.datastore.")]
        assert datastore_spans
        assert all(s.parent is not None and s.parent.span_id == rpc.context.span_id for s in datastore_spans)
