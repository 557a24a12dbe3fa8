"""The PostgreSQL datastore (asyncpg) with application-level MVCC revisions.

``async with PostgresDatastore.connect(dsn, migrate=True) as ds: ...``. See datastore.py for
the lifecycle and revisions, reader.py for query planning, transaction.py for writes,
migrate.py for migrations, gc.py and watch.py for the background parts, embedded.py for the
embedded server used when no DSN is configured.
"""

from rebac.datastore.postgres.datastore import DatastoreState, PostgresDatastore, PostgresOptions
from rebac.datastore.postgres.errors import map_asyncpg_errors
from rebac.datastore.postgres.gc import GcResult, collect_garbage, start_gc_task
from rebac.datastore.postgres.migrate import Migration, available_migrations, migrate
from rebac.datastore.postgres.revisions import PgSnapshot, PostgresRevision

__all__ = [
    "DatastoreState",
    "GcResult",
    "Migration",
    "PgSnapshot",
    "PostgresDatastore",
    "PostgresOptions",
    "PostgresRevision",
    "available_migrations",
    "collect_garbage",
    "map_asyncpg_errors",
    "migrate",
    "start_gc_task",
]
