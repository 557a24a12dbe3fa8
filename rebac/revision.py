"""Revisions, the consistency choices that pick one, and opaque revision tokens.

A revision names one snapshot of a datastore. Each datastore has its own concrete
revision type (an integer for memory; an xid8 plus a pg_snapshot for Postgres); the
engine only compares and carries them. Tokens handed to clients are opaque, versioned
strings: ``encode_token(revision)`` / ``decode_token(token) -> str`` around the
datastore's own ``str(revision)`` / ``revision_from_string``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

from rebac.errors import InvalidRevisionError

__all__ = [
    "AtExactSnapshot",
    "AtLeastAsFresh",
    "Consistency",
    "FullyConsistent",
    "MinimizeLatency",
    "Revision",
    "decode_token",
    "encode_token",
]

_TOKEN_VERSION = 1


@runtime_checkable
class Revision(Protocol):
    """**Protocol:** one snapshot of a datastore; hashable and comparable within one datastore.

    `str(revision)` is the datastore's stable text form, parsed back by its
    `revision_from_string`. `greater_than` is a partial order: two concurrent Postgres
    snapshots may be unordered (neither greater).
    """

    def __str__(self) -> str: ...

    def __hash__(self) -> int: ...

    def __eq__(self, other: object) -> bool: ...

    def greater_than(self, other: Revision) -> bool:
        """True if this snapshot sees everything `other` sees, and more."""
        ...


def encode_token(revision: Revision) -> str:
    """An opaque, versioned, URL-safe token for `revision`."""
    last = _LAST_TOKEN[0]
    if last is not None and last[0] is revision:
        return last[1]  # the same revision object as the previous request (a quantized read)
    payload = json.dumps({"v": _TOKEN_VERSION, "r": str(revision)}, separators=(",", ":"))
    token = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    # Holding the revision keeps its identity from being reused by another object.
    _LAST_TOKEN[0] = (revision, token)
    return token


_LAST_TOKEN: list[tuple[Revision, str] | None] = [None]
"""The last revision encoded (held, so `is` cannot match a new object) and its token."""


def decode_token(token: str) -> str:
    """The datastore revision text inside a token; InvalidRevisionError if it is malformed."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidRevisionError("malformed revision token", field="token") from None
    if not isinstance(payload, dict) or payload.get("v") != _TOKEN_VERSION:
        raise InvalidRevisionError("unsupported revision token version", field="token")
    revision = payload.get("r")
    if not isinstance(revision, str) or not revision:
        raise InvalidRevisionError("malformed revision token", field="token")
    return revision


@dataclass(frozen=True, slots=True)
class MinimizeLatency:
    """Read at the optimized (quantized, cache-friendly) revision. The default."""


@dataclass(frozen=True, slots=True)
class AtLeastAsFresh:
    """Read at a revision at least as fresh as the token's (e.g. the token of your write)."""

    token: str


@dataclass(frozen=True, slots=True)
class AtExactSnapshot:
    """Read exactly at the token's revision (OUT_OF_RANGE once garbage-collected)."""

    token: str


@dataclass(frozen=True, slots=True)
class FullyConsistent:
    """Read at the head revision: sees every committed write, costs cache hits."""


Consistency: TypeAlias = MinimizeLatency | AtLeastAsFresh | AtExactSnapshot | FullyConsistent
"""How a read request chooses its revision."""
