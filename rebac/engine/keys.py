"""Stable keys for check sub-problems, shared by the cache and in-flight de-duplication.

A key holds everything that decides the answer: the revision (which also fixes the
schema), the cache namespace (private per request with contextual relationships), the
resource type, ids and relation, and the subject. Depth, path and "now" are *not* in the
cache key; the cache checks them against what the stored answer needed instead.
"""

from __future__ import annotations

from collections.abc import Hashable

from rebac.engine.dispatch import CheckKeyPrefix, DispatchCheckRequest
from rebac.tuples import SubjectRef

__all__ = ["check_key", "inflight_key", "key_of"]


def check_key(request: DispatchCheckRequest) -> Hashable:
    """The cache key of a check sub-problem."""
    return key_of(
        request.scope.key_prefix,
        request.resource_type,
        request.resource_ids,
        request.relation,
        request.subject,
    )


def key_of(
    prefix: CheckKeyPrefix,
    resource_type: str,
    resource_ids: tuple[str, ...],
    relation: str,
    subject: SubjectRef,
) -> Hashable:
    """`check_key` from its parts, for a caller that has no request object yet."""
    return (
        "check",
        # The revision and the namespace object itself, not id(): an id is reused once its
        # object dies, which would let a later request read answers computed with another
        # request's contextual relationships. Hashed once per request (`CheckKeyPrefix`).
        prefix,
        resource_type,
        resource_ids,
        relation,
        (subject.type, subject.id, subject.relation),
    )


def inflight_key(request: DispatchCheckRequest) -> Hashable:
    """The de-duplication key: the cache key plus depth and path.

    Waiting only on an identical request (same path) keeps waits acyclic: a request's own
    sub-problems always carry a longer path, so no task can end up waiting on itself.
    """
    return (check_key(request), request.depth_remaining, request.path)
