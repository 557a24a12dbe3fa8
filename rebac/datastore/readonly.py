"""A read-only decorator over any Datastore: reads pass through, writes are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

from rebac.datastore.protocol import Datastore, Reader, RevisionChanges, TxFn
from rebac.errors import ReadOnlyError
from rebac.revision import Revision

__all__ = ["ReadOnlyDatastore"]


class ReadOnlyDatastore:
    """Wraps `inner`; `read_write_tx` raises ReadOnlyError without running its function.

    Everything else, `aclose` included, is delegated: closing the proxy closes `inner`.
    """

    def __init__(self, inner: Datastore) -> None:
        self._inner = inner

    def snapshot_reader(self, revision: Revision) -> Reader:
        """The inner datastore's reader at `revision`."""
        return self._inner.snapshot_reader(revision)

    async def read_write_tx(self, fn: TxFn) -> Revision:
        """Always ReadOnlyError; `fn` never runs."""
        del fn
        raise ReadOnlyError("the datastore is read-only")

    async def head_revision(self) -> Revision:
        """The inner datastore's head revision."""
        return await self._inner.head_revision()

    async def optimized_revision(self) -> Revision:
        """The inner datastore's optimized revision."""
        return await self._inner.optimized_revision()

    async def check_revision(self, revision: Revision) -> None:
        """Delegates to the inner datastore."""
        await self._inner.check_revision(revision)

    def revision_from_string(self, value: str) -> Revision:
        """Delegates to the inner datastore."""
        return self._inner.revision_from_string(value)

    def watch(self, after: Revision) -> AsyncIterator[RevisionChanges]:
        """The inner datastore's change stream."""
        return self._inner.watch(after)

    async def aclose(self) -> None:
        """Close the inner datastore."""
        await self._inner.aclose()
