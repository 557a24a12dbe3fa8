"""A Reader decorator that adds a request's contextual relationships to what it reads."""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Sequence

from rebac.datastore.filters import RelationshipFilter
from rebac.datastore.protocol import Reader
from rebac.errors import BugError
from rebac.revision import Revision
from rebac.schema.definitions import CompiledSchema
from rebac.tuples import Relationship

__all__ = ["ContextualReader"]


class ContextualReader:
    """Reads `inner` plus `extra` relationships, as if `extra` were stored (STYLE A6).

    Results stay in key order; an extra relationship with the key of a stored one replaces
    it (its caveat and expiration win). `extra` is never written anywhere.
    """

    def __init__(self, inner: Reader, extra: Sequence[Relationship]) -> None:
        self._inner = inner
        by_key = {r.key: r for r in extra}
        self._extra = sorted(by_key.values(), key=lambda r: r.key)

    @property
    def revision(self) -> Revision:
        """The inner reader's revision."""
        return self._inner.revision

    async def read_schema(self) -> CompiledSchema:
        """The inner reader's schema."""
        return await self._inner.read_schema()

    async def read_schema_text(self) -> str | None:
        """The inner reader's schema text."""
        return await self._inner.read_schema_text()

    def query_relationships(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the protocol's name
        *,
        limit: int | None = None,
        after: Relationship | None = None,
    ) -> AsyncIterator[Relationship]:
        """Stored and contextual relationships matching `filter`, merged in key order."""
        return self._merge(self._inner.query_relationships(filter, after=after), filter, limit, after)

    def reverse_query_relationships(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the protocol's name
        *,
        limit: int | None = None,
        after: Relationship | None = None,
    ) -> AsyncIterator[Relationship]:
        """Like `query_relationships`, by subject; BugError if `filter.subject` is None."""
        if filter.subject is None:
            raise BugError("reverse_query_relationships needs a subject filter")
        return self._merge(self._inner.reverse_query_relationships(filter, after=after), filter, limit, after)

    async def _merge(
        self,
        stored: AsyncIterator[Relationship],
        filter_: RelationshipFilter,
        limit: int | None,
        after: Relationship | None,
    ) -> AsyncIterator[Relationship]:
        extra = [r for r in self._extra if filter_.matches(r) and (after is None or r.key > after.key)]
        extra_keys = {r.key for r in extra}
        rows = [r async for r in stored if r.key not in extra_keys]
        for count, row in enumerate(heapq.merge(rows, extra, key=lambda r: r.key)):
            if limit is not None and count >= limit:
                return
            yield row
