"""Work a serving process does besides answering calls: datastore GC and key reloads.

GC: on PostgreSQL, exactly one process (worker 0) runs `collect_garbage` every
`gc_interval` seconds and records each run in its Metrics; a failed run is logged and
retried at the next interval. The memory datastore keeps no history to collect.

Key reload: on SIGHUP the key file is read again and replaces the keys in force for new
calls; calls already running finish with the key they authenticated with. An unreadable
or invalid file changes nothing and says why on stderr (the old keys stay in force).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING

from rebac.errors import DatastoreError, InvalidRequestError
from rebac_server.config import ServerConfig, reload_keys
from rebac_server.metrics import Metrics

if TYPE_CHECKING:
    from rebac.datastore.protocol import Datastore
    from rebac_server.interceptors import ServerInterceptor

__all__ = ["collect_garbage_once", "reload_key_file", "start_gc"]

logger = logging.getLogger("rebac_server")


def _postgres(datastore: Datastore) -> object | None:
    from rebac.datastore.postgres import PostgresDatastore  # noqa: PLC0415 - only when serving Postgres

    inner = getattr(datastore, "inner", datastore)
    return inner if isinstance(inner, PostgresDatastore) else None


async def collect_garbage_once(datastore: Datastore, metrics: Metrics) -> bool:
    """Run one GC pass if `datastore` is PostgreSQL, recording it; False if it failed or was skipped."""
    from rebac.datastore.postgres import PostgresDatastore, collect_garbage  # noqa: PLC0415

    postgres = _postgres(datastore)
    if not isinstance(postgres, PostgresDatastore):
        return False
    try:
        result = await collect_garbage(postgres)
    except DatastoreError as err:
        logger.warning("datastore GC failed (retrying at the next interval): %s", err)
        metrics.observe_gc(None)
        return False
    metrics.observe_gc(
        {
            "relationships": result.relationships,
            "transactions": result.transactions,
            "schemas": result.schemas,
        },
        result.horizon,
    )
    return True


def start_gc(datastore: Datastore, metrics: Metrics, interval: float) -> asyncio.Task[None] | None:
    """A task running GC every `interval` seconds (cancel it on shutdown); None if not needed."""
    if interval <= 0 or _postgres(datastore) is None:
        return None

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            await collect_garbage_once(datastore, metrics)

    return asyncio.create_task(loop(), name="rebac-gc")


def reload_key_file(config: ServerConfig, interceptor: ServerInterceptor) -> bool:
    """Re-read `config.key_file` into `interceptor`'s key ring; False (and a stderr line) on error."""
    try:
        keys = reload_keys(config)
    except InvalidRequestError as err:
        print(f"rebac: key reload failed, keeping the old keys: {err}", file=sys.stderr, flush=True)  # noqa: T201
        return False
    interceptor.keyring = interceptor.keyring.replaced(keys)
    print(f"rebac: reloaded keys ({len(keys)} in force)", file=sys.stderr, flush=True)  # noqa: T201
    return True
