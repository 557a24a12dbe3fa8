"""Proto messages ↔ rebac value types, both directions, and nothing else.

Every `*_from_proto` validates as it converts and raises InvalidRequestError (or its
subclass InvalidRelationshipError) whose `field` is the request path of the offending
field, e.g. ``"updates[2].relationship.resource.object_id"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, assert_never

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.protobuf.message import Message

from rebac.datastore.filters import ANY_RELATION, AnyRelation, RelationshipFilter, SubjectFilter
from rebac.engine.lookup_resources import ResourcePage
from rebac.engine.requests import ExpandOperation, ExpandTree, FoundResource, FoundSubject, Permissionship
from rebac.errors import InvalidRelationshipError, InvalidRequestError
from rebac.revision import (
    AtExactSnapshot,
    AtLeastAsFresh,
    Consistency,
    FullyConsistent,
    MinimizeLatency,
    Revision,
    encode_token,
)
from rebac.tuples import (
    ObjectRef,
    Relationship,
    RelationshipCaveat,
    RelationshipUpdate,
    SubjectRef,
    UpdateOperation,
    validate_object_id,
    validate_object_type,
    validate_relation_name,
)
from rebac_server._gen.rebac.v1 import core_pb2, permissions_pb2

__all__ = [
    "add_found_subjects",
    "add_resource_page",
    "consistency_from_proto",
    "consistency_to_proto",
    "context_from_proto",
    "context_to_proto",
    "contextual_relationships_from_proto",
    "expand_tree_from_proto",
    "expand_tree_to_proto",
    "filter_from_proto",
    "filter_to_proto",
    "found_resource_from_proto",
    "found_subject_from_proto",
    "object_from_proto",
    "object_to_proto",
    "permissionship_from_proto",
    "permissionship_to_proto",
    "precondition_from_proto",
    "relation_from_proto",
    "relationship_from_proto",
    "relationship_to_proto",
    "require_field",
    "subject_from_proto",
    "subject_to_proto",
    "token_to_proto",
    "update_from_proto",
    "update_to_proto",
]


def require_field(parent: Message, name: str, path: str) -> None:
    """InvalidRequestError naming `path` unless message field `name` of `parent` is set."""
    if not parent.HasField(name):
        raise InvalidRequestError(f"{path} is required", field=path)


def relation_from_proto(value: str, path: str) -> str:
    """A relation or permission name; InvalidRequestError naming `path` if malformed."""
    if not value:
        raise InvalidRequestError(f"{path} is required", field=path)
    return validate_relation_name(value, field_name=path)


def object_from_proto(msg: core_pb2.ObjectReference, path: str) -> ObjectRef:
    """An object reference (never a wildcard)."""
    validate_object_type(msg.object_type, field_name=f"{path}.object_type")
    validate_object_id(msg.object_id, field_name=f"{path}.object_id")
    return ObjectRef(msg.object_type, msg.object_id)


def object_to_proto(obj: ObjectRef) -> core_pb2.ObjectReference:
    """The proto form of `obj`."""
    return core_pb2.ObjectReference(object_type=obj.type, object_id=obj.id)


def subject_from_proto(msg: core_pb2.SubjectReference, path: str) -> SubjectRef:
    """A subject: object, wildcard (`*`, no relation) or subject set."""
    require_field(msg, "object", f"{path}.object")
    validate_object_type(msg.object.object_type, field_name=f"{path}.object.object_type")
    validate_object_id(msg.object.object_id, allow_wildcard=True, field_name=f"{path}.object.object_id")
    relation: str | None = None
    if msg.optional_relation and msg.optional_relation != "...":
        relation = validate_relation_name(msg.optional_relation, field_name=f"{path}.optional_relation")
        if msg.object.object_id == "*":
            raise InvalidRelationshipError(
                "a wildcard subject cannot have a relation", field=f"{path}.optional_relation"
            )
    return SubjectRef(msg.object.object_type, msg.object.object_id, relation)


def subject_to_proto(subject: SubjectRef) -> core_pb2.SubjectReference:
    """The proto form of `subject`."""
    return core_pb2.SubjectReference(
        object=core_pb2.ObjectReference(object_type=subject.type, object_id=subject.id),
        optional_relation=subject.relation or "",
    )


def context_from_proto(msg: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as a plain dict (numbers come back as floats, as JSON has them)."""
    return json_format.MessageToDict(msg)


