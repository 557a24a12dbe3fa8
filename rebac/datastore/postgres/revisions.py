r"""Postgres revisions: a pg_snapshot, optionally with the xid of the write that made it.

A `PgSnapshot` is PostgreSQL's ``xmin:xmax:xip1,xip2`` value. Transaction id ``x`` is
*visible* in a snapshot when ``x < xmax`` and ``x`` is not in ``xip`` (every xid below
``xmin`` is finished, and ``xip`` lists the ones still running in ``[xmin, xmax)``). The
visible set of a snapshot is therefore ``[0, xmax) \\ xip``, and two snapshots compare by
inclusion of those sets: a partial order, since concurrent writers give snapshots that each
see a transaction the other does not.

Text form (inside the opaque client token): ``xmin:xmax:xip,...`` optionally followed by
``@xid`` for the revision of a write. Equality and hashing use only the snapshot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Self

from rebac.errors import InvalidRevisionError
from rebac.revision import Revision

__all__ = ["PgSnapshot", "PostgresRevision"]

_SNAPSHOT_RE = re.compile(r"(\d{1,20}):(\d{1,20}):((?:\d{1,20}(?:,\d{1,20})*)?)")
_MAX_XID8 = 2**64 - 1


_MAX_TEXTS = 1024
_TEXTS: dict[PgSnapshot, str] = {}
"""`str(snapshot)` by snapshot (equal snapshots have equal text); cleared when full."""


@dataclass(frozen=True, slots=True)
class PgSnapshot:
    """A PostgreSQL snapshot; `xip` is sorted, unique, and inside ``[xmin, xmax)``.

    Instances built by `parse` and `mark_complete` are normalized (xmin is the first running
    xid, or xmax when none runs), so equal visible sets give equal values and hashes.
    """

    xmin: int
    xmax: int
    xip: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse ``xmin:xmax:xip,...``; InvalidRevisionError naming the problem."""
        match = _SNAPSHOT_RE.fullmatch(text)
        if match is None:
            raise InvalidRevisionError(f"malformed postgres snapshot {text!r}", field="revision")
        xmin, xmax = int(match.group(1)), int(match.group(2))
        xip = tuple(int(x) for x in match.group(3).split(",")) if match.group(3) else ()
        if not 0 < xmin <= xmax <= _MAX_XID8:
            raise InvalidRevisionError(f"snapshot {text!r} needs 0 < xmin <= xmax", field="revision")
        if list(xip) != sorted(set(xip)) or any(not xmin <= x < xmax for x in xip):
            raise InvalidRevisionError(
                f"snapshot {text!r}: in-progress xids must be sorted, unique and in [xmin, xmax)",
                field="revision",
            )
        # PostgreSQL may report an xmin below the first running xid (its own, excluded from
        # xip); xmin does not change visibility, so normalize it to make equal snapshots equal.
        return cls(xip[0] if xip else xmax, xmax, xip)

    def __str__(self) -> str:
        # Formatted once per snapshot: every query and token of a request sends the text.
        text = _TEXTS.get(self)
        if text is None:
            text = f"{self.xmin}:{self.xmax}:{','.join(map(str, self.xip))}"
            if len(_TEXTS) >= _MAX_TEXTS:
                _TEXTS.clear()
            _TEXTS[self] = text
        return text

    def visible(self, xid: int) -> bool:
        """True if transaction `xid` had committed (or aborted) when the snapshot was taken."""
        return xid < self.xmax and xid not in self.xip

    def mark_complete(self, xid: int) -> PgSnapshot:
        """The revision of write transaction `xid` that started with this snapshot.

        That is this snapshot plus `xid`. Worked example: a writer whose snapshot is
        ``6:8:6`` gets xid 9 (assigned after the snapshot). Its revision must see 9 but not
        8, which was unassigned then and may belong to a transaction this writer never saw:
        ``6:10:6,8``.
        """
        if xid < self.xmin:
            return self
        if xid >= self.xmax:
            xip = (*self.xip, *range(self.xmax, xid))
            return _normalized(xid + 1, xip)
        return _normalized(self.xmax, tuple(x for x in self.xip if x != xid))

    def includes(self, other: PgSnapshot) -> bool:
        """True if every xid visible in `other` is visible in this snapshot."""
        # visible(S) = [0, S.xmax) minus S.xip. visible(other) ⊆ visible(self) needs
        # (a) every xid in [self.xmax, other.xmax) to be invisible to other (so in other.xip),
        # (b) every xid this snapshot still runs below other.xmax to be running for other too.
        if other.xmax > self.xmax:
            other_xip = set(other.xip)
            if other.xmax - self.xmax > len(other_xip):
                return False
            if any(x not in other_xip for x in range(self.xmax, other.xmax)):
                return False
        other_running = set(other.xip)
        return all(x in other_running for x in self.xip if x < other.xmax)

    def same_visibility(self, other: PgSnapshot) -> bool:
        """True if both snapshots see exactly the same transactions."""
        return self.includes(other) and other.includes(self)


def _normalized(xmax: int, xip: tuple[int, ...]) -> PgSnapshot:
    # xmin is the oldest running xid; once the running list no longer starts at xmin,
    # raise xmin to its first element (or xmax) so equal visible sets compare equal.
    return PgSnapshot(xip[0] if xip else xmax, xmax, xip)


@dataclass(frozen=True, slots=True)
class PostgresRevision:
    """A revision of the Postgres datastore: a snapshot (+ the writer's xid, if any).

    Hashable and safe to share. Equality and hashing ignore `xid`: two revisions that see
    the same transactions are the same revision.
    """

    snapshot: PgSnapshot
    xid: int | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse `str(revision)`; InvalidRevisionError if malformed."""
        snapshot_text, at, xid_text = text.partition("@")
        snapshot = PgSnapshot.parse(snapshot_text)
        xid: int | None = None
        if at:
            if not xid_text.isdigit() or len(xid_text) > 20:
                raise InvalidRevisionError(f"malformed revision xid in {text!r}", field="revision")
            xid = int(xid_text)
            if not snapshot.visible(xid):
                raise InvalidRevisionError(
                    f"revision {text!r}: the write's xid is not visible in its snapshot",
                    field="revision",
                )
        return cls(snapshot, xid)

    def __str__(self) -> str:
        return f"{self.snapshot}@{self.xid}" if self.xid is not None else str(self.snapshot)

    def greater_than(self, other: Revision) -> bool:
        """True if this revision sees everything `other` sees, and more.

        InvalidRevisionError if `other` is not a Postgres revision.
        """
        if not isinstance(other, PostgresRevision):
            raise InvalidRevisionError(
                f"cannot compare a postgres revision with {type(other).__name__}", field="revision"
            )
        return self.snapshot.includes(other.snapshot) and not other.snapshot.includes(self.snapshot)

    def sees(self, xid: int) -> bool:
        """True if transaction `xid` is part of this revision."""
        return self.snapshot.visible(xid)
