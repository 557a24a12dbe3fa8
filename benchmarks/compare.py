"""Ask a query sample of any answerer (SpiceDB, later rebac) and compare with the reference.

Any difference is a `Mismatch` naming the query, the expected and the actual answer;
`AnswerMismatchError` carries them all and is what a run raises: wrong answers fail loudly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from benchmarks.queries import QuerySample

__all__ = ["AnswerMismatchError", "Answerer", "Mismatch", "compare_sample", "require_agreement"]


class Answerer(Protocol):
    """**Protocol:** Something that answers Check and lookups synchronously (a peer, a client)."""

    def check(
        self, resource_type: str, resource_id: str, permission: str, subject_type: str, subject_id: str
    ) -> bool:
        """Whether the subject has the permission; raises rather than guessing."""
        ...

    def lookup_resources(
        self, resource_type: str, permission: str, subject_type: str, subject_id: str
    ) -> list[str]:
        """Sorted ids of the resources the subject reaches."""
        ...

    def lookup_subjects(
        self, resource_type: str, resource_id: str, permission: str, subject_type: str
    ) -> list[str]:
        """Sorted ids of the subjects holding the permission (``*`` for a wildcard)."""
        ...


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One query whose answer differs from the reference."""

    answerer: str
    query: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.answerer}: {self.query}: expected {self.expected}, got {self.actual}"


class AnswerMismatchError(AssertionError):
    """An answerer disagreed with the reference; the message lists every differing query."""

    def __init__(self, mismatches: list[Mismatch]) -> None:
        self.mismatches = mismatches
        lines = "\n  ".join(str(m) for m in mismatches[:50])
        more = f"\n  ... and {len(mismatches) - 50} more" if len(mismatches) > 50 else ""
        super().__init__(f"{len(mismatches)} answer(s) differ from the reference:\n  {lines}{more}")


def _describe(ids: list[str] | tuple[str, ...]) -> str:
    shown = ", ".join(ids[:5])
    return f"{len(ids)} ids [{shown}{', ...' if len(ids) > 5 else ''}]"


def _diff(expected: tuple[str, ...], actual: list[str]) -> str:
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    return f"{_describe(actual)}; missing {_describe(missing)}; unexpected {_describe(extra)}"


def compare_sample(name: str, answerer: Answerer, sample: QuerySample) -> Iterator[Mismatch]:
    """Ask every query of `sample` and yield a Mismatch for each differing answer, in sample order.

    Errors raised by the answerer propagate: an error is never an answer.
    """
    for q in sample.checks:
        got = answerer.check(q.resource_type, q.resource_id, q.permission, q.subject_type, q.subject_id)
        if got != q.expected:
            yield Mismatch(name, str(q), str(q.expected), str(got))
    for lr in sample.lookup_resources:
        ids = answerer.lookup_resources(lr.resource_type, lr.permission, lr.subject_type, lr.subject_id)
        if tuple(ids) != lr.expected:
            yield Mismatch(name, str(lr), _describe(lr.expected), _diff(lr.expected, ids))
    for ls in sample.lookup_subjects:
        ids = answerer.lookup_subjects(ls.resource_type, ls.resource_id, ls.permission, ls.subject_type)
        if tuple(ids) != ls.expected:
            yield Mismatch(name, str(ls), _describe(ls.expected), _diff(ls.expected, ids))


def require_agreement(name: str, answerer: Answerer, sample: QuerySample) -> int:
    """Ask the whole sample; return how many queries agreed, or raise AnswerMismatchError."""
    mismatches = list(compare_sample(name, answerer, sample))
    if mismatches:
        raise AnswerMismatchError(mismatches)
    return len(sample)