def context_to_proto(context: Mapping[str, Any]) -> struct_pb2.Struct:
    """A JSON-like mapping as a Struct."""
    msg = struct_pb2.Struct()
    msg.update(dict(context))
    return msg


def relationship_from_proto(msg: core_pb2.Relationship, path: str) -> Relationship:
    """A relationship with its optional caveat and expiry."""
    require_field(msg, "resource", f"{path}.resource")
    require_field(msg, "subject", f"{path}.subject")
    resource = object_from_proto(msg.resource, f"{path}.resource")
    relation = relation_from_proto(msg.relation, f"{path}.relation")
    subject = subject_from_proto(msg.subject, f"{path}.subject")
    caveat: RelationshipCaveat | None = None
    if msg.HasField("optional_caveat"):
        name = msg.optional_caveat.caveat_name
        validate_object_type(name, field_name=f"{path}.optional_caveat.caveat_name")
        caveat = RelationshipCaveat.of(name, context_from_proto(msg.optional_caveat.context))
    expiration: datetime | None = None
    if msg.HasField("optional_expires_at"):
        try:
            expiration = msg.optional_expires_at.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError):
            raise InvalidRequestError(
                f"{path}.optional_expires_at is out of range", field=f"{path}.optional_expires_at"
            ) from None
    return Relationship(resource, relation, subject, caveat, expiration)


def contextual_relationships_from_proto(
    msgs: Iterable[core_pb2.Relationship], path: str = "contextual_relationships"
) -> tuple[Relationship, ...]:
    """A request's contextual relationships, in order; InvalidRequestError names the bad one."""
    return tuple(relationship_from_proto(msg, f"{path}[{i}]") for i, msg in enumerate(msgs))


def relationship_to_proto(rel: Relationship) -> core_pb2.Relationship:
    """The proto form of `rel`."""
    msg = core_pb2.Relationship(
        resource=object_to_proto(rel.resource), relation=rel.relation, subject=subject_to_proto(rel.subject)
    )
    if rel.caveat is not None:
        msg.optional_caveat.caveat_name = rel.caveat.name
        msg.optional_caveat.context.CopyFrom(context_to_proto(rel.caveat.context))
    if rel.expiration is not None:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(rel.expiration)
        msg.optional_expires_at.CopyFrom(stamp)
    return msg


_OPERATIONS = {
    core_pb2.RelationshipUpdate.OPERATION_CREATE: UpdateOperation.CREATE,
    core_pb2.RelationshipUpdate.OPERATION_TOUCH: UpdateOperation.TOUCH,
    core_pb2.RelationshipUpdate.OPERATION_DELETE: UpdateOperation.DELETE,
}
_OPERATIONS_BACK = {v: k for k, v in _OPERATIONS.items()}


def update_from_proto(msg: core_pb2.RelationshipUpdate, path: str) -> RelationshipUpdate:
    """A CREATE/TOUCH/DELETE update; an unspecified operation is invalid."""
    operation = _OPERATIONS.get(msg.operation)
    if operation is None:
        raise InvalidRequestError(
            f"{path}.operation must be CREATE, TOUCH or DELETE", field=f"{path}.operation"
        )
    require_field(msg, "relationship", f"{path}.relationship")
    return RelationshipUpdate(operation, relationship_from_proto(msg.relationship, f"{path}.relationship"))


