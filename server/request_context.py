"""Per-request facts for logging and audit, carried in contextvars (STYLE A5: only these).

The interceptor sets them when a call starts; the audit log and error logging read them.
Dependencies (datastore, engine) never travel this way.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field

__all__ = ["RequestInfo", "current_request"]


@dataclass(slots=True)
class RequestInfo:
    """Who called what: request id, RPC, the authenticated key id, when it started."""

    request_id: str
    method: str
    key_id: str = "-"
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed_ms(self) -> float:
        """Milliseconds since the call started."""
        return (time.perf_counter() - self.started) * 1000.0


_CURRENT: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar("rebac_request", default=None)


def current_request() -> RequestInfo | None:
    """The request being served by this task, if any."""
    return _CURRENT.get()


def set_current_request(info: RequestInfo) -> contextvars.Token[RequestInfo | None]:
    """Make `info` the current request; reset with the returned token."""
    return _CURRENT.set(info)


def reset_current_request(token: contextvars.Token[RequestInfo | None]) -> None:
    """Undo `set_current_request`."""
    _CURRENT.reset(token)
