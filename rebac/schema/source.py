"""Source texts and the mapping from character offsets to line:column positions."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from rebac.errors import SourcePosition

__all__ = ["Source", "SourcePosition"]


@dataclass(frozen=True)
class Source:
    r"""A named schema text. `position(offset)` maps a 0-based character offset to 1-based line:column.

    Line breaks are ``\\n`` (a ``\\r`` before it counts as a character of the line).
    """

    text: str
    name: str = "schema"
    _line_starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts = [0]
        find = self.text.find
        index = find("\n")
        while index >= 0:
            starts.append(index + 1)
            index = find("\n", index + 1)
        object.__setattr__(self, "_line_starts", tuple(starts))

    def position(self, offset: int) -> SourcePosition:
        """The line:column of `offset` (clamped to the text's bounds)."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return SourcePosition(line + 1, offset - self._line_starts[line] + 1)
