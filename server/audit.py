"""The audit log: one JSON line per authorization decision and per write.

Fields: ``ts`` (UTC ISO time), ``request_id``, ``key_id``, ``rpc``, ``resource``,
``permission``, ``subject``, ``result``, ``revision`` (the token evaluated at or written),
``duration_ms``, and per-RPC extras (``count`` of updates or results). Keys and caveat
context never appear: only the key's id is logged. Each line is written with a single
``write`` on a line-buffered append stream, so lines from several worker processes
appending to one file do not interleave.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from rebac_server.request_context import current_request

__all__ = ["AuditLog"]


class AuditLog:
    """Writes audit records to a text stream; `AuditLog(None)` discards them."""

    def __init__(self, stream: TextIO | None, *, owns_stream: bool = False) -> None:
        self._stream = stream
        self._owns_stream = owns_stream

    @classmethod
    def open(cls, target: str | None) -> AuditLog:
        """``-`` → stderr; a path → append to that file (created); None → disabled."""
        if target is None:
            return cls(None)
        if target == "-":
            return cls(sys.stderr)
        path = Path(target).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(path.open("a", buffering=1, encoding="utf-8"), owns_stream=True)

    @property
    def enabled(self) -> bool:
        """False if records are discarded (callers may skip building them)."""
        return self._stream is not None

    def record(
        self,
        *,
        result: str,
        resource: str | None = None,
        permission: str | None = None,
        subject: str | None = None,
        revision: str | None = None,
        **extra: Any,
    ) -> None:
        """Write one line for the current request (request id, key id, RPC from the context)."""
        if self._stream is None:
            return
        info = current_request()
        line: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request_id": info.request_id if info else None,
            "key_id": info.key_id if info else None,
            "rpc": info.method.rsplit("/", 1)[-1] if info else None,
            "resource": resource,
            "permission": permission,
            "subject": subject,
            "result": result,
            "revision": revision,
            "duration_ms": round(info.elapsed_ms, 3) if info else None,
        }
        line.update(extra)
        self._stream.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")

    def close(self) -> None:
        """Close the file this log opened (never stderr)."""
        if self._owns_stream and self._stream is not None:
            self._stream.close()
        self._stream = None
