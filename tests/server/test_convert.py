"""proto ↔ rebac conversion: round trips and field paths in errors."""

from __future__ import annotations

import pytest

from rebac.datastore.filters import ANY_RELATION, RelationshipFilter, SubjectFilter
from rebac.errors import InvalidRequestError
from rebac.revision import AtExactSnapshot, AtLeastAsFresh, FullyConsistent, MinimizeLatency
from rebac.tuples import rel
from rebac_server import convert
from rebac_server._gen.rebac.v1 import core_pb2


class TestConvert:
    @pytest.mark.parametrize(
        "text",
        [
            "document:1#viewer@user:ann",
            "document:1#viewer@group:eng#member",
            "document:1#viewer@user:*",
            'document:1#viewer@user:bo[only_on_tuesday:{"day":"tue"}]',
            "tenant/document:x#viewer@user:bo[expiration:2030-01-01T00:00:00Z]",
        ],
    )
    def test_relationship_round_trip(self, text):
        """Relationships with subject sets, wildcards, caveats and expiry survive proto and back."""
        original = rel(text)
        back = convert.relationship_from_proto(convert.relationship_to_proto(original), "r")
        assert str(back) == str(original)

    @pytest.mark.parametrize(
        "consistency",
        [MinimizeLatency(), FullyConsistent(), AtLeastAsFresh("t1"), AtExactSnapshot("t2")],
    )
    def test_consistency_round_trip(self, consistency):
        """Every consistency variant survives proto and back; nothing set means minimize_latency."""
        assert convert.consistency_from_proto(convert.consistency_to_proto(consistency)) == consistency
        assert convert.consistency_from_proto(core_pb2.Consistency()) == MinimizeLatency()

    def test_empty_token_names_the_field(self):
        """at_least_as_fresh with an empty token is an error naming the token field."""
        msg = core_pb2.Consistency(at_least_as_fresh=core_pb2.RevisionToken())
        with pytest.raises(InvalidRequestError) as info:
            convert.consistency_from_proto(msg)
        assert info.value.field == "consistency.at_least_as_fresh.token"

    @pytest.mark.parametrize(
        "flt",
        [
            RelationshipFilter("document", ("1",), "viewer", SubjectFilter("user", ("ann",), None)),
            RelationshipFilter("document", None, None, SubjectFilter("group", None, "member")),
            RelationshipFilter(None, None, None, SubjectFilter("user", None, ANY_RELATION)),
        ],
    )
    def test_filter_round_trip(self, flt):
        """Filters keep their subject relation semantics (none / any / named)."""
        assert convert.filter_from_proto(convert.filter_to_proto(flt), "f") == flt

    def test_resource_id_without_type_is_refused(self):
        """A filter with a resource id but no type is an error naming the id field."""
        with pytest.raises(InvalidRequestError) as info:
            convert.filter_from_proto(
                core_pb2.RelationshipFilter(optional_resource_id="1"), "relationship_filter"
            )
        assert info.value.field == "relationship_filter.optional_resource_id"

    def test_wildcard_resource_is_refused(self):
        """`*` is not a resource id."""
        with pytest.raises(InvalidRequestError) as info:
            convert.object_from_proto(
                core_pb2.ObjectReference(object_type="document", object_id="*"), "resource"
            )
        assert info.value.field == "resource.object_id"

    def test_wildcard_subject_with_relation_is_refused(self):
        """A wildcard subject cannot carry a relation."""
        msg = core_pb2.SubjectReference(
            object=core_pb2.ObjectReference(object_type="user", object_id="*"), optional_relation="member"
        )
        with pytest.raises(InvalidRequestError) as info:
            convert.subject_from_proto(msg, "subject")
        assert info.value.field == "subject.optional_relation"
