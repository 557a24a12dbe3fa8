"""Expand: the userset tree behind `resource#relation`, one level or fully recursive."""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from rebac.datastore.filters import RelationshipFilter
from rebac.engine.check import is_live
from rebac.engine.dispatch import NodeKey, RequestScope
from rebac.engine.requests import ExpandOperation, ExpandTree
from rebac.errors import MaxDepthExceededError, UnknownDefinitionError, UnknownRelationError
from rebac.schema.definitions import (
    ArrowFunction,
    ComputedUserset,
    Exclusion,
    Intersection,
    Nil,
    Relation,
    Rewrite,
    This,
    TupleToUserset,
    Union,
)
from rebac.tuples import ObjectRef, Relationship, SubjectRef

__all__ = ["expand_tree"]


async def expand_tree(
    scope: RequestScope, resource: ObjectRef, relation: str, *, recursive: bool
) -> ExpandTree:
    """The tree for `resource#relation`.

    One level (`recursive=False`): a relation is a LEAF of its stored subjects; a
    permission mirrors its rewrite, with computed usersets and arrows as LEAFs naming the
    usersets (``doc:1#owner``, ``folder:f#view``). Recursive: those usersets and stored
    subject sets are expanded in turn; a userset already on the path is left as a LEAF
    naming it (cycles terminate). Expired relationships are left out; caveated ones are
    included, their caveat named in the leaf's `subject_caveats` (and, for a subject set or
    arrow row that leads further, in the `caveat` of the subtree it leads to). Arrow nodes
    are labelled with the arrow (``parent->edit``, ``parent.all(edit)``) and one-level
    computed usersets with their relation. Raises UnknownDefinitionError /
    UnknownRelationError, MaxDepthExceededError.
    """
    return await _Expander(scope, recursive=recursive).node(resource, relation, frozenset(), 0)


