"""The Dispatcher seam: how check recurses, and the request/response types that travel on it.

The checker never calls itself: every sub-problem (a relation or permission on a batch of
resource ids of one type) goes to the head of the dispatcher chain, which the Engine puts
together once::

    CachingDispatcher -> SingleflightDispatcher -> LocalDispatcher -> Checker
          ^                                                              |
          +--------------------- sub-problems ---------------------------+

so caching, in-flight de-duplication and the depth limit apply at every level. One
exception: a sub-problem on a *relation* (not a permission) is evaluated in place by the
checker, past the cache and de-duplication (its answer is one read or a closure lookup);
the depth limit and the dispatch count still apply to it exactly as here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from rebac.datastore.protocol import Reader
from rebac.engine.membership import EMPTY, MembershipSet
from rebac.engine.stats import EngineStats
from rebac.errors import MaxDepthExceededError
from rebac.revision import Revision
from rebac.schema.definitions import CompiledSchema
from rebac.tuples import SubjectRef

if TYPE_CHECKING:
    from rebac.engine.check import Checker
    from rebac.engine.closure import ClosureResolver
    from rebac.engine.prefetch import PrefetchStore
    from rebac.engine.reachability import Reachability

__all__ = [
    "CheckKeyPrefix",
    "DispatchCheckRequest",
    "DispatchCheckResponse",
    "Dispatcher",
    "LocalDispatcher",
    "NodeKey",
    "RequestScope",
]

NodeKey = tuple[str, str, str]
"""(object type, relation, object id): one node of the relationship graph, used for cycle cuts."""


class CheckKeyPrefix:
    """The revision and cache namespace every check key of a request starts with.

    Hashed once per request: a revision hashes through nested dataclasses, and every
    sub-problem's cache, memo and de-duplication keys include it. Equal when the revisions
    are equal and the namespaces are equal (the same object, or both None).
    """

    __slots__ = ("_hash", "namespace", "revision")

    def __init__(self, revision: Revision, namespace: object | None) -> None:
        self.revision = revision
        self.namespace = namespace
        self._hash = hash((revision, namespace))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CheckKeyPrefix):
            return NotImplemented
        return (
            self._hash == other._hash
            and self.revision == other.revision
            and self.namespace == other.namespace
        )


@dataclass(frozen=True, eq=False)
class RequestScope:
    """Everything one API request shares across its sub-problems (never part of a cache key).

    `cache_namespace` is None when results may be shared with other requests at the same
    revision; a request with contextual relationships gets a private namespace object so
    its results never leak into the shared cache. `prefetch` and `closures` are the fast
    paths (`prefetch.py`, `closure.py`), None when the reader cannot walk the graph in one
    round trip (or carries contextual relationships). `memo` holds this request's own
    sub-problem answers (see `CachingDispatcher`): filled even when the shared cache is
    off, dropped with the request.
    """

    reader: Reader
    schema: CompiledSchema
    reachability: Reachability
    now: datetime
    max_depth: int
    stats: EngineStats
    query_limit: asyncio.Semaphore
    cache_namespace: object | None = None
    prefetch: PrefetchStore | None = None
    closures: ClosureResolver | None = None
    memo: dict[Hashable, DispatchCheckResponse] = field(default_factory=dict)
    key_prefix: CheckKeyPrefix = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_prefix", CheckKeyPrefix(self.reader.revision, self.cache_namespace))

    @property
    def revision(self) -> Revision:
        """The revision every read of this request is made at."""
        return self.reader.revision


@dataclass(frozen=True)
class DispatchCheckRequest:
    """Asks which of `resource_ids` (of `resource_type`) have `relation` for `subject`.

    `resource_ids` is sorted and de-duplicated. `path` holds the graph nodes on the way
    here (only nodes of recursive relations are recorded), shared by all ids of the batch;
    a sub-problem that would revisit a node on its path is cut (treated as empty) and the
    response is marked `cycle_cut` so it is never cached.
    """

    resource_type: str
    resource_ids: tuple[str, ...]
    relation: str
    subject: SubjectRef
    depth_remaining: int
    scope: RequestScope = field(compare=False, repr=False)
    path: frozenset[NodeKey] = frozenset()


@dataclass(frozen=True)
class DispatchCheckResponse:
    """The members found among the requested ids, plus what the caches need to know.

    `depth_required`: dispatch levels used (a cached answer is reused only by a request
    with at least this much depth left). `cycle_cut`: some sub-problem was cut on a cycle,
    so the answer may be incomplete for other paths and must not be cached.
    `valid_from`/`valid_until`: the answer holds for ``valid_from <= now < valid_until``
    (bounds from the expirations of the relationships read; None = unbounded).
    """

    members: MembershipSet = EMPTY
    depth_required: int = 1
    cycle_cut: bool = False
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        """True if the expirations read leave this answer unchanged at `now`."""
        if self.valid_from is not None and now < self.valid_from:
            return False
        return self.valid_until is None or now < self.valid_until


class Dispatcher(Protocol):
    """**Protocol:** resolves one check sub-problem; implementations wrap one another."""

    async def dispatch_check(self, request: DispatchCheckRequest) -> DispatchCheckResponse:
        """Answer `request`; raises RebacError subclasses (never answers on error)."""
        ...


class LocalDispatcher:
    """The end of the chain: enforces the depth limit, then evaluates with the Checker.

    The Checker sends its sub-problems to `head` (the top of the chain), set once by the
    composition root after the chain is built.
    """

    def __init__(self, checker: Checker) -> None:
        self._checker = checker
        self.head: Dispatcher = self

    async def dispatch_check(self, request: DispatchCheckRequest) -> DispatchCheckResponse:
        """Evaluate locally; MaxDepthExceededError when no depth is left."""
        if request.depth_remaining <= 0:
            raise MaxDepthExceededError(request.scope.max_depth)
        request.scope.stats.dispatches += 1
        return await self._checker.check(request, self.head)
