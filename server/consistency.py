"""The only place a request's revision is chosen.

`resolve_revision` turns a Consistency (already converted from proto) into one revision
of the datastore; servicers carry that revision explicitly to the engine and return it
to the client as a token.
"""

from __future__ import annotations

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

__all__ = ["resolve_revision", "revision_from_token"]


def revision_from_token(token: str, datastore: Datastore) -> Revision:
    """The datastore revision named by an opaque token; InvalidRevisionError if malformed."""
    return datastore.revision_from_string(decode_token(token))


async def resolve_revision(consistency: Consistency, datastore: Datastore) -> Revision:
    """Choose the revision a read is evaluated at.

    - minimize_latency: the optimized (quantized) revision;
    - at_least_as_fresh: the newer of the token's and the optimized revision; when
      neither is greater (concurrent Postgres snapshots), the head revision;
    - at_exact_snapshot: the token's revision (StaleRevisionError once collected);
    - fully_consistent: the head revision.

    Tokens are validated with `check_revision` (InvalidRevisionError for a token from the
    future or another datastore).
    """
    match consistency:
        case MinimizeLatency():
            return await datastore.optimized_revision()
        case FullyConsistent():
            return await datastore.head_revision()
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
            return await datastore.head_revision()
        case _:
            assert_never(consistency)