class _Expander:
    def __init__(self, scope: RequestScope, *, recursive: bool) -> None:
        self.scope = scope
        self.recursive = recursive

    async def _rows(self, resource: ObjectRef, relation: str) -> list[Relationship]:
        scope = self.scope
        filter_ = RelationshipFilter(
            resource_type=resource.type, resource_ids=(resource.id,), relation=relation
        )
        async with scope.query_limit:
            scope.stats.datastore_queries += 1
            return [r async for r in scope.reader.query_relationships(filter_) if is_live(r, scope.now)]

    async def node(
        self, resource: ObjectRef, relation: str, path: frozenset[NodeKey], depth: int
    ) -> ExpandTree:
        if depth >= self.scope.max_depth:
            raise MaxDepthExceededError(self.scope.max_depth)
        definition = self.scope.schema.definition(resource.type)
        if definition is None:
            raise UnknownDefinitionError(resource.type)
        member = definition.member(relation)
        if member is None:
            raise UnknownRelationError(resource.type, relation)
        key = (resource.type, relation, resource.id)
        if key in path:
            return ExpandTree(
                resource, relation, ExpandOperation.LEAF, subjects=(_userset(resource, relation),)
            )
        path = path | {key}
        if isinstance(member, Relation):
            return await self._stored(resource, relation, path, depth)
        return await self._rewrite(member.rewrite, resource, relation, path, depth)

    async def _stored(
        self, resource: ObjectRef, relation: str, path: frozenset[NodeKey], depth: int
    ) -> ExpandTree:
        rows = sorted(await self._rows(resource, relation), key=lambda r: r.subject)
        subjects = tuple(r.subject for r in rows)
        caveats = tuple(_caveat_name(r) for r in rows)
        leaf = ExpandTree(
            resource,
            relation,
            ExpandOperation.LEAF,
            subjects=subjects,
            subject_caveats=caveats if any(caveats) else (),
        )
        nested = [r for r in rows if r.subject.relation is not None and not r.subject.is_wildcard]
        if not self.recursive or not nested:
            return leaf
        children = [
            _reached_through(
                await self.node(r.subject.object, r.subject.relation or "", path, depth + 1),
                _caveat_name(r),
            )
            for r in nested
        ]
        return ExpandTree(resource, relation, ExpandOperation.UNION, children=(leaf, *children))

    async def _rewrite(  # noqa: PLR0911 - a return per node kind
        self, node: Rewrite, resource: ObjectRef, relation: str, path: frozenset[NodeKey], depth: int
    ) -> ExpandTree:
        match node:
            case Nil():
                return ExpandTree(resource, relation, ExpandOperation.LEAF)
            case This():
                return await self._stored(resource, relation, path, depth)
            case ComputedUserset(relation=target):
                if self.recursive:
                    return await self.node(resource, target, path, depth + 1)
                return ExpandTree(
                    resource,
                    relation,
                    ExpandOperation.LEAF,
                    subjects=(_userset(resource, target),),
                    label=target,
                )
            case TupleToUserset():
                return await self._arrow(node, resource, relation, path, depth)
            case Union(children=children) | Intersection(children=children):
                op = ExpandOperation.UNION if isinstance(node, Union) else ExpandOperation.INTERSECTION
                kids = [await self._rewrite(c, resource, relation, path, depth) for c in children]
                return ExpandTree(resource, relation, op, children=tuple(kids))
            case Exclusion(base=base, subtracted=subtracted):
                kids = [await self._rewrite(c, resource, relation, path, depth) for c in (base, subtracted)]
                return ExpandTree(resource, relation, ExpandOperation.EXCLUSION, children=tuple(kids))
            case _:  # pragma: no cover - the ADT is closed
                assert_never(node)

    async def _arrow(
        self,
        arrow: TupleToUserset,
        resource: ObjectRef,
        relation: str,
        path: frozenset[NodeKey],
        depth: int,
    ) -> ExpandTree:
        # Each target object once; its caveat is "" if any row to it is uncaveated.
        targets: dict[ObjectRef, str] = {}
        for row in await self._rows(resource, arrow.tupleset_relation):
            stored = row.subject
            target_def = self.scope.schema.definition(stored.type)
            if stored.is_wildcard or target_def is None or target_def.member(arrow.computed_relation) is None:
                continue
            caveat = _caveat_name(row)
            if stored.object not in targets or not caveat:
                targets[stored.object] = caveat
        label = _arrow_label(arrow)
        op = ExpandOperation.UNION if arrow.function is ArrowFunction.ANY else ExpandOperation.INTERSECTION
        if not self.recursive:
            usersets = tuple(_userset(t, arrow.computed_relation) for t in targets)
            caveats = tuple(targets.values())
            if arrow.function is ArrowFunction.ANY:
                return ExpandTree(
                    resource,
                    relation,
                    ExpandOperation.LEAF,
                    subjects=usersets,
                    label=label,
                    subject_caveats=caveats if any(caveats) else (),
                )
            kids = tuple(
                ExpandTree(
                    resource,
                    relation,
                    ExpandOperation.LEAF,
                    subjects=(u,),
                    label=label,
                    subject_caveats=(c,) if c else (),
                )
                for u, c in zip(usersets, caveats, strict=True)
            )
            return ExpandTree(resource, relation, op, children=kids, label=label)
        expanded = [
            _reached_through(await self.node(t, arrow.computed_relation, path, depth + 1), caveat)
            for t, caveat in targets.items()
        ]
        return ExpandTree(resource, relation, op, children=tuple(expanded), label=label)


def _userset(resource: ObjectRef, relation: str) -> SubjectRef:
    return SubjectRef(resource.type, resource.id, relation)


def _caveat_name(row: Relationship) -> str:
    return row.caveat.name if row.caveat is not None else ""


def _reached_through(tree: ExpandTree, caveat: str) -> ExpandTree:
    """`tree`, marked as reached through a relationship with `caveat` (unchanged if none)."""
    return replace(tree, caveat=caveat) if caveat else tree


def _arrow_label(arrow: TupleToUserset) -> str:
    """The arrow as the schema spells it: ``parent->edit`` or ``parent.all(edit)``."""
    if arrow.function is ArrowFunction.ANY:
        return f"{arrow.tupleset_relation}->{arrow.computed_relation}"
    return f"{arrow.tupleset_relation}.all({arrow.computed_relation})"
