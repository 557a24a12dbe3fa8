"""Opaque lookup cursors: where a paginated lookup stream resumes."""

from __future__ import annotations

import base64
import binascii
import json

from rebac.errors import InvalidRequestError

__all__ = ["decode_cursor", "encode_cursor"]

_VERSION = 1


def encode_cursor(kind: str, after: str) -> str:
    """A cursor resuming a `kind` lookup strictly after the result sorting as `after`."""
    payload = json.dumps({"v": _VERSION, "k": kind, "a": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> str | None:
    """The position inside `cursor` (None for no cursor); InvalidRequestError if malformed."""
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidRequestError("malformed cursor", field="cursor") from None
    if not isinstance(payload, dict) or payload.get("v") != _VERSION or payload.get("k") != kind:
        raise InvalidRequestError(f"cursor does not belong to a {kind} lookup", field="cursor")
    after = payload.get("a")
    if not isinstance(after, str):
        raise InvalidRequestError("malformed cursor", field="cursor")
    return after
