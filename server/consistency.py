"""The only place a request's revision is chosen.

`resolve_revision` turns a Consistency (already converted from proto) into one revision
of the datastore; servicers carry that revision explicitly to the engine and return it
to the client as a token. `RevisionResolver` does the same for one datastore and shares
head-revision reads between concurrent requests (`CoalescedHeadRevision`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import assert_never

from rebac.datastore.protocol import Datastore
from rebac.revision import (
    AtExactSnapshot,
    AtLeastAsFresh,
    Consistency,
    FullyConsistent,
    MinimizeLatency,
    Revision,
    decode_token,
)

__all__ = ["CoalescedHeadRevision", "RevisionResolver", "resolve_revision", "revision_from_token"]


def revision_from_token(token: str, datastore: Datastore) -> Revision:
    """The datastore revision named by an opaque token; InvalidRevisionError if malformed."""
    return datastore.revision_from_string(decode_token(token))


async def resolve_revision(
    consistency: Consistency,
    datastore: Datastore,
    *,
    head: Callable[[], Awaitable[Revision]] | None = None,
) -> Revision:
    """Choose the revision a read is evaluated at.

    - minimize_latency: the optimized (quantized) revision;
    - at_least_as_fresh: the newer of the token's and the optimized revision; when
      neither is greater (concurrent Postgres snapshots), the head revision;
    - at_exact_snapshot: the token's revision (StaleRevisionError once collected);
    - fully_consistent: the head revision.

    Tokens are validated with `check_revision` (InvalidRevisionError for a token from the
    future or another datastore). `head` replaces `datastore.head_revision` (it must read a
    revision at least as new as any committed when it was called).
    """
    head_revision = head or datastore.head_revision
    match consistency:
        case MinimizeLatency():
            return await datastore.optimized_revision()
        case FullyConsistent():
            return await head_revision()
        case AtExactSnapshot(token=token):
            revision = revision_from_token(token, datastore)
            await datastore.check_revision(revision)
            return revision
        case AtLeastAsFresh(token=token):
            requested = revision_from_token(token, datastore)
            await datastore.check_revision(requested)
            optimized = await datastore.optimized_revision()
            if optimized == requested or optimized.greater_than(requested):
                return optimized
            if requested.greater_than(optimized):
                return requested
            return await head_revision()
        case _:
            assert_never(consistency)


class CoalescedHeadRevision:
    """`fetch()` (a head-revision read) shared by concurrent callers without ever going stale.

    A caller gets the result of a read that *started after it called*, so it sees every
    write committed before its call (no new-enemy problem): when no read is in flight it
    starts one; otherwise it waits for the next read, which starts as soon as the
    in-flight one ends and serves every caller that arrived meanwhile. Under load that is
    at most about two reads per round-trip time instead of one per request; alone, a
    caller pays one read as before. A failed read fails exactly the callers it served.
    One instance serves one event loop.
    """

    def __init__(self, fetch: Callable[[], Awaitable[Revision]]) -> None:
        self._fetch = fetch
        self._running: asyncio.Future[Revision] | None = None
        self._next: asyncio.Future[Revision] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.reads = 0
        self.calls = 0

    async def __call__(self) -> Revision:
        """A head revision read no earlier than this call."""
        self.calls += 1
        if self._running is None:
            future = self._start(self._new_future())
        else:
            if self._next is None:
                self._next = self._new_future()
            future = self._next
        return await asyncio.shield(future)

    @staticmethod
    def _new_future() -> asyncio.Future[Revision]:
        future: asyncio.Future[Revision] = asyncio.get_running_loop().create_future()
        # Every waiter may have been cancelled: then nobody retrieves a failure, and that is fine.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        return future

    def _start(self, future: asyncio.Future[Revision]) -> asyncio.Future[Revision]:
        self._running = future
        self.reads += 1
        task = asyncio.get_running_loop().create_task(self._read(future))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return future

    async def _read(self, future: asyncio.Future[Revision]) -> None:
        try:
            future.set_result(await self._fetch())
        except Exception as exc:  # noqa: BLE001 - handed to the callers this read serves
            future.set_exception(exc)
        except BaseException:
            future.cancel()
            raise
        finally:
            self._running = None
            waiting, self._next = self._next, None
            if waiting is not None:
                self._start(waiting)


class RevisionResolver:
    """`resolve_revision` for one datastore, with head reads coalesced between concurrent requests."""

    def __init__(self, datastore: Datastore) -> None:
        self.datastore = datastore
        self.head = CoalescedHeadRevision(datastore.head_revision)

    async def resolve(self, consistency: Consistency) -> Revision:
        """The revision a read at `consistency` is evaluated at (see `resolve_revision`)."""
        return await resolve_revision(consistency, self.datastore, head=self.head)
