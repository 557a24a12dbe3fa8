"""The connection type this package accepts: a plain asyncpg connection or a pooled one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

AnyConnection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
"""An asyncpg connection, whether opened directly or acquired from a pool."""
