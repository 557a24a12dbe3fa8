"""Relationship values and their canonical text form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from rebac.errors import InvalidRelationshipError
from rebac.tuples import (
    WILDCARD,
    ObjectRef,
    Relationship,
    RelationshipCaveat,
    RelationshipUpdate,
    SubjectRef,
    UpdateOperation,
    format_expiration,
    parse_object,
    parse_subject,
    rel,
    validate_object_id,
    validate_object_type,
    validate_relation_name,
)

ROUND_TRIPS = [
    "document:42#viewer@user:ann",
    "document:42#viewer@group:eng#member",
    "document:42#viewer@user:*",
    "tenant/document:x#viewer@tenant/user:y",
    "document:a/b_c|d-e=f+g#viewer@user:Z9",
    "document:1#viewer@user:ann[only_tuesday]",
    'document:1#viewer@user:ann[only_tuesday:{"day":"tue","n":[1,2]}]',
    "document:1#viewer@user:ann[expiration:2030-01-01T00:00:00Z]",
    "document:1#viewer@user:ann[expiration:2030-01-01T00:00:00.250000Z]",
    'document:1#viewer@user:ann[ip_check:{"cidr":"10.0.0.0/8"}][expiration:2030-01-01T00:00:00Z]',
]


class TestRoundTrip:
    @pytest.mark.parametrize("text", ROUND_TRIPS)
    def test_parse_then_format_is_identity(self, text: str) -> None:
        """Canonical text parses and formats back to exactly itself."""
        assert str(Relationship.parse(text)) == text

    @pytest.mark.parametrize("text", ROUND_TRIPS)
    def test_format_then_parse_is_identity(self, text: str) -> None:
        """A parsed relationship survives a second trip with caveat and expiration intact."""
        first = rel(text)
        second = rel(str(first))
        assert second == first
        assert second.caveat == first.caveat
        assert second.expiration == first.expiration

    def test_ellipsis_subject_relation_means_none(self) -> None:
        """`#...` on the subject is the plain subject and is not printed back."""
        parsed = rel("document:1#viewer@user:ann#...")
        assert parsed.subject == SubjectRef("user", "ann")
        assert str(parsed) == "document:1#viewer@user:ann"

    def test_surrounding_whitespace_is_ignored(self) -> None:
        """Leading and trailing blanks are stripped before parsing."""
        assert str(rel("  document:1#viewer@user:ann \n")) == "document:1#viewer@user:ann"

    def test_caveat_context_is_canonical_json(self) -> None:
        """Context JSON is stored with sorted keys and no spaces, whatever the input spacing."""
        parsed = rel('document:1#viewer@user:ann[my_caveat:{ "b": 1, "a": "x" }]')
        assert parsed.caveat == RelationshipCaveat("my_caveat", '{"a":"x","b":1}')
        assert parsed.caveat is not None
        assert parsed.caveat.context == {"a": "x", "b": 1}

    def test_caveat_context_may_contain_brackets_in_strings(self) -> None:
        """A `]` inside a JSON string does not end the caveat suffix."""
        parsed = rel('document:1#viewer@user:ann[my_caveat:{"s":"a]b["}]')
        assert parsed.caveat is not None
        assert parsed.caveat.context == {"s": "a]b["}

    def test_expiration_is_normalized_to_utc(self) -> None:
        """An expiration with an offset is stored and printed in UTC."""
        parsed = rel("document:1#viewer@user:ann[expiration:2030-01-01T02:00:00+02:00]")
        assert parsed.expiration == datetime(2030, 1, 1, tzinfo=UTC)
        assert str(parsed).endswith("[expiration:2030-01-01T00:00:00Z]")


class TestErrors:
    @pytest.mark.parametrize(
        ("text", "column", "field", "fragment"),
        [
            ("", 1, None, "empty"),
            ("document:1#viewer", 18, None, "`@`"),
            ("document:1@user:ann", 11, None, "#relation"),
            ("document1#viewer@user:ann", 10, None, "`:`"),
            ("Document:1#viewer@user:ann", 1, "resource.object_type", "object type"),
            ("document:a b#viewer@user:ann", 10, "resource.object_id", "object id"),
            ("document:*#viewer@user:ann", 10, "resource.object_id", "wildcard"),
            ("document:1#vi@user:ann", 12, "relation", "invalid relation"),
            ("document:1#viewer@user", 23, None, "`:`"),
            ("document:1#viewer@us:ann", 19, "subject.object_type", "object type"),
            ("document:1#viewer@user:a!", 24, "subject.object_id", "object id"),
            ("document:1#viewer@group:eng#Member", 29, "subject.relation", "invalid relation"),
            ("document:1#viewer@user:*#member", 25, "subject.relation", "wildcard"),
            ("document:1#viewer@user:ann junk", 24, "subject.object_id", "object id"),
            ("document:1#viewer@user:ann[x]", 28, None, "caveat name"),
            ("document:1#viewer@user:ann[my_caveat:{]", 27, None, "unclosed"),
            ("document:1#viewer@user:ann[my_caveat:[1]]", 38, None, "JSON object"),
            ("document:1#viewer@user:ann[my_caveat:{nope}]", 39, None, "JSON"),
            ("document:1#viewer@user:ann[aaa][bbb]", 32, None, "caveat given twice"),
            ("document:1#viewer@user:ann[expiration:2030-01-01]", 39, None, "time zone"),
            ("document:1#viewer@user:ann[expiration:tomorrow]", 39, None, "RFC 3339"),
            (
                "document:1#viewer@user:ann[expiration:2030-01-01T00:00:00Z][expiration:2030-01-01T00:00:00Z]",
                60,
                None,
                "expiration given twice",
            ),
            ("document:1#viewer@user:ann[aaa]x", 32, None, "unexpected"),
            ("document:1#viewer@user:ann]", 24, "subject.object_id", "object id"),
        ],
    )
    def test_error_names_column_and_field(
        self, text: str, column: int, field: str | None, fragment: str
    ) -> None:
        """Each malformed text raises InvalidRelationshipError pointing at the offending column."""
        with pytest.raises(InvalidRelationshipError, match=fragment) as info:
            Relationship.parse(text)
        assert info.value.column == column
        assert info.value.field == field
        assert isinstance(info.value, ValueError)


class TestIdRules:
    @pytest.mark.parametrize("name", ["abc", "a_1", "tenant/document", "a" * 64, "org/team/doc_type"])
    def test_valid_type_names(self, name: str) -> None:
        """SpiceDB type names: 3-64 lowercase chars, optionally prefixed."""
        assert validate_object_type(name) == name

    @pytest.mark.parametrize("name", ["ab", "a" * 65, "1abc", "abc_", "Abc", "a-bc", "/abc", "abc/", ""])
    def test_invalid_type_names(self, name: str) -> None:
        """Too short, too long, bad first/last character or characters are refused."""
        with pytest.raises(InvalidRelationshipError, match="invalid object type"):
            validate_object_type(name)

    @pytest.mark.parametrize("name", ["abc", "view_er", "r" * 64])
    def test_valid_relation_names(self, name: str) -> None:
        """Relation names follow the same 3-64 rule without prefixes."""
        assert validate_relation_name(name) == name

    @pytest.mark.parametrize("name", ["ab", "tenant/rel", "abc_", "...", "r" * 65])
    def test_invalid_relation_names(self, name: str) -> None:
        """Prefixes, the ellipsis and bad shapes are not relation names."""
        with pytest.raises(InvalidRelationshipError, match="invalid relation"):
            validate_relation_name(name, field_name="permission")

    @pytest.mark.parametrize("value", ["1", "a" * 1024, "A/b_c|d-e=f+g", "ZZ"])
    def test_valid_ids(self, value: str) -> None:
        """Ids are 1-1024 characters of the SpiceDB set."""
        assert validate_object_id(value) == value

    @pytest.mark.parametrize("value", ["", "a" * 1025, "a b", "a:b", "a#b", "a@b", "é"])
    def test_invalid_ids(self, value: str) -> None:
        """Empty, too long, and separators or non-ASCII characters are refused, naming the field."""
        with pytest.raises(InvalidRelationshipError, match="invalid object id") as info:
            validate_object_id(value, field_name="resource.object_id")
        assert info.value.field == "resource.object_id"

    def test_wildcard_only_where_allowed(self) -> None:
        """`*` is an id only for subjects."""
        assert validate_object_id(WILDCARD, allow_wildcard=True) == "*"
        with pytest.raises(InvalidRelationshipError, match="only allowed as a subject"):
            validate_object_id(WILDCARD)
        with pytest.raises(InvalidRelationshipError, match="wildcard"):
            parse_object("document:*")
        assert parse_subject("user:*").is_wildcard


class TestValues:
    def test_key_ignores_caveat_and_expiration(self) -> None:
        """Relationships differing only in caveat or expiration share a key and compare equal."""
        plain = rel("document:1#viewer@user:ann")
        caveated = rel("document:1#viewer@user:ann[my_caveat][expiration:2030-01-01T00:00:00Z]")
        assert plain.key == caveated.key == ("document", "1", "viewer", "user", "ann", "")
        assert plain == caveated
        assert len({plain, caveated}) == 1

    def test_subject_set_key_includes_relation(self) -> None:
        """A subject set and its plain object are different rows."""
        assert rel("document:1#viewer@group:eng#member").key[-1] == "member"
        assert rel("document:1#viewer@group:eng").key != rel("document:1#viewer@group:eng#member").key

    def test_ordering_matches_key_ordering(self) -> None:
        """Sorting relationships (plain and subject-set subjects mixed) equals sorting their keys."""
        texts = [
            "document:1#viewer@group:eng#member",
            "document:1#viewer@group:eng",
            "document:10#viewer@user:ann",
            "document:2#editor@user:ann",
            "document:1#viewer@group:eng#admin",
            "document:1#viewer@user:*",
        ]
        rels = [rel(t) for t in texts]
        assert sorted(rels) == sorted(rels, key=lambda r: r.key)

    def test_subject_ref_forms(self) -> None:
        """SubjectRef prints plain, subject-set and wildcard forms and exposes its object."""
        assert str(SubjectRef("user", "ann")) == "user:ann"
        assert str(SubjectRef("group", "eng", "member")) == "group:eng#member"
        assert SubjectRef("group", "eng", "member").object == ObjectRef("group", "eng")
        assert SubjectRef.parse("user:*") == SubjectRef("user", "*")
        assert ObjectRef.parse("document:1") == ObjectRef("document", "1")

    def test_caveat_of_builds_canonical_context(self) -> None:
        """RelationshipCaveat.of sorts keys; an empty context prints as a bare name."""
        assert RelationshipCaveat.of("my_caveat", {"b": 2, "a": 1}).context_json == '{"a":1,"b":2}'
        assert str(RelationshipCaveat.of("my_caveat")) == "[my_caveat]"
        context = RelationshipCaveat.of("my_caveat", {"a": 1}).context
        context["a"] = 2
        assert RelationshipCaveat.of("my_caveat", {"a": 1}).context == {"a": 1}

    def test_format_expiration(self) -> None:
        """Expirations print in UTC with Z, sub-seconds only when present."""
        tz = timezone(timedelta(hours=-5))
        assert format_expiration(datetime(2030, 1, 1, 7, tzinfo=tz)) == "2030-01-01T12:00:00Z"
        assert format_expiration(datetime(2030, 1, 1, microsecond=5, tzinfo=UTC)) == "2030-01-01T00:00:00.000005Z"

    def test_update_holds_operation(self) -> None:
        """RelationshipUpdate is a frozen value pairing an operation with a relationship."""
        update = RelationshipUpdate(UpdateOperation.TOUCH, rel("document:1#viewer@user:ann"))
        assert update == RelationshipUpdate(UpdateOperation.TOUCH, rel("document:1#viewer@user:ann"))
        with pytest.raises(AttributeError):
            update.operation = UpdateOperation.DELETE  # type: ignore[misc]
