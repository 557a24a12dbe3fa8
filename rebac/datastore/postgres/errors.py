"""Translation of asyncpg and socket errors into the rebac error tree, in one place.

Every call into asyncpg from this package runs inside `map_asyncpg_errors()`, so callers
only ever see `rebac.errors` classes (the original is kept as ``__cause__``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from rebac.errors import (
    BugError,
    DatastoreError,
    DatastoreNotMigratedError,
    DatastoreUnavailableError,
    RebacError,
    RelationshipExistsError,
    SerializationConflictError,
)

__all__ = ["is_connection_error", "map_asyncpg_errors"]

# The DETAIL reads: Key (resource_type, ..., subject_relation)=(document, 1, viewer, user, ann, )
# already exists.
# Ids cannot contain ", " or parentheses (tuples.py), so splitting the values is exact.
_KEY_DETAIL_RE = re.compile(r"Key \(([^)]*)\)=\((.*)\) already exists\.?")
_KEY_COLUMNS = (
    "resource_type",
    "resource_id",
    "relation",
    "subject_type",
    "subject_id",
    "subject_relation",
)

# Errors that mean "the server or the connection is gone"; safe to retry on a fresh
# connection when nothing was sent yet.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08: connection exception
    asyncpg.CannotConnectNowError,  # 57P03: starting up / shutting down
    asyncpg.AdminShutdownError,  # 57P01: pg_terminate_backend, smart/fast shutdown
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.TooManyConnectionsError,  # 53300
    asyncpg.InterfaceError,  # "connection is closed", pool closed mid-acquire
    ConnectionError,
    OSError,
    TimeoutError,  # pool acquire / connect timeout
)


def is_connection_error(exc: BaseException) -> bool:
    """True if `exc` (an asyncpg or OS error) means the database could not be reached."""
    return isinstance(exc, _CONNECTION_ERRORS)


def _existing_relationship(detail: str | None) -> str:
    """Canonical text of the duplicated key from a unique_violation's DETAIL, if it names one."""
    match = _KEY_DETAIL_RE.fullmatch(detail or "")
    if match is None:
        return "(key not reported)"
    columns = [c.strip() for c in match.group(1).split(",")]
    values = match.group(2).split(", ")
    if columns != list(_KEY_COLUMNS) or len(values) != len(_KEY_COLUMNS):
        return "(key not reported)"
    rtype, rid, relation, stype, sid, srel = values
    subject = f"{stype}:{sid}" + (f"#{srel}" if srel else "")
    return f"{rtype}:{rid}#{relation}@{subject}"


@contextmanager
def map_asyncpg_errors() -> Iterator[None]:
    """Re-raise driver errors as rebac errors (``raise ... from exc``); RebacErrors pass through.

    - serialization failure, deadlock → SerializationConflictError (retryable)
    - unique violation → RelationshipExistsError naming the key
    - undefined table → DatastoreNotMigratedError
    - lost/refused connection, OSError, timeouts → DatastoreUnavailableError
    - SQL syntax or undefined column/function → BugError (our SQL is wrong)
    - any other PostgreSQL error → DatastoreError
    """
    try:
        yield
    except RebacError:
        raise
    except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError) as exc:
        raise SerializationConflictError(f"transaction conflicted with a concurrent one: {exc}") from exc
    except asyncpg.UniqueViolationError as exc:
        raise RelationshipExistsError(_existing_relationship(exc.detail)) from exc
    except asyncpg.UndefinedTableError as exc:
        raise DatastoreNotMigratedError(
            f"the database has no rebac tables ({exc}); run `rebac migrate`"
        ) from exc
    except (asyncpg.PostgresSyntaxError, asyncpg.UndefinedColumnError, asyncpg.UndefinedFunctionError) as exc:
        raise BugError(f"invalid SQL sent to PostgreSQL: {exc}") from exc
    except _CONNECTION_ERRORS as exc:
        raise DatastoreUnavailableError(f"PostgreSQL is unavailable: {type(exc).__name__}: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise DatastoreError(f"PostgreSQL error {exc.sqlstate}: {exc}") from exc
