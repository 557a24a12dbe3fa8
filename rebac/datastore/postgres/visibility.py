"""Row visibility at a revision, as one SQL predicate shared by every read statement."""

from __future__ import annotations

__all__ = ["LIVE_AT"]

LIVE_AT = (
    "pg_visible_in_snapshot(created_xid, $1::text::pg_snapshot) "
    "AND NOT pg_visible_in_snapshot(deleted_xid, $1::text::pg_snapshot)"
)
"""SQL predicate: the row is live at the snapshot given as parameter $1."""
