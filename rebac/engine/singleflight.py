"""In-flight de-duplication: identical concurrent sub-problems share one evaluation."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from rebac.engine.dispatch import DispatchCheckRequest, DispatchCheckResponse, Dispatcher
from rebac.engine.keys import inflight_key

__all__ = ["SingleflightDispatcher"]


class SingleflightDispatcher:
    """Coalesces identical in-flight check sub-problems (see `keys.inflight_key`).

    The first caller (the leader) evaluates in its own task, with no task of its own to
    create: most sub-problems have no twin, and a task per sub-problem was the largest
    fixed cost of a check. Later identical callers wait on the leader's future (shielded,
    so a joiner's cancellation does not cancel the others). Errors are shared like
    results. If the leader is cancelled (its caller stopped waiting, e.g. a union that
    already has its answer), each joiner evaluates for itself instead of inheriting the
    cancellation. A joined answer is used only if it is also valid at the joiner's "now"
    (expirations). Single event loop only.
    """

    def __init__(self, delegate: Dispatcher) -> None:
        self._delegate = delegate
        self._inflight: dict[Hashable, asyncio.Future[DispatchCheckResponse]] = {}

    async def dispatch_check(self, request: DispatchCheckRequest) -> DispatchCheckResponse:
        """Join an identical in-flight evaluation, or lead one."""
        key = inflight_key(request)
        pending = self._inflight.get(key)
        if pending is not None:
            return await self._join(request, pending)
        future: asyncio.Future[DispatchCheckResponse] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            response = await self._delegate.dispatch_check(request)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody joined
            raise
        else:
            future.set_result(response)
            return response
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]

    async def _join(
        self, request: DispatchCheckRequest, pending: asyncio.Future[DispatchCheckResponse]
    ) -> DispatchCheckResponse:
        request.scope.stats.deduplicated += 1
        try:
            response = await asyncio.shield(pending)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not pending.cancelled() or (task is not None and task.cancelling()):
                raise  # this caller was cancelled
            return await self.dispatch_check(request)  # the leader was: evaluate here
        if response.valid_at(request.scope.now):
            return response
        # The leader evaluated at another "now" and an expiration falls in between.
        return await self._delegate.dispatch_check(request)
