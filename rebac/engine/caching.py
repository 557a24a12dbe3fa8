"""A caching dispatcher: remembers check sub-problem answers per revision (LRU)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from datetime import datetime

from rebac.datastore.protocol import GraphReader
from rebac.engine.dispatch import DispatchCheckRequest, DispatchCheckResponse, Dispatcher
from rebac.engine.keys import check_key

__all__ = ["CachingDispatcher", "walks_graph"]

# The protocol's public members (Reader's included): what the runtime check looks for.
_GRAPH_MEMBERS = tuple(name for name in dir(GraphReader) if not name.startswith("_"))
_GRAPH_CLASSES: dict[type, bool] = {}


def walks_graph(reader: object) -> bool:
    """``isinstance(reader, GraphReader)``, answered from a per-class memo when the class decides it.

    A runtime Protocol check walks the protocol's members on every call (a measurable
    share of a cached check). A class that defines every member itself answers True for
    all its instances, so that is remembered; any other class (e.g. a delegating wrapper
    whose ``__getattr__`` depends on what it wraps) is checked per instance as before.
    """
    cls = type(reader)
    known = _GRAPH_CLASSES.get(cls)
    if known is None:
        known = _GRAPH_CLASSES[cls] = all(hasattr(cls, name) for name in _GRAPH_MEMBERS)
    return known or isinstance(reader, GraphReader)


class CachingDispatcher:
    """Answers repeated sub-problems from memory; forwards the rest to `delegate`.

    - The key includes the revision (see `keys.check_key`), so a new revision never sees
      an old answer.
    - A hit is used only with enough depth left (``depth_remaining >= depth_required``)
      and only if no relationship it read expires or un-expires at the request's "now".
    - Answers that depended on a cycle cut are never stored (they may be incomplete
      when reached by another path).
    - Answers of a request with a private cache namespace (contextual relationships)
      are never stored: they are true for that request only, and keeping them would only
      evict shared answers. In-flight de-duplication still shares them within the request.
    - `max_entries` bounds memory (least recently used evicted); 0 disables caching.

    Each request also keeps its own answers (`RequestScope.memo`), under the same rules
    (depth, no cycle cuts), whether or not the shared cache is on: a folder chain reaches
    ``folder:x#edit`` both through ``view -> edit`` and through ``parent->view``, and
    without it a cold check would evaluate such nodes once per path (quadratic in depth).
    The memo lives and dies with the request: it shares nothing between requests, so a
    cold check (``max_entries=0``) stays cold.
    """

    def __init__(self, delegate: Dispatcher, *, max_entries: int = 10_000) -> None:
        self._delegate = delegate
        self._max_entries = max_entries
        self._entries: OrderedDict[Hashable, DispatchCheckResponse] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every stored answer."""
        self._entries.clear()

    def peek(self, request: DispatchCheckRequest) -> bool:
        """True if a stored answer would serve `request` now (nothing is counted or moved)."""
        if self._max_entries <= 0 or request.scope.cache_namespace is not None:
            return False
        return self._usable(check_key(request), request.depth_remaining, request.scope.now) is not None

    def lookup(self, key: Hashable, depth_remaining: int, now: datetime) -> DispatchCheckResponse | None:
        """The stored answer under `key` (see `keys.key_of`), if it serves this depth and "now".

        None otherwise. The caller counts the hit; this only refreshes the LRU order.
        """
        if self._max_entries <= 0:
            return None
        hit = self._usable(key, depth_remaining, now)
        if hit is not None:
            self._entries.move_to_end(key)
        return hit

    def store(self, request: DispatchCheckRequest, response: DispatchCheckResponse) -> None:
        """Keep `response`, computed for `request` outside the chain, under the chain's rules."""
        self._remember(check_key(request), request, response)

    async def dispatch_check(self, request: DispatchCheckRequest) -> DispatchCheckResponse:
        """A sufficient stored answer, or the delegate's (stored when safe)."""
        scope = request.scope
        stats = scope.stats
        key = check_key(request)
        known = scope.memo.get(key)
        if known is not None and request.depth_remaining >= known.depth_required:
            stats.memo_hits += 1
            return known  # computed at this request's "now": valid by construction
        if self._max_entries > 0 and scope.cache_namespace is None:
            hit = self.lookup(key, request.depth_remaining, scope.now)
            if hit is not None:
                stats.cache_hits += 1
                return hit
            stats.cache_misses += 1
        response = await self._delegate.dispatch_check(request)
        self._remember(key, request, response)
        return response

    def _usable(self, key: Hashable, depth_remaining: int, now: datetime) -> DispatchCheckResponse | None:
        """The stored answer under `key` if it serves `depth_remaining` and `now` (the LRU untouched)."""
        hit = self._entries.get(key)
        if hit is None or depth_remaining < hit.depth_required or not hit.valid_at(now):
            return None
        return hit

    def _remember(
        self, key: Hashable, request: DispatchCheckRequest, response: DispatchCheckResponse
    ) -> None:
        """Store `response` in the shared cache (when on and shareable) and the request's memo.

        Never an answer that depended on a cycle cut; the memo only while valid at the
        request's "now".
        """
        if response.cycle_cut:
            return
        scope = request.scope
        if self._max_entries > 0 and scope.cache_namespace is None:
            self._entries[key] = response
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        if response.valid_at(scope.now):
            scope.memo[key] = response
