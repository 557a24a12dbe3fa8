"""map_asyncpg_errors: each driver failure becomes the right rebac error, chained to the original."""

from __future__ import annotations

import asyncpg
import pytest

from rebac.datastore.postgres.errors import map_asyncpg_errors
from rebac.errors import (
    BugError,
    DatastoreError,
    DatastoreNotMigratedError,
    DatastoreUnavailableError,
    RebacError,
    RelationshipExistsError,
    SerializationConflictError,
)

KEY_DETAIL = (
    "Key (resource_type, resource_id, relation, subject_type, subject_id, subject_relation)="
    "(document, 1, viewer, group, eng, member) already exists."
)


def unique_violation(detail: str) -> asyncpg.UniqueViolationError:
    exc = asyncpg.UniqueViolationError("duplicate key value violates unique constraint")
    exc.detail = detail  # type: ignore[misc]
    return exc


class TestMapAsyncpgErrors:
    @pytest.mark.parametrize(
        ("raised", "expected"),
        [
            (asyncpg.SerializationError("could not serialize"), SerializationConflictError),
            (asyncpg.DeadlockDetectedError("deadlock"), SerializationConflictError),
            (
                asyncpg.UndefinedTableError('relation "rebac_relationship" does not exist'),
                DatastoreNotMigratedError,
            ),
            (asyncpg.AdminShutdownError("terminating connection"), DatastoreUnavailableError),
            (asyncpg.ConnectionDoesNotExistError("connection was closed"), DatastoreUnavailableError),
            (asyncpg.CannotConnectNowError("the database system is starting up"), DatastoreUnavailableError),
            (asyncpg.InterfaceError("connection is closed"), DatastoreUnavailableError),
            (ConnectionRefusedError(111, "refused"), DatastoreUnavailableError),
            (TimeoutError(), DatastoreUnavailableError),
            (asyncpg.PostgresSyntaxError("syntax error at or near"), BugError),
            (asyncpg.DiskFullError("no space left"), DatastoreError),
        ],
        ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.__name__,
    )
    def test_maps_to_the_most_specific_class(self, raised: BaseException, expected: type[RebacError]) -> None:
        """The mapped class is the expected one and keeps the driver error as __cause__."""
        with pytest.raises(expected) as info, map_asyncpg_errors():
            raise raised
        assert type(info.value) is expected
        assert info.value.__cause__ is raised

    def test_unique_violation_names_the_existing_relationship(self) -> None:
        """The duplicated key from the DETAIL line is reported in canonical relationship text."""
        with pytest.raises(RelationshipExistsError) as info, map_asyncpg_errors():
            raise unique_violation(KEY_DETAIL)
        assert info.value.relationship == "document:1#viewer@group:eng#member"

    def test_unique_violation_without_detail_still_maps(self) -> None:
        """An unparseable DETAIL still yields RelationshipExistsError, saying the key is unknown."""
        with pytest.raises(RelationshipExistsError, match="not reported"), map_asyncpg_errors():
            raise unique_violation("something else")

    def test_rebac_errors_pass_through_untouched(self) -> None:
        """A RebacError raised inside the block is not re-wrapped."""
        original = SerializationConflictError("already mapped")
        with pytest.raises(SerializationConflictError) as info, map_asyncpg_errors():
            raise original
        assert info.value is original

    def test_unrelated_python_errors_are_not_swallowed(self) -> None:
        """A programming error (KeyError) propagates as itself, never as a datastore error."""
        with pytest.raises(KeyError), map_asyncpg_errors():
            raise KeyError("x")
