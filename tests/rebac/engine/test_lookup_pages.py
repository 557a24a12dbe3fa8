"""LookupResources in pages (`Engine.lookup_resource_pages`): the same results as one by one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rebac.engine import Engine
from rebac.engine.cursor import cursor_encoder
from rebac.engine.lookup_resources import ResourcePage, resource_pages
from rebac.engine.requests import CheckResult, Permissionship
from rebac.errors import CaveatEvaluationError, InvalidRequestError
from rebac.testing import memory_datastore
from rebac.tuples import SubjectRef

YES = CheckResult(Permissionship.HAS_PERMISSION)
NO = CheckResult(Permissionship.NO_PERMISSION)
MAYBE = CheckResult(Permissionship.CONDITIONAL, ("day",))
CURSOR = cursor_encoder("lookup_resources")

SCHEMA = """
definition user {}
caveat on_weekday(day string) { day != "sat" && day != "sun" }
definition doc {
  relation viewer: user | user with on_weekday
  relation banned: user
  permission view = viewer - banned
  permission read = viewer
}
"""


def _pages(
    ids: list[str], definite: set[str], verdicts: dict[str, CheckResult], **kw: int | None
) -> Iterator[ResourcePage]:
    return resource_pages(
        ids, frozenset(definite), verdicts.__getitem__, CURSOR, limit=kw.get("limit"), size=kw["size"] or 1
    )


class TestResourcePages:
    def test_definite_ids_are_sliced(self) -> None:
        """All proven: pages are slices of the ids, the limit cuts the last, each cursor follows its page."""
        ids = ["a", "b", "c", "d", "e"]
        pages = list(_pages(ids, set(ids), {}, size=2, limit=None))
        assert [p.ids for p in pages] == [("a", "b"), ("c", "d"), ("e",)]
        assert [p.cursor for p in pages] == [CURSOR("b"), CURSOR("d"), CURSOR("e")]
        assert [p.ids for p in _pages(ids, set(ids), {}, size=2, limit=3)] == [("a", "b"), ("c",)]
        assert list(_pages([], set(), {}, size=2, limit=None)) == []

    def test_checked_ids_drop_no_and_mark_conditional(self) -> None:
        """NO_PERMISSION is dropped (and not counted by the limit); CONDITIONAL carries its missing context."""
        verdicts = {"b": NO, "c": MAYBE, "e": YES, "f": NO, "g": MAYBE}
        ids = ["a", "b", "c", "d", "e", "f", "g"]
        pages = list(_pages(ids, {"a", "d"}, verdicts, size=2, limit=None))
        assert [p.ids for p in pages] == [("a", "c"), ("d", "e"), ("g",)]
        assert [dict(p.conditional) for p in pages] == [{"c": ("day",)}, {}, {"g": ("day",)}]
        assert [p.cursor for p in pages] == [CURSOR("c"), CURSOR("e"), CURSOR("g")]
        limited = list(_pages(ids, {"a", "d"}, verdicts, size=10, limit=3))
        assert [p.ids for p in limited] == [("a", "c", "d")]

    def test_a_failing_verdict_comes_after_the_pages_before_it(self) -> None:
        """Pages are built lazily: the pages before a verdict that raises are produced first."""

        def verdict(rid: str) -> CheckResult:
            if rid == "d":
                raise CaveatEvaluationError("boom")
            return YES

        pages = resource_pages(["a", "b", "c", "d"], frozenset(), verdict, CURSOR, limit=None, size=2)
        assert next(pages).ids == ("a", "b")
        with pytest.raises(CaveatEvaluationError):
            next(pages)


class TestEngineLookupResourcePages:
    @pytest.mark.parametrize("size", [1, 2, 3, 1000])
    async def test_pages_equal_single_results(self, size: int) -> None:
        """For every page size, limit and cursor: the same results, and each page's cursor is its last result's."""
        rows = [f"doc:d{i}#viewer@user:ann" for i in range(7)]
        rows += ["doc:d3#banned@user:ann", "doc:c1#viewer@user:ann[on_weekday]", "doc:x#viewer@user:bob"]
        ds, rev = await memory_datastore(SCHEMA, rows)
        reader, engine, ann = ds.snapshot_reader(rev), Engine(), SubjectRef("user", "ann")
        for permission in ("view", "read"):
            for limit in (None, 1, 4):
                for cursor in (None, CURSOR("d2")):
                    kw = {"limit": limit, "cursor": cursor}
                    single = [f async for f in engine.lookup_resources(reader, "doc", permission, ann, **kw)]
                    pages = [
                        p
                        async for p in engine.lookup_resource_pages(
                            reader, "doc", permission, ann, page_size=size, **kw
                        )
                    ]
                    assert [rid for p in pages for rid in p.ids] == [f.resource_id for f in single]
                    assert all(0 < len(p.ids) <= size for p in pages)
                    ends = [single[i].cursor for i in range(size - 1, len(single), size)]
                    if len(single) % size:
                        ends.append(single[-1].cursor)
                    assert [p.cursor for p in pages] == ends
                    assert {rid: m for p in pages for rid, m in p.conditional.items()} == {
                        f.resource_id: f.missing_context
                        for f in single
                        if f.permissionship is Permissionship.CONDITIONAL
                    }

    async def test_page_size_must_be_positive(self) -> None:
        """A page size below 1 is an invalid request."""
        ds, rev = await memory_datastore(SCHEMA, [])
        with pytest.raises(InvalidRequestError):
            _ = [
                p
                async for p in Engine().lookup_resource_pages(
                    ds.snapshot_reader(rev), "doc", "view", SubjectRef("user", "a"), page_size=0
                )
            ]
