"""In-flight de-duplication: identical concurrent sub-problems share one evaluation."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from rebac.engine.dispatch import DispatchCheckRequest, DispatchCheckResponse, Dispatcher
from rebac.engine.keys import inflight_key

__all__ = ["SingleflightDispatcher"]


class SingleflightDispatcher:
    """Coalesces identical in-flight check sub-problems (see `keys.inflight_key`).

    The first caller runs the evaluation as a task; later identical callers await the same
    task (shielded, so one caller's cancellation does not cancel the others). The task is
    forgotten when it finishes; errors are shared like results. A joined answer is used only
    if it is also valid at the joiner's "now" (expirations). Single event loop only.
    """

    def __init__(self, delegate: Dispatcher) -> None:
        self._delegate = delegate
        self._inflight: dict[Hashable, asyncio.Task[DispatchCheckResponse]] = {}

    async def dispatch_check(self, request: DispatchCheckRequest) -> DispatchCheckResponse:
        """Join an identical in-flight evaluation, or start one."""
        key = inflight_key(request)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._delegate.dispatch_check(request))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        else:
            request.scope.stats.deduplicated += 1
        response = await asyncio.shield(task)
        if response.valid_at(request.scope.now):
            return response
        # The leader evaluated at another "now" and an expiration falls in between.
        return await self._delegate.dispatch_check(request)
