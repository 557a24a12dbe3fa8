"""Opaque lookup cursors: where a paginated lookup stream resumes.

A cursor names the kind of lookup and the sort key of the result it follows:
``<kind>.<urlsafe base64 of the key, unpadded>``. The form is a fixed prefix plus the
encoded key so that a stream of results can mint cursors by concatenation
(`cursor_encoder`, well under a microsecond each) instead of serializing a document per
result. Version 1 cursors (base64 JSON, no dot) are still accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable

from rebac.errors import InvalidRequestError

__all__ = ["cursor_encoder", "cursor_prefix", "decode_cursor", "encode_cursor"]

_V1 = 1
# b64decode(validate=True) rejects stray characters, which urlsafe_b64decode would drop.
_TO_STANDARD_ALPHABET = str.maketrans("-_", "+/")


def cursor_prefix(kind: str) -> str:
    """The text every `kind` cursor starts with; the encoded sort key follows it."""
    return f"{kind}."


def _encode_key(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode()).decode().rstrip("=")


def encode_cursor(kind: str, after: str) -> str:
    """A cursor resuming a `kind` lookup strictly after the result sorting as `after`."""
    return cursor_prefix(kind) + _encode_key(after)


def cursor_encoder(kind: str, *, prefix: str = "") -> Callable[[str], str]:
    """`after -> prefix + encode_cursor(kind, after)`, with the constant part built once.

    `prefix` lets a transport wrap engine cursors (e.g. with the revision they pin) at
    the same per-result cost.
    """
    start = prefix + cursor_prefix(kind)

    def encode(after: str) -> str:
        return start + base64.urlsafe_b64encode(after.encode()).decode().rstrip("=")

    return encode


def decode_cursor(kind: str, cursor: str | None) -> str | None:
    """The position inside `cursor` (None for no cursor); InvalidRequestError if malformed."""
    if cursor is None or cursor == "":
        return None
    tag, dot, encoded = cursor.partition(".")
    if not dot:
        return _decode_v1(kind, cursor)
    if tag != kind:
        raise InvalidRequestError(f"cursor does not belong to a {kind} lookup", field="cursor")
    try:
        padded = (encoded + "=" * (-len(encoded) % 4)).translate(_TO_STANDARD_ALPHABET)
        after = base64.b64decode(padded.encode("ascii"), validate=True).decode()
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidRequestError("malformed cursor", field="cursor") from None
    if not after:
        raise InvalidRequestError("malformed cursor", field="cursor")
    return after


def _decode_v1(kind: str, cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidRequestError("malformed cursor", field="cursor") from None
    if not isinstance(payload, dict) or payload.get("v") != _V1 or payload.get("k") != kind:
        raise InvalidRequestError(f"cursor does not belong to a {kind} lookup", field="cursor")
    after = payload.get("a")
    if not isinstance(after, str):
        raise InvalidRequestError("malformed cursor", field="cursor")
    return after
