"""PostgresRevision and PgSnapshot: parsing, normalization, visibility and the partial order."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebac.datastore.memory import MemoryRevision
from rebac.datastore.postgres.revisions import PgSnapshot, PostgresRevision
from rebac.errors import InvalidRevisionError


def visible_set(s: PgSnapshot, upto: int) -> frozenset[int]:
    return frozenset(x for x in range(1, upto) if s.visible(x))


@st.composite
def snapshots(draw: st.DrawFn) -> PgSnapshot:
    xmin = draw(st.integers(1, 12))
    xmax = draw(st.integers(xmin, 14))
    xip = (
        sorted(draw(st.sets(st.integers(xmin, max(xmin, xmax - 1)), max_size=4)) - {xmax})
        if xmax > xmin
        else []
    )
    return PgSnapshot.parse(f"{xmin}:{xmax}:{','.join(map(str, xip))}")


class TestPgSnapshot:
    def test_parse_and_format_round_trip(self) -> None:
        """A normalized snapshot prints as PostgreSQL's text and parses back equal."""
        snap = PgSnapshot.parse("10:20:10,15")
        assert str(snap) == "10:20:10,15"
        assert PgSnapshot.parse(str(snap)) == snap

    def test_parse_normalizes_xmin_to_first_running_xid(self) -> None:
        """xmin below the first running xid (PostgreSQL's own-xid case) is raised to it."""
        assert PgSnapshot.parse("5:20:15") == PgSnapshot(15, 20, (15,))
        assert PgSnapshot.parse("5:20:") == PgSnapshot(20, 20, ())

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "1:2",
            "a:b:",
            "3:2:",
            "0:5:",
            "5:9:4",
            "5:9:9",
            "5:9:7,6",
            "5:9:6,6",
            "1:2:3:4",
            " 1:2:",
            "1:99999999999999999999999:",
        ],
    )
    def test_malformed_snapshots_are_invalid_revisions(self, text: str) -> None:
        """Garbage, unordered, duplicate or out-of-range xip lists raise InvalidRevisionError."""
        with pytest.raises(InvalidRevisionError):
            PgSnapshot.parse(text)

    def test_visibility(self) -> None:
        """An xid is visible below xmax unless it is still running."""
        snap = PgSnapshot.parse("10:20:10,15")
        assert snap.visible(9)
        assert not snap.visible(10)
        assert snap.visible(11)
        assert not snap.visible(15)
        assert not snap.visible(20)

    def test_mark_complete_worked_example(self) -> None:
        """A writer's xid assigned after its snapshot becomes visible; skipped xids stay invisible."""
        marked = PgSnapshot.parse("6:8:6").mark_complete(9)
        assert marked == PgSnapshot(6, 10, (6, 8))
        assert marked.visible(9)
        assert not marked.visible(8)

    def test_mark_complete_of_a_running_xid_removes_it(self) -> None:
        """Marking a listed running xid complete removes it and renormalizes xmin."""
        assert PgSnapshot.parse("6:10:6,8").mark_complete(6) == PgSnapshot(8, 10, (8,))

    @given(snapshots(), snapshots())
    def test_includes_matches_the_visible_sets(self, a: PgSnapshot, b: PgSnapshot) -> None:
        """`includes` is exactly inclusion of the visible xid sets."""
        assert a.includes(b) == (visible_set(b, 20) <= visible_set(a, 20))

    @given(snapshots(), st.integers(1, 16))
    def test_mark_complete_adds_exactly_one_xid(self, s: PgSnapshot, xid: int) -> None:
        """mark_complete(x) sees what the snapshot saw plus x, nothing else."""
        assert visible_set(s.mark_complete(xid), 20) == visible_set(s, 20) | {xid}


class TestPostgresRevision:
    def test_round_trip_with_and_without_xid(self) -> None:
        """str() and parse() round-trip; equality and hash ignore the writer's xid."""
        with_xid = PostgresRevision.parse("6:10:6,8@9")
        assert str(with_xid) == "6:10:6,8@9"
        assert with_xid.xid == 9
        plain = PostgresRevision.parse("6:10:6,8")
        assert plain == with_xid
        assert hash(plain) == hash(with_xid)

    @pytest.mark.parametrize("text", ["6:10:6,8@", "6:10:6,8@x", "6:10:6,8@8", "6:10:6,8@10", "@9"])
    def test_bad_xid_is_invalid(self, text: str) -> None:
        """A writer xid that is malformed or not visible in its own snapshot is rejected."""
        with pytest.raises(InvalidRevisionError):
            PostgresRevision.parse(text)

    def test_concurrent_writers_are_unordered(self) -> None:
        """Two writers that did not see each other give revisions neither greater than the other."""
        base = PgSnapshot.parse("10:10:")
        first = PostgresRevision(base.mark_complete(10), 10)
        second = PostgresRevision(base.mark_complete(11), 11)
        assert not first.greater_than(second)
        assert not second.greater_than(first)
        both = PostgresRevision(PgSnapshot.parse("12:12:"))
        assert both.greater_than(first)
        assert both.greater_than(second)
        assert not first.greater_than(both)

    def test_equal_revisions_are_not_greater(self) -> None:
        """greater_than is strict."""
        rev = PostgresRevision.parse("6:10:6,8")
        assert not rev.greater_than(PostgresRevision.parse("6:10:6,8@9"))

    def test_comparing_with_another_datastore_revision_is_invalid(self) -> None:
        """A memory revision cannot be compared with a postgres one."""
        with pytest.raises(InvalidRevisionError):
            PostgresRevision.parse("6:10:6,8").greater_than(MemoryRevision(3))

    def test_order_is_transitive_on_a_chain(self) -> None:
        """Successive marks form a chain that greater_than orders totally."""
        chain = [PostgresRevision(PgSnapshot.parse("5:5:"))]
        for xid in (5, 7, 6, 9):
            chain.append(PostgresRevision(chain[-1].snapshot.mark_complete(xid), xid))
        for (i, a), (j, b) in itertools.product(enumerate(chain), repeat=2):
            assert a.greater_than(b) == (i > j)
