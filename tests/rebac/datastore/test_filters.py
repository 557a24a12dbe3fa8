"""RelationshipFilter / SubjectFilter reference semantics."""

from __future__ import annotations

import pytest

from rebac.datastore.filters import ANY_RELATION, RelationshipFilter, SubjectFilter
from rebac.tuples import rel

ANN = rel("document:1#viewer@user:ann")
WILD = rel("document:1#viewer@user:*")
GROUP = rel("document:2#editor@group:eng")
MEMBERS = rel("document:2#editor@group:eng#member")
FOLDER = rel("folder:1#viewer@user:ann")
ALL = [ANN, WILD, GROUP, MEMBERS, FOLDER]


def _matching(flt: RelationshipFilter) -> list[str]:
    return [str(r) for r in ALL if flt.matches(r)]


class TestRelationshipFilter:
    def test_empty_filter_matches_everything(self) -> None:
        """A filter with no fields set matches every relationship."""
        assert _matching(RelationshipFilter()) == [str(r) for r in ALL]

    def test_resource_fields(self) -> None:
        """Type, id batch and relation each restrict the match."""
        assert _matching(RelationshipFilter(resource_type="folder")) == [str(FOLDER)]
        assert _matching(RelationshipFilter(resource_type="document", resource_ids=("2",))) == [
            str(GROUP),
            str(MEMBERS),
        ]
        assert _matching(RelationshipFilter(relation="viewer")) == [str(ANN), str(WILD), str(FOLDER)]
        assert _matching(RelationshipFilter(resource_ids=())) == []

    def test_resource_ids_without_type_match_any_type(self) -> None:
        """Ids alone match that id under every resource type."""
        assert _matching(RelationshipFilter(resource_ids=("1",))) == [str(ANN), str(WILD), str(FOLDER)]

    def test_user_a_filter_never_matches_user_b(self) -> None:
        """A subject id filter for one user excludes another user's relationships."""
        bob = RelationshipFilter(subject=SubjectFilter("user", ids=("bob",)))
        assert _matching(bob) == []


class TestSubjectFilter:
    @pytest.mark.parametrize(
        ("relation", "expected"),
        [
            (None, [GROUP]),
            ("member", [MEMBERS]),
            ("admin", []),
            (ANY_RELATION, [GROUP, MEMBERS]),
        ],
    )
    def test_relation_modes(self, relation: object, expected: list[object]) -> None:
        """None matches plain subjects, a name that subject relation, ANY_RELATION all."""
        flt = RelationshipFilter(subject=SubjectFilter("group", relation=relation))  # type: ignore[arg-type]
        assert _matching(flt) == [str(r) for r in expected]

    def test_default_relation_is_any(self) -> None:
        """A SubjectFilter without relation matches subject sets and plain subjects alike."""
        assert SubjectFilter("group").relation is ANY_RELATION

    def test_wildcard_matched_only_by_star_id(self) -> None:
        """The wildcard row matches ids containing `*`, and no specific id matches it."""
        star = RelationshipFilter(subject=SubjectFilter("user", ids=("*",)))
        ann = RelationshipFilter(subject=SubjectFilter("user", ids=("ann",)))
        assert _matching(star) == [str(WILD)]
        assert _matching(ann) == [str(ANN), str(FOLDER)]

    def test_type_must_match(self) -> None:
        """A subject filter never matches subjects of another type."""
        assert _matching(RelationshipFilter(subject=SubjectFilter("team"))) == []

    def test_filters_are_hashable_values(self) -> None:
        """Filters are frozen and usable as dict keys."""
        assert {RelationshipFilter(resource_type="document"): 1}[RelationshipFilter(resource_type="document")] == 1
