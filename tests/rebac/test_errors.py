"""The shape of the one exception tree."""

from __future__ import annotations

import inspect
import re

import pytest

import rebac.errors as errors_module
from rebac import errors
from rebac.errors import RebacError, SourcePosition

# A few parent links pinned explicitly (the rest follow from the drawn tree).
PINNED_PARENTS = {
    "InvalidRequestError": ("RebacError", "ValueError"),
    "SchemaParseError": ("SchemaError",),
    "InvalidRevisionError": ("InvalidRequestError",),
    "StaleRevisionError": ("RebacError",),
    "SerializationConflictError": ("DatastoreError",),
    "ReadOnlyError": ("DatastoreError",),
    "BugError": ("RebacError",),
}


def _drawn_tree() -> dict[str, str | None]:
    """Class name → drawn parent, read from the box-drawing tree in the module docstring."""
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    for line in (errors_module.__doc__ or "").splitlines():
        match = re.match(r"^([│ ]*)(?:[├└]── )?([A-Z][A-Za-z]+Error)\b", line)
        if match is None:
            continue
        prefix = match.group(1)
        depth = 0 if not line.startswith(("│", "├", "└", " ")) else len(prefix) // 4 + 1
        del stack[depth:]
        parents[match.group(2)] = stack[-1] if stack else None
        stack.append(match.group(2))
    return parents


def _error_classes() -> dict[str, type[BaseException]]:
    return {
        name: cls
        for name, cls in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == "rebac.errors"
    }


class TestHierarchy:
    def test_tree_matches_the_drawn_one(self) -> None:
        """Every error class is drawn in the module docstring, under one of its real bases."""
        classes = _error_classes()
        drawn = _drawn_tree()
        assert drawn["RebacError"] is None
        assert set(drawn) == set(classes)
        for name, parent in drawn.items():
            if parent is not None:
                assert parent in {base.__name__ for base in classes[name].__bases__}, name
            assert issubclass(classes[name], RebacError)

    def test_pinned_parents(self) -> None:
        """The parent links the server's status table relies on hold exactly."""
        classes = _error_classes()
        for name, parents in PINNED_PARENTS.items():
            assert tuple(base.__name__ for base in classes[name].__bases__) == parents, name

    def test_every_class_is_exported_and_documented(self) -> None:
        """__all__ lists every error class, sorted, and each class has a docstring."""
        assert errors.__all__ == sorted(errors.__all__)
        for name, cls in _error_classes().items():
            assert name in errors.__all__
            assert cls.__doc__

    def test_module_imports_no_grpc(self) -> None:
        """The error tree stays transport-free."""
        source = inspect.getsource(errors_module)
        assert "grpc" not in source.replace("gRPC", "")


class TestAttributes:
    def test_schema_error_carries_position(self) -> None:
        """SchemaError prefixes line:column and keeps the bare message, position and field."""
        err = errors.SchemaParseError("unexpected `}`", position=SourcePosition(3, 7), source="a.zed")
        assert str(err) == "3:7: unexpected `}`"
        assert err.message == "unexpected `}`"
        assert err.position == SourcePosition(3, 7)
        assert err.source == "a.zed"
        assert err.field == "schema"
        assert str(errors.SchemaCompileError("whole text")) == "whole text"

    def test_source_positions_order(self) -> None:
        """Positions order by line, then column."""
        assert SourcePosition(1, 9) < SourcePosition(2, 1) < SourcePosition(2, 3)

    def test_unknown_names_are_attributes(self) -> None:
        """Unknown definition/relation errors name what is missing in message and attributes."""
        relation = errors.UnknownRelationError("document", "veiwer")
        assert (relation.definition, relation.relation) == ("document", "veiwer")
        assert "veiwer" in str(relation)
        assert "document" in str(relation)
        definition = errors.UnknownDefinitionError("documnet")
        assert definition.definition == "documnet"
        assert "documnet" in str(definition)

    def test_other_attributes(self) -> None:
        """Errors carry what a client needs: depth, relationship, field, column."""
        assert errors.MaxDepthExceededError(50).max_depth == 50
        assert "50" in str(errors.MaxDepthExceededError(50))
        exists = errors.RelationshipExistsError("document:1#viewer@user:ann")
        assert exists.relationship == "document:1#viewer@user:ann"
        refused = errors.SchemaChangeRefusedError("no", relationship="document:1#viewer@user:ann")
        assert refused.relationship == "document:1#viewer@user:ann"
        bad = errors.InvalidRelationshipError("bad", column=4, field="relation")
        assert (bad.column, bad.field) == (4, "relation")

    @pytest.mark.parametrize("cls", [errors.InvalidRequestError, errors.InvalidRevisionError])
    def test_invalid_requests_are_value_errors(self, cls: type[errors.InvalidRequestError]) -> None:
        """Invalid input errors are also ValueErrors and RebacErrors."""
        err = cls("bad", field="token")
        assert isinstance(err, ValueError)
        assert isinstance(err, RebacError)
        assert err.field == "token"
