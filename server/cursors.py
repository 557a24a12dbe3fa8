"""Stream cursors that pin the revision a stream was evaluated at.

A cursor is opaque to clients: a versioned, URL-safe encoding of the revision token and
the position inside the stream (an engine cursor or a relationship's canonical text).
A request that carries a cursor is read at the cursor's revision, so a resumed stream
continues exactly where it stopped, whatever `consistency` the request names.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from rebac.errors import InvalidRevisionError

__all__ = ["StreamCursor", "decode_cursor", "encode_cursor"]

_VERSION = 1


@dataclass(frozen=True, slots=True)
class StreamCursor:
    """The revision token a stream reads at and the position to resume after."""

    token: str
    position: str


def encode_cursor(cursor: StreamCursor) -> str:
    """The opaque text of `cursor`."""
    payload = json.dumps({"v": _VERSION, "t": cursor.token, "p": cursor.position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(text: str, *, field: str = "optional_cursor") -> StreamCursor:
    """Parse `encode_cursor` output; InvalidRevisionError naming `field` if malformed."""
    try:
        payload = json.loads(base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidRevisionError(f"{field}: malformed cursor", field=field) from None
    if (
        not isinstance(payload, dict)
        or payload.get("v") != _VERSION
        or not isinstance(payload.get("t"), str)
        or not isinstance(payload.get("p"), str)
    ):
        raise InvalidRevisionError(f"{field}: malformed cursor", field=field)
    return StreamCursor(payload["t"], payload["p"])
