"""Stream cursors that pin the revision a stream was evaluated at.

A cursor is opaque to clients: a versioned, URL-safe encoding of the revision token and
the position inside the stream (an engine cursor or a relationship's canonical text).
A request that carries a cursor is read at the cursor's revision, so a resumed stream
continues exactly where it stopped, whatever `consistency` the request names.

Two forms decode to the same `StreamCursor`: base64 JSON (any position) and, for positions
that are themselves URL-safe cursors (the engine's lookup cursors), the concatenation
``2.<token>.<position>`` (`stream_cursor_prefix`), which a stream of many results mints
by string concatenation instead of serializing a document per result.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from rebac.errors import InvalidRevisionError

__all__ = ["StreamCursor", "decode_cursor", "encode_cursor", "stream_cursor_prefix"]

_VERSION = 1
_CONCAT_TAG = "2"
_URL_SAFE = re.compile(r"[A-Za-z0-9_.\-]+")


@dataclass(frozen=True, slots=True)
class StreamCursor:
    """The revision token a stream reads at and the position to resume after."""

    token: str
    position: str


def encode_cursor(cursor: StreamCursor) -> str:
    """The opaque text of `cursor`."""
    payload = json.dumps({"v": _VERSION, "t": cursor.token, "p": cursor.position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def stream_cursor_prefix(token: str) -> str:
    """What a cursor at revision `token` starts with; a URL-safe position follows it.

    `stream_cursor_prefix(t) + p` decodes to `StreamCursor(t, p)` when `p` uses only
    URL-safe base64 characters and dots (as engine lookup cursors do).
    """
    return f"{_CONCAT_TAG}.{token}."


def decode_cursor(text: str, *, field: str = "optional_cursor") -> StreamCursor:
    """Parse `encode_cursor` or prefix-form text; InvalidRevisionError naming `field` if malformed."""
    if text.startswith(_CONCAT_TAG + "."):
        token, _, position = text[len(_CONCAT_TAG) + 1 :].partition(".")
        if not token or not position or not _URL_SAFE.fullmatch(text):
            raise InvalidRevisionError(f"{field}: malformed cursor", field=field)
        return StreamCursor(token, position)
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