def update_to_proto(update: RelationshipUpdate) -> core_pb2.RelationshipUpdate:
    """The proto form of `update`."""
    return core_pb2.RelationshipUpdate(
        operation=_OPERATIONS_BACK[update.operation], relationship=relationship_to_proto(update.relationship)
    )


def filter_from_proto(msg: core_pb2.RelationshipFilter, path: str) -> RelationshipFilter:
    """A relationship filter; empty fields match anything."""
    resource_type = msg.resource_type or None
    if resource_type is not None:
        validate_object_type(resource_type, field_name=f"{path}.resource_type")
    resource_ids: tuple[str, ...] | None = None
    if msg.optional_resource_id:
        if resource_type is None:
            raise InvalidRequestError(
                f"{path}.optional_resource_id needs resource_type", field=f"{path}.optional_resource_id"
            )
        resource_ids = (
            validate_object_id(msg.optional_resource_id, field_name=f"{path}.optional_resource_id"),
        )
    relation = (
        validate_relation_name(msg.optional_relation, field_name=f"{path}.optional_relation")
        if msg.optional_relation
        else None
    )
    subject: SubjectFilter | None = None
    if msg.HasField("optional_subject_filter"):
        sub = msg.optional_subject_filter
        sub_path = f"{path}.optional_subject_filter"
        validate_object_type(sub.subject_type, field_name=f"{sub_path}.subject_type")
        ids = (
            (
                validate_object_id(
                    sub.optional_subject_id, allow_wildcard=True, field_name=f"{sub_path}.optional_subject_id"
                ),
            )
            if sub.optional_subject_id
            else None
        )
        sub_relation: str | AnyRelation | None = ANY_RELATION
        if sub.HasField("optional_relation"):
            name = sub.optional_relation.relation
            sub_relation = (
                validate_relation_name(name, field_name=f"{sub_path}.optional_relation.relation")
                if name
                else None
            )
        subject = SubjectFilter(sub.subject_type, ids, sub_relation)
    return RelationshipFilter(resource_type, resource_ids, relation, subject)


def filter_to_proto(flt: RelationshipFilter) -> core_pb2.RelationshipFilter:
    """The proto form of `flt` (only the first resource id when several are set)."""
    msg = core_pb2.RelationshipFilter(
        resource_type=flt.resource_type or "",
        optional_resource_id=flt.resource_ids[0] if flt.resource_ids else "",
        optional_relation=flt.relation or "",
    )
    if flt.subject is not None:
        msg.optional_subject_filter.subject_type = flt.subject.type
        if flt.subject.ids:
            msg.optional_subject_filter.optional_subject_id = flt.subject.ids[0]
        if flt.subject.relation is not ANY_RELATION:
            msg.optional_subject_filter.optional_relation.relation = (
                flt.subject.relation if isinstance(flt.subject.relation, str) else ""
            )
    return msg


def precondition_from_proto(msg: core_pb2.Precondition, path: str) -> tuple[RelationshipFilter, bool]:
    """A precondition as (filter, must_match)."""
    if msg.operation == core_pb2.Precondition.OPERATION_UNSPECIFIED:
        raise InvalidRequestError(
            f"{path}.operation must be MUST_MATCH or MUST_NOT_MATCH", field=f"{path}.operation"
        )
    require_field(msg, "filter", f"{path}.filter")
    return (
        filter_from_proto(msg.filter, f"{path}.filter"),
        msg.operation == core_pb2.Precondition.OPERATION_MUST_MATCH,
    )


def consistency_from_proto(msg: core_pb2.Consistency, path: str = "consistency") -> Consistency:
    """The requested consistency; nothing set means minimize_latency."""
    match msg.WhichOneof("requirement"):
        case None | "minimize_latency":
            return MinimizeLatency()
        case "fully_consistent":
            return FullyConsistent()
        case "at_least_as_fresh":
            return AtLeastAsFresh(_token(msg.at_least_as_fresh.token, f"{path}.at_least_as_fresh.token"))
        case "at_exact_snapshot":
            return AtExactSnapshot(_token(msg.at_exact_snapshot.token, f"{path}.at_exact_snapshot.token"))
        case other:  # pragma: no cover - the proto has no other members
            raise InvalidRequestError(f"{path}: unknown requirement {other}", field=path)


