"""Composition root and process model of the server.

`start_server(config, datastore)` wires one process: engine → servicers → interceptor →
grpc.aio server (+ health, reflection, metrics). `serve(config)` is `rebac serve`: it
prepares the datastore (embedded PostgreSQL, migrations), then serves from this process
or from `config.effective_workers` worker processes that share the port through
SO_REUSEPORT, each with its own engine caches and connection pool. Revision tokens are
datastore revisions, so a token from any worker is honoured by every worker. The memory
datastore lives in one process, so it is always served by exactly one.

Shutdown: SIGTERM/SIGINT stop accepting calls, let in-flight calls finish within
`config.grace_period`, then close the datastore; the parent forwards the signal to its
workers and waits for them. SIGHUP re-reads the key file (`rebac_server.background`);
the parent forwards it to every worker.

Every datastore call goes through `InstrumentedDatastore` (latency metrics, tracing
spans); on PostgreSQL worker 0 also runs the datastore GC every `config.gc_interval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from rebac.datastore.protocol import Datastore
from rebac.errors import DatastoreNotMigratedError, InvalidRequestError, RebacError
from rebac_server._gen.rebac.v1 import (
    permissions_pb2,
    permissions_pb2_grpc,
    relationships_pb2,
    relationships_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
)
from rebac_server.audit import AuditLog
from rebac_server.auth import KeyRing
from rebac_server.background import reload_key_file, start_gc
from rebac_server.config import ServerConfig, split_host_port
from rebac_server.instrumented import InstrumentedDatastore, pool_stats
from rebac_server.interceptors import ServerInterceptor
from rebac_server.metrics import Metrics, start_metrics_server
from rebac_server.tracing import Tracer

if TYPE_CHECKING:
    from rebac.engine import Engine

__all__ = ["SERVICE_NAMES", "RunningServer", "open_datastore", "prepare_database", "serve", "start_server"]

logger = logging.getLogger("rebac_server")

SERVICE_NAMES = (
    permissions_pb2.DESCRIPTOR.services_by_name["PermissionsService"].full_name,
    relationships_pb2.DESCRIPTOR.services_by_name["RelationshipsService"].full_name,
    schema_pb2.DESCRIPTOR.services_by_name["SchemaService"].full_name,
)
"""The fully qualified names of our services (health and reflection list them)."""


@dataclass
class RunningServer:
    """One started grpc.aio server and what it owns (not the datastore)."""

    server: aio.Server
    port: int
    engine: Engine
    metrics: Metrics
    health: Any
    """The grpc_health aio HealthServicer (untyped upstream)."""
    audit: AuditLog
    interceptor: ServerInterceptor
    datastore: InstrumentedDatastore
    """The instrumented view of the caller's datastore that the servicers use."""
    metrics_server: asyncio.Server | None = None
    _stopped: bool = field(default=False, repr=False)

    async def stop(self, grace: float | None) -> None:
        """Refuse new calls, let in-flight ones finish within `grace` seconds; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.metrics_server is not None:
            self.metrics_server.close()
            await self.metrics_server.wait_closed()
        self.audit.close()


def _credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    try:
        chain = config.tls_cert.read_bytes()
        key = config.tls_key.read_bytes()
        ca = config.tls_client_ca.read_bytes() if config.tls_client_ca else None
    except OSError as err:
        raise InvalidRequestError(
            f"cannot read TLS file {err.filename}: {err.strerror}", field="tls_cert"
        ) from None
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=ca, require_client_auth=ca is not None
    )


async def start_server(
    config: ServerConfig,
    datastore: Datastore,
    *,
    engine: Engine | None = None,
    reuse_port: bool = False,
    worker: int = 0,
    tracer: Tracer | None = None,
) -> RunningServer:
    """Build and start one server on `config.listen` (port 0 picks a free port).

    `reuse_port` lets several processes bind the same port (multi-worker mode); without it
    a port already in use is an error. `tracer` defaults to the one `config.tracing`
    names. The caller owns `datastore` and closes it after `RunningServer.stop`.
    """
    from rebac.engine import Engine  # noqa: PLC0415 - the engine is only needed once serving

    engine = engine or Engine(
        max_depth=config.max_depth, max_contextual_relationships=config.max_contextual_relationships
    )
    tracer = tracer or Tracer.from_mode(config.tracing)
    audit = AuditLog.open(config.audit_log)
    metrics = Metrics(
        engine_stats=lambda: getattr(engine, "stats", None),
        pool_stats=lambda: pool_stats(datastore),
        worker=worker,
    )
    instrumented = InstrumentedDatastore(datastore, metrics, tracer)
    interceptor = ServerInterceptor(KeyRing(config.keys), metrics, tracer)
    server = aio.server(
        interceptors=[interceptor],
        options=[
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", max(config.max_message_bytes, 16 * 1024 * 1024)),
        ],
    )
    from rebac_server.servicers.permissions import PermissionsServicer  # noqa: PLC0415 - needs the engine
    from rebac_server.servicers.relationships import RelationshipsServicer  # noqa: PLC0415
    from rebac_server.servicers.schema import SchemaServicer  # noqa: PLC0415

    # The generated registration functions are untyped (grpcio-tools writes no stubs for them).
    permissions_pb2_grpc.add_PermissionsServiceServicer_to_server(  # type: ignore[no-untyped-call]
        PermissionsServicer(instrumented, engine, audit), server
    )
    relationships_pb2_grpc.add_RelationshipsServiceServicer_to_server(  # type: ignore[no-untyped-call]
        RelationshipsServicer(instrumented, audit, max_updates=config.max_updates_per_write), server
    )
    schema_pb2_grpc.add_SchemaServiceServicer_to_server(  # type: ignore[no-untyped-call]
        SchemaServicer(instrumented, audit), server
    )
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    credentials = _credentials(config)
    try:
        port = (
            server.add_secure_port(config.listen, credentials)
            if credentials is not None
            else server.add_insecure_port(config.listen)
        )
    except RuntimeError as err:
        raise InvalidRequestError(f"cannot listen on {config.listen}: {err}", field="listen") from None
    if not port:
        raise InvalidRequestError(f"cannot listen on {config.listen}", field="listen")
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    running = RunningServer(server, port, engine, metrics, health_servicer, audit, interceptor, instrumented)
    if config.metrics_listen is not None:
        host, metrics_port = split_host_port(config.metrics_listen, field="metrics_listen")
        running.metrics_server = await start_metrics_server(
            metrics, host, metrics_port + worker if metrics_port else 0
        )
    return running


async def open_datastore(config: ServerConfig, dsn: str | None) -> Datastore:
    """An opened datastore for this process (memory, or Postgres at `dsn`)."""
    if config.datastore == "memory":
        from rebac.datastore.memory import MemoryDatastore  # noqa: PLC0415 - only on this path

        return MemoryDatastore()
    from rebac.datastore.postgres import PostgresDatastore  # noqa: PLC0415 - only on this path

    if dsn is None:
        raise InvalidRequestError("the postgres datastore needs a DSN", field="datastore_uri")
    return await PostgresDatastore.connect(dsn).open()


async def prepare_database(dsn: str, *, migrate: bool) -> None:
    """Migrate the database at `dsn` (`migrate`), or refuse one not at the version we know.

    Runs once, before any worker starts. DatastoreNotMigratedError with one line that
    names the way out: `rebac migrate` or `--migrate` for an older database, upgrading
    rebac for a newer one (--migrate does not help there). Never puts the DSN in the
    message: it may hold a password.
    """
    import asyncpg  # noqa: PLC0415 - only on the PostgreSQL path

    from rebac.datastore.postgres import migrate as apply_migrations  # noqa: PLC0415
    from rebac.datastore.postgres.errors import map_asyncpg_errors  # noqa: PLC0415
    from rebac.datastore.postgres.migrate import available_migrations, current_version  # noqa: PLC0415

    if migrate:
        await apply_migrations(dsn)
        return
    with map_asyncpg_errors():
        conn = await asyncpg.connect(dsn)
    try:
        version = await current_version(conn)
    finally:
        await conn.close()
    latest = len(available_migrations())
    if version > latest:
        raise DatastoreNotMigratedError(
            f"the database is at migration version {version}, newer than the {latest} this rebac "
            "knows: upgrade rebac (refusing to serve)"
        )
    if version < latest:
        raise DatastoreNotMigratedError(
            f"the database is at migration version {version}, this rebac needs {latest}: run "
            "`rebac migrate --dsn ...` first, or start with `rebac serve --migrate` (env REBAC_MIGRATE=1)"
        )


def _install_stop_handlers(stop: asyncio.Event, on_hangup: Callable[[], object] | None = None) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if on_hangup is not None:
        loop.add_signal_handler(signal.SIGHUP, on_hangup)


async def _serve_process(
    config: ServerConfig,
    dsn: str | None,
    *,
    reuse_port: bool,
    worker: int,
    on_ready: Callable[[RunningServer], None],
) -> None:
    stop = asyncio.Event()
    _install_stop_handlers(stop)
    datastore = await open_datastore(config, dsn)
    try:
        running = await start_server(config, datastore, reuse_port=reuse_port, worker=worker)
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGHUP, reload_key_file, config, running.interceptor
        )
        gc_task = start_gc(datastore, running.metrics, config.gc_interval) if worker == 0 else None
        # Everything allocated at startup (modules, schema, protos) lives as long as the
        # process: move it out of the cyclic collector's view so each collection scans only
        # per-request garbage (the collector was 2% of samples under a direct-check load).
        gc.freeze()
        try:
            on_ready(running)
            await stop.wait()
        finally:
            if gc_task is not None:
                gc_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await gc_task
            await running.stop(config.grace_period)
    finally:
        await datastore.aclose()


def _worker_main(config: ServerConfig, dsn: str | None, worker: int, ready: Any) -> None:
    """Entry point of a worker process: serve until SIGTERM, report readiness on `ready`."""
    logging.basicConfig(
        level=config.log_level.upper(), format=f"worker {worker}: %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(
            _serve_process(
                config,
                dsn,
                reuse_port=True,
                worker=worker,
                on_ready=lambda r: ready.put((worker, r.port, None)),
            )
        )
    except RebacError as err:
        ready.put((worker, 0, str(err)))
    except Exception as err:
        logger.exception("worker %d failed", worker)
        ready.put((worker, 0, f"{type(err).__name__}: {err}"))


def _reserve_port(config: ServerConfig) -> tuple[ServerConfig, socket.socket | None]:
    """For port 0 with several workers: pick one free port that every worker then shares."""
    host, port = split_host_port(config.listen)
    if port != 0:
        return config, None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((host or "0.0.0.0", 0))  # noqa: S104 - an empty host means every interface
    chosen = holder.getsockname()[1]
    listen = f"[{host}]:{chosen}" if family == socket.AF_INET6 else f"{host}:{chosen}"
    return replace(config, listen=listen), holder


def _announce(config: ServerConfig, port: int, workers: int, extra: str = "") -> None:
    host, _ = split_host_port(config.listen)
    auth = f"{len(config.keys)} key(s)" if config.keys else "no auth"
    tls = ", TLS" if config.tls_cert else ""
    print(  # noqa: T201 - the CLI's one line telling the user where to connect
        f"rebac: listening on {host}:{port} (datastore: {config.datastore}{extra}, "
        f"workers: {workers}, {auth}{tls})",
        flush=True,
    )
    if config.metrics_listen:
        print(f"rebac: metrics on http://{config.metrics_listen}/metrics", flush=True)  # noqa: T201


async def _run_workers(config: ServerConfig, dsn: str | None, extra: str) -> int:
    config, holder = _reserve_port(config)
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    processes: list[BaseProcess] = [
        context.Process(
            target=_worker_main, args=(config, dsn, i, ready), name=f"rebac-worker-{i}", daemon=False
        )
        for i in range(config.effective_workers)
    ]
    for process in processes:
        process.start()
    stop = asyncio.Event()
    _install_stop_handlers(stop, on_hangup=lambda: _signal_all(processes, signal.SIGHUP))
    try:
        port = 0
        for _ in processes:
            worker, worker_port, error = await asyncio.to_thread(ready.get)
            if error is not None:
                print(f"rebac: error: worker {worker}: {error}", file=sys.stderr, flush=True)  # noqa: T201
                return 1
            port = worker_port
        _announce(config, port, len(processes), extra)
        dead = asyncio.create_task(asyncio.to_thread(_wait_any, processes))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({dead, stopped}, return_when=asyncio.FIRST_COMPLETED)
        return 0 if stop.is_set() else 1
    finally:
        _signal_all(processes, signal.SIGTERM)
        for process in processes:
            await asyncio.to_thread(process.join, config.grace_period + 5)
            if process.is_alive():
                process.kill()
        if holder is not None:
            holder.close()


def _signal_all(processes: list[BaseProcess], sig: signal.Signals) -> None:
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, sig)


def _wait_any(processes: list[BaseProcess]) -> None:
    from multiprocessing.connection import wait  # noqa: PLC0415 - only the parent needs it

    wait([p.sentinel for p in processes])


def _refuse_busy_address(listen: str) -> None:
    """InvalidRequestError naming `listen` if something already listens there.

    gRPC's own bind failure is a C-core log line plus "Failed to bind"; a probe socket gives
    the user one clear line before anything (the embedded PostgreSQL, workers) starts.
    SO_REUSEADDR keeps a recently stopped server's TIME_WAIT sockets from looking busy.
    """
    host, _, port = listen.rpartition(":")
    if port in {"", "0"}:
        return
    try:
        infos = socket.getaddrinfo(host.strip("[]") or None, int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        return  # not resolvable here: gRPC reports it when it binds
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise InvalidRequestError(
                    f"cannot listen on {listen}: the address is already in use "
                    "(another `rebac serve`?); pick another with --listen",
                    field="listen",
                ) from None


async def _serve(config: ServerConfig) -> int:
    _refuse_busy_address(config.listen)
    embedded = None
    dsn = config.datastore_uri
    extra = ""
    if config.datastore == "embedded":
        from rebac.datastore.postgres.embedded import EmbeddedPostgres  # noqa: PLC0415 - optional path

        embedded = EmbeddedPostgres(config.embedded_data_dir)
        print(  # noqa: T201 - the first start initializes a cluster, which takes a few seconds
            f"rebac: starting embedded PostgreSQL, data in {embedded.data_dir}", file=sys.stderr, flush=True
        )
        dsn = await embedded.start()
        extra = f", embedded PostgreSQL data in {embedded.data_dir}"
    elif config.datastore == "postgres" and dsn is not None:
        await prepare_database(dsn, migrate=config.migrate)
    try:
        if config.effective_workers == 1:
            await _serve_process(
                config,
                dsn,
                reuse_port=False,
                worker=0,
                on_ready=lambda r: _announce(config, r.port, 1, extra),
            )
            return 0
        return await _run_workers(config, dsn, extra)
    finally:
        if embedded is not None:
            await embedded.stop()


def serve(config: ServerConfig) -> int:
    """Run the server until SIGTERM/SIGINT; the process exit code."""
    logging.basicConfig(level=config.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_serve(config))
    return 0
