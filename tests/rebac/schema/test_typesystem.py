from datetime import UTC, datetime

import pytest

from rebac.errors import SchemaViolationError, UnknownDefinitionError, UnknownRelationError
from rebac.schema import TypeSystem, compile_schema
from rebac.tuples import Relationship, RelationshipCaveat, rel

SCHEMA = compile_schema("""use expiration
caveat cav(xx int) {
  xx == 1
}
definition user {}
definition group {
  relation member: user | group#member
}
definition doc {
  relation viewer: user | user:* | group#member | user with cav
  relation temp: user with expiration
  permission view = viewer
}
""")
TS = TypeSystem(SCHEMA)


class TestTypeSystem:
    def test_member_lookup(self):
        """member() finds relations and permissions; is_permission tells them apart."""
        assert TS.member("doc", "viewer").name == "viewer"
        assert TS.is_permission("doc", "view")
        assert not TS.is_permission("doc", "viewer")

    def test_unknown_names(self):
        """Unknown types and members raise the Unknown* errors."""
        with pytest.raises(UnknownDefinitionError):
            TS.member("nope", "viewer")
        with pytest.raises(UnknownRelationError):
            TS.member("doc", "nope")

    @pytest.mark.parametrize("text", ["doc:1#viewer@user:ann", "doc:1#viewer@user:*", "doc:1#viewer@group:eng#member"])
    def test_allowed_relationships(self, text):
        """Relationships matching an allowed entry validate."""
        TS.validate_relationship(rel(text))

    @pytest.mark.parametrize(("text", "fragment"), [
        ("doc:1#view@user:ann", "is a permission"),
        ("doc:1#viewer@group:eng", "`group`"),
        ("doc:1#viewer@doc:2", "`doc`"),
        ("group:1#member@user:*", "`user:*`"),
        ("doc:1#temp@user:ann", "`user`"),
    ])
    def test_rejected_relationships(self, text, fragment):
        """Disallowed relationships raise SchemaViolationError naming the subject type."""
        with pytest.raises(SchemaViolationError, match=r"not allowed|permission") as info:
            TS.validate_relationship(rel(text))
        assert fragment in str(info.value)

    def test_caveat_rules(self):
        """A caveated relationship needs `with cav`; an unknown caveat is rejected."""
        base = rel("doc:1#viewer@user:ann")
        TS.validate_relationship(Relationship(base.resource, base.relation, base.subject, RelationshipCaveat.of("cav")))
        with pytest.raises(SchemaViolationError, match="allowed: user \\| user:\\* \\| group#member \\| user with cav"):
            TS.validate_relationship(Relationship(base.resource, base.relation, base.subject, RelationshipCaveat.of("other")))

    def test_expiration_rules(self):
        """Expiration only where `with expiration` is allowed, and required there."""
        when = datetime(2030, 1, 1, tzinfo=UTC)
        temp = rel("doc:1#temp@user:ann")
        TS.validate_relationship(Relationship(temp.resource, temp.relation, temp.subject, None, when))
        viewer = rel("doc:1#viewer@user:ann")
        with pytest.raises(SchemaViolationError):
            TS.validate_relationship(Relationship(viewer.resource, viewer.relation, viewer.subject, None, when))