def consistency_to_proto(consistency: Consistency) -> core_pb2.Consistency:
    """The proto form of `consistency`."""
    match consistency:
        case MinimizeLatency():
            return core_pb2.Consistency(minimize_latency=True)
        case FullyConsistent():
            return core_pb2.Consistency(fully_consistent=True)
        case AtLeastAsFresh(token=token):
            return core_pb2.Consistency(at_least_as_fresh=core_pb2.RevisionToken(token=token))
        case AtExactSnapshot(token=token):
            return core_pb2.Consistency(at_exact_snapshot=core_pb2.RevisionToken(token=token))
        case _:
            assert_never(consistency)


def _token(value: str, path: str) -> str:
    if not value:
        raise InvalidRequestError(f"{path} is required", field=path)
    return value


def token_to_proto(revision: Revision) -> core_pb2.RevisionToken:
    """The opaque token of `revision`."""
    return core_pb2.RevisionToken(token=encode_token(revision))


_PERMISSIONSHIP = {
    Permissionship.NO_PERMISSION: permissions_pb2.PERMISSIONSHIP_NO_PERMISSION,
    Permissionship.HAS_PERMISSION: permissions_pb2.PERMISSIONSHIP_HAS_PERMISSION,
    Permissionship.CONDITIONAL: permissions_pb2.PERMISSIONSHIP_CONDITIONAL_PERMISSION,
}
_PERMISSIONSHIP_BACK = {v: k for k, v in _PERMISSIONSHIP.items()}


def permissionship_to_proto(value: Permissionship) -> permissions_pb2.Permissionship:
    """The proto enum value of `value`."""
    return _PERMISSIONSHIP[value]


def permissionship_from_proto(value: int) -> Permissionship:
    """The engine value of a proto Permissionship; UNSPECIFIED is a server bug (fail closed)."""
    try:
        return _PERMISSIONSHIP_BACK[value]  # type: ignore[index]
    except KeyError:
        raise InvalidRequestError(f"permissionship: unknown value {value}", field="permissionship") from None


_EXPAND_OPS = {
    ExpandOperation.UNION: permissions_pb2.AlgebraicSubjectSet.OPERATION_UNION,
    ExpandOperation.INTERSECTION: permissions_pb2.AlgebraicSubjectSet.OPERATION_INTERSECTION,
    ExpandOperation.EXCLUSION: permissions_pb2.AlgebraicSubjectSet.OPERATION_EXCLUSION,
}
_EXPAND_OPS_BACK = {v: k for k, v in _EXPAND_OPS.items()}


def expand_tree_to_proto(tree: ExpandTree) -> permissions_pb2.PermissionRelationshipTree:
    """The proto form of an expand tree (recursively)."""
    msg = permissions_pb2.PermissionRelationshipTree(
        expanded_object=object_to_proto(tree.resource),
        expanded_relation=tree.relation,
        label=tree.label,
        caveat=tree.caveat,
    )
    if tree.operation is ExpandOperation.LEAF:
        msg.leaf.subjects.extend(subject_to_proto(s) for s in tree.subjects)
        msg.leaf.subject_caveats.extend(tree.subject_caveats)
        # Set the oneof even for an empty leaf so the client reads it as a leaf.
        msg.leaf.SetInParent()
    else:
        msg.intermediate.operation = _EXPAND_OPS[tree.operation]
        msg.intermediate.children.extend(expand_tree_to_proto(child) for child in tree.children)
    return msg


