"""Public request and result types of the engine (the server converts these to/from proto).

These are the contract between `rebac.engine.Engine` and its callers; internal dispatch
types live beside the dispatcher.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from rebac.tuples import ObjectRef, Relationship, SubjectRef

__all__ = [
    "CheckRequest",
    "CheckResult",
    "ExpandOperation",
    "ExpandTree",
    "FoundResource",
    "FoundSubject",
    "Permissionship",
]


class Permissionship(Enum):
    """The answer to a check."""

    NO_PERMISSION = "no_permission"
    HAS_PERMISSION = "has_permission"
    CONDITIONAL = "conditional"
    """Depends on caveat context that was not supplied; see `missing_context`."""


@dataclass(frozen=True)
class CheckRequest:
    """Asks whether `subject` has `permission` (a permission or relation) on `resource`.

    `context` is the caveat context supplied by the caller (None: none).
    `contextual_relationships` count for this request only; they are never stored or cached.
    """

    resource: ObjectRef
    permission: str
    subject: SubjectRef
    context: Mapping[str, Any] | None = None
    contextual_relationships: tuple[Relationship, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A check's answer; `missing_context` lists caveat parameters when CONDITIONAL."""

    permissionship: Permissionship
    missing_context: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        """True only for HAS_PERMISSION (fail closed: CONDITIONAL is not allowed)."""
        return self.permissionship is Permissionship.HAS_PERMISSION


class ExpandOperation(Enum):
    """The kind of an expand tree node."""

    LEAF = "leaf"
    UNION = "union"
    INTERSECTION = "intersection"
    EXCLUSION = "exclusion"


@dataclass(frozen=True)
class ExpandTree:
    """The userset tree behind `resource#relation`.

    A LEAF lists the subjects stored directly (objects, wildcards and subject sets); the
    other operations combine `children` (EXCLUSION: the first child minus the rest).

    `label` says what the node stands for when that is not `relation` itself: the arrow
    (``parent->edit``, ``parent.all(edit)``) or, in a one-level expand, the computed
    userset's relation (``owner``); empty otherwise. `subject_caveats` is empty or runs
    parallel to `subjects`: the caveat name on the relationship of each subject ("" for
    none). `caveat` names the caveat on the relationship through which this node was
    reached (a caveated subject-set or arrow row); everything under it is conditional.
    """

    resource: ObjectRef
    relation: str
    operation: ExpandOperation
    children: tuple[ExpandTree, ...] = ()
    subjects: tuple[SubjectRef, ...] = ()
    label: str = ""
    subject_caveats: tuple[str, ...] = ()
    caveat: str = ""

    def __post_init__(self) -> None:
        """Reject a `subject_caveats` that does not line up with `subjects`."""
        if self.subject_caveats and len(self.subject_caveats) != len(self.subjects):
            msg = "ExpandTree.subject_caveats must be empty or as long as subjects"
            raise ValueError(msg)

    def caveat_of(self, subject: SubjectRef) -> str:
        """The caveat name on `subject`'s relationship in this leaf ("" if uncaveated or absent)."""
        for candidate, caveat in zip(self.subjects, self.subject_caveats, strict=False):
            if candidate == subject:
                return caveat
        return ""


@dataclass(frozen=True, slots=True)
class FoundResource:
    """One LookupResources result; `cursor` resumes the stream after it."""

    resource_id: str
    permissionship: Permissionship = Permissionship.HAS_PERMISSION
    missing_context: tuple[str, ...] = ()
    cursor: str = ""


@dataclass(frozen=True, slots=True)
class FoundSubject:
    """One LookupSubjects result.

    For a wildcard (`subject.id == "*"`), `excluded` lists the subjects it does not cover
    (e.g. banned users under `user:* - banned`).
    """

    subject: SubjectRef
    excluded: tuple[SubjectRef, ...] = field(default=())
    permissionship: Permissionship = Permissionship.HAS_PERMISSION
    missing_context: tuple[str, ...] = ()
    cursor: str = ""
