"""Check over a request's prefetched rows in one synchronous pass: the cold-check fast path.

The async evaluator (`check.py`) pays for a coroutine, a request object, cache keys and a
memo entry per sub-problem, and a check through a ten-level folder chain has dozens of
sub-problems. Once `Engine._warm` has read the rows a question needs (`prefetch.py`) and
the subject's nested-group closures (`closure.py`), the rest is plain computation: this
module does it directly, id by id, with a memo per pass.

It answers exactly as the async evaluator would, or not at all:

- it answers only where the answer is certain and unconditional: it gives up on any row
  with a caveat or an expiration, on a cycle in the data (the async evaluator's cycle cut
  makes such answers uncacheable), and wherever the depth left would run out (so it never
  raises MaxDepthExceededError: the async evaluator raises it, or not, by its own rules);
- data it lacks (rows outside the prefetch, a closure or a chain height not yet loaded) is
  loaded and the pass runs again, a bounded number of times;
- when it gives up, `check_prefetched` returns None and the caller runs the async
  evaluator, which is the reference for every rule.

Height bookkeeping mirrors `DispatchCheckResponse.depth_required`: a node evaluated with
`r` dispatch levels left succeeds iff ``r >= height``, where a node without sub-problems
has height 1 and each sub-problem adds one level.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from rebac.datastore.filters import RelationshipFilter
from rebac.engine.closure import UNKNOWN, Closure, is_closure_node
from rebac.engine.dispatch import DispatchCheckRequest, DispatchCheckResponse
from rebac.engine.membership import MembershipSet
from rebac.engine.reachability import Reachability
from rebac.schema.definitions import (
    ArrowFunction,
    CompiledSchema,
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
from rebac.tuples import SubjectRef

if TYPE_CHECKING:
    from rebac.tuples import Relationship

__all__ = ["MAX_LOADS", "check_prefetched"]

MAX_LOADS = 8
"""Loads (a read, a closure, a chain height) one check may wait for before giving up."""

_Key = tuple[str, str, str]


class _GiveUp(Exception):  # noqa: N818 - control flow: "the async evaluator answers this"
    pass


class _Missing(Exception):  # noqa: N818 - control flow: "load this, then run the pass again"
    def __init__(self, load: Callable[[], Awaitable[object]]) -> None:
        super().__init__()
        self.load = load


async def check_prefetched(request: DispatchCheckRequest) -> DispatchCheckResponse | None:
    """`request` answered from the prefetched rows, or None when the async evaluator must answer.

    Needs `request.scope.prefetch` to hold rows (it does after `Engine._warm` walked an
    arrow); returns None at once otherwise. Errors of the loads it makes (datastore
    errors) propagate, exactly as they would from the async evaluator's reads.
    """
    scope = request.scope
    store = scope.prefetch
    if store is None or not len(store) or scope.closures is None:
        return None
    for _ in range(MAX_LOADS + 1):
        try:
            return _Pass(request).run()
        except _GiveUp:
            return None
        except _Missing as missing:
            await missing.load()
    return None


# Compiled forms of a rewrite (tuples: opcode first), built once per schema and subject shape.
_FALSE, _COMPUTED, _ARROW, _UNION, _INTERSECTION, _EXCLUSION, _THIS, _NIL = range(8)
_Code = tuple[Any, ...]

# Kinds of a (type, relation) entry in a program table.
_PRUNED, _RELATION, _CLOSURE_RELATION, _PERMISSION = range(4)
_Entry = tuple[int, _Code | None]

_TABLES: WeakKeyDictionary[Reachability, dict[tuple[str, str | None], _Table]] = WeakKeyDictionary()


class _Table:
    """What each (type, relation) is for one schema and subject shape, looked up once.

    An entry is (kind, compiled rewrite): pruned by the schema (the subject can never be a
    member), a stored relation (answered from a closure when it is a closure node), or a
    permission. A missing definition or member has no entry (the pass gives up).
    """

    def __init__(self, schema: CompiledSchema, reachability: Reachability, subject: SubjectRef) -> None:
        self.schema = schema
        self.reachability = reachability
        self.subject = subject
        self.entries: dict[tuple[str, str], _Entry | None] = {}

    @classmethod
    def of(cls, schema: CompiledSchema, reachability: Reachability, subject: SubjectRef) -> _Table:
        tables = _TABLES.get(reachability)
        if tables is None:
            tables = _TABLES[reachability] = {}
        shape = (subject.type, subject.relation)
        table = tables.get(shape)
        if table is None:
            probe = SubjectRef(subject.type, "probe", subject.relation)
            table = tables[shape] = cls(schema, reachability, probe)
        return table

    def entry(self, resource_type: str, relation: str) -> _Entry | None:
        key = (resource_type, relation)
        try:
            return self.entries[key]
        except KeyError:
            entry = self.entries[key] = self._build(resource_type, relation)
            return entry

    def _build(self, resource_type: str, relation: str) -> _Entry | None:
        definition = self.schema.definition(resource_type)
        member = definition.member(relation) if definition is not None else None
        if member is None:
            return None
        subject = self.subject
        if not self.reachability.can_reach(resource_type, relation, subject):
            return (_PRUNED, None)
        if isinstance(member, Relation):
            closure = subject.relation is None and is_closure_node(
                self.schema, resource_type, relation, subject.type
            )
            return (_CLOSURE_RELATION if closure else _RELATION, None)
        return (_PERMISSION, self._compile(member.rewrite, resource_type))

    def _compile(self, node: Rewrite, resource_type: str) -> _Code:  # noqa: PLR0911 - one per node kind
        match node:
            case ComputedUserset(relation=computed):
                if not self.reachability.can_reach(resource_type, computed, self.subject):
                    return (_FALSE,)
                return (_COMPUTED, computed)
            case TupleToUserset():
                every = node.function is ArrowFunction.ALL
                return (_ARROW, node.tupleset_relation, node.computed_relation, every)
            case Union(children=children):
                return (_UNION, tuple(self._compile(c, resource_type) for c in children))
            case Intersection(children=children):
                return (_INTERSECTION, tuple(self._compile(c, resource_type) for c in children))
            case Exclusion(base=base, subtracted=subtracted):
                compiled = self._compile(base, resource_type)
                return (_EXCLUSION, compiled, self._compile(subtracted, resource_type))
            case This():
                return (_THIS,)
            case Nil():
                return (_NIL,)
        raise _GiveUp  # pragma: no cover - the ADT is closed


class _Pass:
    """One synchronous evaluation of a root request; raises _GiveUp or _Missing."""

    def __init__(self, request: DispatchCheckRequest) -> None:
        scope = request.scope
        self.request = request
        self.scope = scope
        subject = request.subject
        self.subject = subject
        self.table = _Table.of(scope.schema, scope.reachability, subject)
        self.self_key = None if subject.relation is None else (subject.type, subject.relation, subject.id)
        self.store = scope.prefetch
        self.closures = scope.closures
        self.memo: dict[_Key, tuple[bool, int]] = {}
        self.active: set[_Key] = set()
        self.pools: dict[tuple[str, str], frozenset[str]] = {}

    def run(self) -> DispatchCheckResponse:
        req = self.request
        found: list[str] = []
        height = 1
        for rid in req.resource_ids:
            member, used = self.node(req.resource_type, req.relation, rid, req.depth_remaining)
            height = max(height, used)
            if member:
                found.append(rid)
        return DispatchCheckResponse(members=MembershipSet.of(*found), depth_required=height)

    # ------------------------------------------------------------------ nodes

    def child(self, resource_type: str, relation: str, resource_id: str, left: int) -> tuple[bool, int]:
        """A sub-problem one level down from a node with `left` levels: (member, its height + 1).

        Mirrors `_Evaluation._dispatch`: the schema prunes first (no level used), then
        cycles and depth.
        """
        entry = self.table.entry(resource_type, relation)
        if entry is not None and entry[0] == _PRUNED:
            return False, 0
        key = (resource_type, relation, resource_id)
        if key in self.active:
            raise _GiveUp  # a cycle: the async evaluator cuts it and never caches the answer
        member, height = self.node(resource_type, relation, resource_id, left - 1, key, entry)
        return member, height + 1

    def node(  # noqa: PLR0917, C901 - the hot path, kept in one frame
        self,
        resource_type: str,
        relation: str,
        resource_id: str,
        left: int,
        key: _Key | None = None,
        entry: _Entry | None = None,
    ) -> tuple[bool, int]:
        """(Whether the subject has `relation` on the object, the height used), with `left` levels."""
        if left <= 0:
            raise _GiveUp  # the async evaluator raises MaxDepthExceededError (or finds another way)
        if key is None:
            key = (resource_type, relation, resource_id)
        known = self.memo.get(key)
        if known is not None:
            if left < known[1]:
                raise _GiveUp
            return known
        if key == self.self_key:
            return True, 1  # a subject set is a member of itself
        if entry is None:
            entry = self.table.entry(resource_type, relation)
            if entry is None:
                raise _GiveUp  # the async evaluator raises the unknown-name error
        kind = entry[0]
        if kind == _PRUNED:
            return False, 1
        active = self.active
        active.add(key)
        try:
            if kind == _PERMISSION:
                code = entry[1]
                assert code is not None  # noqa: S101 - permissions always carry their code
                result = self.rewrite(code, resource_type, relation, resource_id, left)
            elif kind == _CLOSURE_RELATION:
                result = self.relation(resource_type, relation, resource_id, left)
            else:
                result = self.direct(resource_type, relation, resource_id, left)
        finally:
            active.discard(key)
        self.memo[key] = result
        return result

    def relation(self, resource_type: str, relation: str, resource_id: str, left: int) -> tuple[bool, int]:
        """A closure node: from the subject's closure when it is usable, else the rows."""
        closures = self.closures
        assert closures is not None  # noqa: S101 - check_prefetched runs only with closures
        known = closures.known(resource_type, relation, self.subject)
        if known is UNKNOWN:
            subject = self.subject
            raise _Missing(lambda: closures.get(resource_type, relation, subject))
        if isinstance(known, Closure):
            level = known.levels.get(resource_id)
            if level is not None:
                if level >= left:
                    raise _GiveUp  # deeper than the depth left: the walk decides
                return True, level + 1
            if not self.chain_fits(resource_type, relation, resource_id, left):
                raise _GiveUp  # a chain below may be too deep: the walk decides
            return False, 1
        return self.direct(resource_type, relation, resource_id, left)

    def chain_fits(self, resource_type: str, relation: str, resource_id: str, left: int) -> bool:
        """True if no subject-set chain below `resource_id` reaches `left` rows (see `_from_closure`)."""
        closures = self.closures
        assert closures is not None  # noqa: S101 - only called where closures apply
        pool = self.pools.get((resource_type, relation))
        if pool is None:
            store = self.store
            pool = frozenset() if store is None else store.subject_set_ids(resource_type, relation)
            self.pools[(resource_type, relation)] = pool
        ids = (resource_id,)
        reaches = closures.known_chain_reaches(resource_type, relation, ids, left, pool=pool)
        if reaches is None:
            raise _Missing(lambda: closures.chain_reaches(resource_type, relation, ids, left, pool=pool))
        return not reaches

    def rows(self, resource_type: str, relation: str, resource_id: str) -> list[Relationship]:
        """The complete rows of the object's relation; gives up on a caveat or an expiration."""
        store = self.store
        assert store is not None  # noqa: S101 - check_prefetched runs only with a store
        rows = store.get(resource_type, relation, resource_id)
        if rows is None:
            raise _Missing(lambda: self.load_rows(resource_type, relation, resource_id))
        for row in rows:
            if row.caveat is not None or row.expiration is not None:
                raise _GiveUp  # conditions and validity bounds: the async evaluator's rules
        return rows

    async def load_rows(self, resource_type: str, relation: str, resource_id: str) -> None:
        scope = self.scope
        filter_ = RelationshipFilter(
            resource_type=resource_type, resource_ids=(resource_id,), relation=relation
        )
        async with scope.query_limit:
            scope.stats.datastore_queries += 1
            rows = [r async for r in scope.reader.query_relationships(filter_)]
        store = self.store
        assert store is not None  # noqa: S101 - check_prefetched runs only with a store
        store.put(resource_type, relation, resource_id, rows)

    def direct(self, resource_type: str, relation: str, resource_id: str, left: int) -> tuple[bool, int]:
        """Stored directly, or a member of a subject set stored there (`_Evaluation._direct`)."""
        subject = self.subject
        nested: list[tuple[str, str, str]] = []
        for row in self.rows(resource_type, relation, resource_id):
            stored = row.subject
            if stored == subject or (
                stored.is_wildcard and subject.relation is None and stored.type == subject.type
            ):
                return True, 1
            if stored.relation is not None and not stored.is_wildcard:
                nested.append((stored.type, stored.relation, stored.id))
        height = 1
        for stype, srel, sid in nested:
            member, used = self.child(stype, srel, sid, left)
            height = max(height, used)
            if member:
                return True, height
        return False, height

    def rewrite(  # noqa: PLR0911, C901 - a return per opcode, as in `_Evaluation._rewrite`
        self, code: _Code, resource_type: str, relation: str, resource_id: str, left: int
    ) -> tuple[bool, int]:
        op = code[0]
        if op == _COMPUTED:
            return self.child(resource_type, code[1], resource_id, left)
        if op == _ARROW:
            return self.arrow(code, resource_type, resource_id, left)
        if op == _UNION:
            height = 1
            for child in code[1]:
                member, used = self.rewrite(child, resource_type, relation, resource_id, left)
                height = max(height, used)
                if member:
                    return True, height
            return False, height
        if op == _INTERSECTION:
            height = 1
            for child in code[1]:
                member, used = self.rewrite(child, resource_type, relation, resource_id, left)
                height = max(height, used)
                if not member:
                    return False, height
            return True, height
        if op == _EXCLUSION:
            member, height = self.rewrite(code[1], resource_type, relation, resource_id, left)
            if not member:
                return False, height
            removed, used = self.rewrite(code[2], resource_type, relation, resource_id, left)
            return not removed, max(height, used)
        if op == _THIS:
            return self.direct(resource_type, relation, resource_id, left)
        if op == _FALSE:
            return False, 0
        return False, 1  # _NIL

    def arrow(self, code: _Code, resource_type: str, resource_id: str, left: int) -> tuple[bool, int]:
        """`tupleset->computed` or `tupleset.all(computed)` (`_Evaluation._arrow`)."""
        _, tupleset_relation, computed, every = code
        tupleset = self.table.entry(resource_type, tupleset_relation)
        if tupleset is None or tupleset[0] == _PERMISSION:
            raise _GiveUp  # the async evaluator raises the unknown-name error
        height = 1
        seen = False
        for row in self.rows(resource_type, tupleset_relation, resource_id):
            stored = row.subject
            if stored.is_wildcard:
                continue
            seen = True
            if self.table.entry(stored.type, computed) is None:
                # SpiceDB: an arrow to a type without the relation finds nothing (`.all` fails).
                if every:
                    return False, height
                continue
            member, used = self.child(stored.type, computed, stored.id, left)
            height = max(height, used)
            if member and not every:
                return True, height
            if not member and every:
                return False, height
        return every and seen, height