def expand_tree_from_proto(msg: permissions_pb2.PermissionRelationshipTree) -> ExpandTree:
    """An expand tree from its proto form (used by the client)."""
    resource = ObjectRef(msg.expanded_object.object_type, msg.expanded_object.object_id)
    if msg.WhichOneof("tree_type") == "intermediate":
        return ExpandTree(
            resource,
            msg.expanded_relation,
            _EXPAND_OPS_BACK[msg.intermediate.operation],
            children=tuple(expand_tree_from_proto(child) for child in msg.intermediate.children),
            label=msg.label,
            caveat=msg.caveat,
        )
    subjects = tuple(
        SubjectRef(s.object.object_type, s.object.object_id, s.optional_relation or None)
        for s in msg.leaf.subjects
    )
    caveats = tuple(msg.leaf.subject_caveats)
    if caveats and len(caveats) != len(subjects):
        raise InvalidRequestError(
            "expand leaf: subject_caveats must be empty or one per subject", field="subject_caveats"
        )
    return ExpandTree(
        resource,
        msg.expanded_relation,
        ExpandOperation.LEAF,
        subjects=subjects,
        label=msg.label,
        subject_caveats=caveats,
        caveat=msg.caveat,
    )


# Lookup results travel many to a message; the cursor is per message (see permissions.proto),
# so these convert results without theirs. A 30,000-result lookup adds 30,000 results: the
# loops bind `add` once and test enums with `is` (an Enum's hash runs in Python).


def add_resource_page(
    results: RepeatedCompositeFieldContainer[permissions_pb2.LookupResourcesResult], page: ResourcePage
) -> None:
    """Append a page of LookupResources results to a response's `results`, in order."""
    add = results.add
    has = _PERMISSIONSHIP[Permissionship.HAS_PERMISSION]
    conditional = page.conditional
    if not conditional:
        for rid in page.ids:
            add(resource_object_id=rid, permissionship=has)
        return
    maybe = _PERMISSIONSHIP[Permissionship.CONDITIONAL]
    for rid in page.ids:
        missing = conditional.get(rid)
        if missing is None:
            add(resource_object_id=rid, permissionship=has)
        else:
            add(resource_object_id=rid, permissionship=maybe, missing_context=missing)


def found_resource_from_proto(msg: permissions_pb2.LookupResourcesResult, cursor: str) -> FoundResource:
    """A LookupResources result with the cursor that resumes after it (used by the client)."""
    return FoundResource(
        msg.resource_object_id,
        permissionship_from_proto(msg.permissionship),
        tuple(msg.missing_context),
        cursor,
    )


def add_found_subjects(
    results: RepeatedCompositeFieldContainer[permissions_pb2.LookupSubjectsResult],
    found: Iterable[FoundSubject],
) -> None:
    """Append `found` (without their cursors) to a LookupSubjectsResponse's `results`, in order."""
    add = results.add
    for item in found:
        subject = item.subject
        result = add(permissionship=_PERMISSIONSHIP[item.permissionship])
        result.subject.object.object_type = subject.type
        result.subject.object.object_id = subject.id
        if subject.relation:
            result.subject.optional_relation = subject.relation
        if item.excluded:
            result.excluded_subjects.extend(subject_to_proto(s) for s in item.excluded)
        if item.missing_context:
            result.missing_context.extend(item.missing_context)


def _subject_back(msg: core_pb2.SubjectReference) -> SubjectRef:
    return SubjectRef(msg.object.object_type, msg.object.object_id, msg.optional_relation or None)


def found_subject_from_proto(msg: permissions_pb2.LookupSubjectsResult, cursor: str) -> FoundSubject:
    """A LookupSubjects result with the cursor that resumes after it (used by the client)."""
    return FoundSubject(
        _subject_back(msg.subject),
        tuple(_subject_back(s) for s in msg.excluded_subjects),
        permissionship_from_proto(msg.permissionship),
        tuple(msg.missing_context),
        cursor,
    )
