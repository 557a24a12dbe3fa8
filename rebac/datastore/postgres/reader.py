"""Reads at one revision: relationship filters as SQL over the MVCC columns, and the schema.

Visibility (DESIGN.md "Postgres"): a row is live at revision R when
``pg_visible_in_snapshot(created_xid, R) AND NOT pg_visible_in_snapshot(deleted_xid, R)``.
The snapshot travels as a text parameter, so one prepared statement per filter *shape*
serves every revision; asyncpg caches the prepared statements per connection.

Streams are paged internally by keyset (``key > last``) so no connection is held between
pages: a consumer may stop iterating at any time without leaking a connection.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Protocol, cast

import asyncpg

from rebac.datastore.filters import ANY_RELATION, RelationshipFilter
from rebac.datastore.path_search import DEFAULT_MAX_LEVELS, PathOutcome, PathPlan, per_item
from rebac.datastore.postgres.errors import map_asyncpg_errors
from rebac.datastore.postgres.path_search import SEARCH_PATHS_SQL, outcomes, plan_parameters
from rebac.datastore.postgres.revisions import PostgresRevision
from rebac.datastore.postgres.visibility import LIVE_AT
from rebac.errors import BugError, SchemaMissingError
from rebac.schema.definitions import CompiledSchema
from rebac.tuples import WILDCARD, ObjectRef, Relationship, RelationshipCaveat, SubjectRef

__all__ = ["PAGE_SIZE", "Executor", "PostgresReader", "SchemaCache", "build_query", "schema_hash"]

PAGE_SIZE = 1000
"""Rows fetched per round trip while streaming."""

_COLUMNS = (
    "resource_type, resource_id, relation, subject_type, subject_id, subject_relation, "
    "caveat_name, caveat_context::text, expiration"
)
_EDGE_COLUMNS = "resource_type, relation, resource_id, subject_id, caveat_name IS NOT NULL, expiration"
_KEY = "(resource_type, resource_id, relation, subject_type, subject_id, subject_relation)"

_R_COLUMNS = ", ".join(f"r.{c.strip()}" for c in _COLUMNS.split(","))
_R_LIVE = LIVE_AT.replace("created_xid", "r.created_xid").replace("deleted_xid", "r.deleted_xid")

WALK_SQL = f"""
WITH RECURSIVE reached(t, id) AS (
    SELECT $2::text COLLATE "C", unnest($3::text[]) COLLATE "C"
  UNION
    SELECT r.subject_type, r.subject_id FROM reached
    JOIN rebac_relationship r ON r.resource_type = reached.t AND r.resource_id = reached.id
    WHERE r.relation = ANY($4::text[]) AND r.subject_id <> '*' AND {_R_LIVE}
)
SELECT {_R_COLUMNS} FROM reached
JOIN rebac_relationship r ON r.resource_type = reached.t AND r.resource_id = reached.id
WHERE r.relation = ANY($5::text[]) AND {_R_LIVE}
LIMIT $6
"""  # noqa: S608 - column names are constants; every value is a $n parameter
"""`GraphReader.walk_relations` in one statement: $2 type, $3 ids, $4 follow, $5 relations."""

CLOSURE_SQL = f"""
WITH RECURSIVE up(id) AS (
    SELECT r.resource_id FROM rebac_relationship r
    WHERE r.subject_type = $4 AND r.subject_id = ANY(ARRAY[$5, '*']) AND r.subject_relation = ''
      AND r.resource_type = $2 AND r.relation = $3 AND {_R_LIVE}
  UNION
    SELECT r.resource_id FROM up
    JOIN rebac_relationship r ON r.subject_type = $2 AND r.subject_id = up.id AND r.subject_relation = $3
    WHERE r.resource_type = $2 AND r.relation = $3 AND {_R_LIVE}
)
(SELECT {_R_COLUMNS} FROM rebac_relationship r
 WHERE r.subject_type = $4 AND r.subject_id = ANY(ARRAY[$5, '*']) AND r.subject_relation = ''
   AND r.resource_type = $2 AND r.relation = $3 AND {_R_LIVE}
 UNION ALL
 SELECT {_R_COLUMNS} FROM up
 JOIN rebac_relationship r ON r.subject_type = $2 AND r.subject_id = up.id AND r.subject_relation = $3
 WHERE r.resource_type = $2 AND r.relation = $3 AND {_R_LIVE})
LIMIT $6
"""  # noqa: S608 - column names are constants; every value is a $n parameter
"""`GraphReader.subject_set_closure` in one statement: $2 type, $3 relation, $4/$5 subject."""

CLOSURES_SQL = CLOSURE_SQL.replace("ARRAY[$5, '*']", "$5::text[] || '*'::text")
"""`BatchClosureReader.subject_set_closures` in one statement: `CLOSURE_SQL` from many subjects.

Returns the union of their closures, each row once (groups shared by several subjects
are walked once); `subject_set_closures` splits it per subject in memory.
"""


def _shifted(sql: str, by: int) -> str:
    """`sql` with parameters $2.. renumbered by `by` ($1, the snapshot, is shared)."""
    return re.sub(r"\$([2-9])\b", lambda m: f"${int(m.group(1)) + by}", sql)


def _walk_closure_sql() -> str:
    walk_ctes, walk_select = WALK_SQL.split("\nSELECT ", 1)
    closure_ctes, closure_rows = _shifted(CLOSURE_SQL, 5).split("\n(SELECT ", 1)
    up_cte = closure_ctes.removeprefix("\nWITH RECURSIVE ")
    # Pieces of the constant statements above; every value stays a $n parameter.
    head = f"{walk_ctes.rstrip()},\n{up_cte.rstrip()}\n"
    walk = f"(SELECT 0 AS part, {walk_select.strip()})\n"
    closure = f"(SELECT 1 AS part, c.* FROM ((SELECT {closure_rows.strip()}) AS c)"  # noqa: S608
    return head + walk + "UNION ALL\n" + closure


WALK_CLOSURE_SQL = _walk_closure_sql()
"""`WalkClosureReader.walk_with_closure` in one statement: `WALK_SQL` ($2-$6) and `CLOSURE_SQL`
($7-$11), each with its own LIMIT, the rows tagged by `part` (0: walk, 1: closure)."""

HEIGHT_SQL = f"""
WITH RECURSIVE down(id, depth) AS (
    SELECT unnest($4::text[]) COLLATE "C", 0
  UNION
    SELECT s.subject_id, down.depth + 1 FROM down
    CROSS JOIN LATERAL (
        SELECT r.subject_id FROM rebac_relationship r
        WHERE r.resource_type = $2 AND r.resource_id = down.id AND r.relation = $3
          AND r.subject_type = $2 AND r.subject_relation = $3 AND {_R_LIVE}
        ORDER BY r.resource_type, r.resource_id, r.relation, r.subject_type, r.subject_id
    ) s
    WHERE down.depth < $5
)
SELECT coalesce(max(depth), 0) FROM down
"""  # noqa: S608 - column names are constants; every value is a $n parameter
"""`GraphReader.subject_set_height` in one statement: $2 type, $3 relation, $4 ids, $5 cap.

The ORDER BY (the key index's order) steers the planner to the key index, whose prefix pins
the subject type too: only subject-set rows are fetched, not a group's every user row
(half the time per visited group at 1M).
"""


class Executor(Protocol):
    """**Protocol:** something that runs a query: an asyncpg pool or one connection."""

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        """Run `query` with `args`; the result rows."""
        ...


def schema_hash(text: str) -> str:
    """The stable identity of a schema text (sha256 hex)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SchemaCache:
    """Compiled schemas by text hash: each distinct schema text is compiled once.

    Holds the `capacity` most recently used schemas. Safe to share between tasks (no awaits).
    """

    def __init__(self, capacity: int = 8) -> None:
        self._capacity = capacity
        self._compiled: OrderedDict[str, CompiledSchema] = OrderedDict()
        self._rows: OrderedDict[str, tuple[tuple[str, str] | None]] = OrderedDict()
        self._row_capacity = 1024
        self.compilations = 0
        """How many times a schema text was compiled (for tests and metrics)."""

    def row_at(self, snapshot: str) -> tuple[tuple[str, str] | None] | None:
        """The remembered (text, hash) at `snapshot`, boxed in a 1-tuple; None if unknown."""
        known = self._rows.get(snapshot)
        if known is not None:
            self._rows.move_to_end(snapshot)
        return known

    def remember_row(self, snapshot: str, row: tuple[str, str] | None) -> None:
        """Remember the schema row a reader at `snapshot` saw (bounded, LRU)."""
        self._rows[snapshot] = (row,)
        if len(self._rows) > self._row_capacity:
            self._rows.popitem(last=False)

    def compiled(self, text: str, digest: str) -> CompiledSchema:
        """The compiled schema for `text` (whose hash is `digest`), compiling on first use."""
        cached = self._compiled.get(digest)
        if cached is not None:
            self._compiled.move_to_end(digest)
            return cached
        from rebac.schema import compile_schema  # noqa: PLC0415 - the schema package imports datastore types

        compiled = compile_schema(text, source="stored schema")
        self.compilations += 1
        self._compiled[digest] = compiled
        if len(self._compiled) > self._capacity:
            self._compiled.popitem(last=False)
        return compiled


def build_query(
    filter: RelationshipFilter,  # noqa: A002 - the domain word
    *,
    after: Relationship | None,
    limit: int,
    reverse: bool,
) -> tuple[str, list[object]]:
    """SQL and parameters (after the snapshot, which is $1) for one page of `filter`.

    Ordering is always the key order of the protocol; `reverse` only documents the plan
    (the reverse index leads with the subject columns the filter pins).
    """
    del reverse  # both paths share one statement shape; the planner picks the index
    conditions, args = _where(filter)

    def param(value: object) -> str:
        args.append(value)
        return f"${len(args) + 1}"

    if after is not None:
        conditions.append(f"{_KEY} > ({', '.join(param(part) for part in after.key)})")
    # Column names are constants; every value is a $n parameter.
    where = " AND ".join(conditions)
    sql = (
        f"SELECT {_COLUMNS} FROM rebac_relationship WHERE {where} "  # noqa: S608
        f"ORDER BY {_KEY.strip('()')} LIMIT {param(limit)}"
    )
    return sql, args


def _where(filter: RelationshipFilter) -> tuple[list[str], list[object]]:  # noqa: A002 - the domain word
    """The live-row predicate and `filter`'s conditions, with their parameters from $2 on."""
    conditions = [LIVE_AT]
    args: list[object] = []

    def param(value: object) -> str:
        args.append(value)
        return f"${len(args) + 1}"

    if filter.resource_type is not None:
        conditions.append(f"resource_type = {param(filter.resource_type)}")
    if filter.resource_ids is not None:
        conditions.append(f"resource_id = ANY({param(list(filter.resource_ids))}::text[])")
    if filter.relation is not None:
        conditions.append(f"relation = {param(filter.relation)}")
    subject = filter.subject
    if subject is not None:
        conditions.append(f"subject_type = {param(subject.type)}")
        if subject.ids is not None:
            conditions.append(f"subject_id = ANY({param(list(subject.ids))}::text[])")
        if subject.relation is not ANY_RELATION:
            conditions.append(f"subject_relation = {param(subject.relation or '')}")
    return conditions, args


def relationship_from_row(row: Sequence[Any] | asyncpg.Record) -> Relationship:
    """Build a Relationship from a row in `_COLUMNS` order."""
    rtype, rid, relation, stype, sid, srel, caveat_name, caveat_context, expiration = row
    caveat = None
    if caveat_name is not None:
        caveat = RelationshipCaveat.of(caveat_name, json.loads(caveat_context) if caveat_context else None)
    return Relationship(
        ObjectRef(rtype, rid),
        relation,
        SubjectRef(stype, sid, srel or None),
        caveat,
        expiration,
    )


def _sorted_or_none(
    rows: Sequence[Sequence[Any] | asyncpg.Record], max_rows: int
) -> list[Relationship] | None:
    """Rows as relationships in key order, de-duplicated; None if more than `max_rows`."""
    if len(rows) > max_rows:
        return None
    found = {rel.key: rel for rel in map(relationship_from_row, rows)}
    return [found[key] for key in sorted(found)]


def _closure_of(start: list[Relationship], above: dict[str, list[Relationship]]) -> list[Relationship]:
    """`start` and, transitively, the rows whose subject set is a resource already reached.

    `above` maps a resource id X to the rows whose subject is ``T:X#r``; key order, each once.
    """
    found: dict[tuple[str, ...], Relationship] = {}
    reached: set[str] = set()
    frontier = start
    while frontier:
        step: list[Relationship] = []
        for row in frontier:
            if row.key in found:
                continue
            found[row.key] = row
            if row.resource.id not in reached:
                reached.add(row.resource.id)
                step.extend(above.get(row.resource.id, ()))
        frontier = step
    return [found[key] for key in sorted(found)]


class PostgresReader:
    """A Reader at one revision over an executor (the pool, or a transaction's connection).

    Cheap to create and safe to share between tasks of one request (each page is one
    independent query). Iterators are single-use.
    """

    def __init__(self, executor: Executor, revision: PostgresRevision, schemas: SchemaCache) -> None:
        self._executor = executor
        self._revision = revision
        self._schemas = schemas

    @property
    def revision(self) -> PostgresRevision:
        """The snapshot this reader sees."""
        return self._revision

    @property
    def _snapshot_text(self) -> str:
        return str(self._revision.snapshot)

    async def _fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        with map_asyncpg_errors():
            return await self._executor.fetch(query, self._snapshot_text, *args)

    async def read_schema_text(self) -> str | None:
        """The schema text live at this revision, or None if none was written."""
        row = await self._schema_row()
        return None if row is None else str(row[0])

    async def read_schema(self) -> CompiledSchema:
        """The compiled schema at this revision (compiled once per distinct text).

        SchemaMissingError if none was written.
        """
        row = await self._schema_row()
        if row is None:
            raise SchemaMissingError("no schema has been written yet")
        return self._schemas.compiled(row[0], row[1])

    def cached_schema(self) -> CompiledSchema | None:
        """`read_schema` if another reader at this snapshot already read it; None otherwise (no I/O)."""
        if type(self) is not PostgresReader:
            return None
        known = self._schemas.row_at(self._snapshot_text)
        if known is None or known[0] is None:
            return None
        row = known[0]
        return self._schemas.compiled(row[0], row[1])

    async def _schema_row(self) -> tuple[str, str] | None:
        # What a snapshot sees never changes, so a pool reader (not a transaction, which also
        # sees its own writes) may reuse the row another reader at this snapshot fetched.
        shareable = type(self) is PostgresReader
        if shareable:
            known = self._schemas.row_at(self._snapshot_text)
            if known is not None:
                return known[0]
        row = await self._fetch_schema_row()
        if shareable:
            self._schemas.remember_row(self._snapshot_text, row)
        return row

    async def _fetch_schema_row(self) -> tuple[str, str] | None:
        rows = await self._fetch(
            f"SELECT text, hash FROM rebac_schema WHERE {LIVE_AT} "  # noqa: S608 - constants
            "ORDER BY created_xid DESC LIMIT 1"
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def query_relationships(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the domain word
        *,
        limit: int | None = None,
        after: Relationship | None = None,
    ) -> AsyncIterator[Relationship]:
        """Live relationships matching `filter` in key order, strictly after `after`."""
        return self._stream(filter, limit=limit, after=after, reverse=False)

    async def walk_relations(
        self,
        resource_type: str,
        resource_ids: Sequence[str],
        *,
        follow: Sequence[str],
        relations: Sequence[str],
        max_rows: int,
    ) -> list[Relationship] | None:
        """See `GraphReader.walk_relations`: one recursive query (`WALK_SQL`)."""
        if not resource_ids:
            return []
        rows = await self._fetch(
            WALK_SQL, resource_type, list(resource_ids), list(follow), list(relations), max_rows + 1
        )
        return _sorted_or_none(rows, max_rows)

    async def subject_set_closure(
        self,
        resource_type: str,
        relation: str,
        subject_type: str,
        subject_id: str,
        *,
        max_rows: int,
    ) -> list[Relationship] | None:
        """See `GraphReader.subject_set_closure`: one recursive query (`CLOSURE_SQL`)."""
        rows = await self._fetch(CLOSURE_SQL, resource_type, relation, subject_type, subject_id, max_rows + 1)
        return _sorted_or_none(rows, max_rows)

    async def walk_with_closure(
        self,
        resource_type: str,
        resource_ids: Sequence[str],
        *,
        follow: Sequence[str],
        relations: Sequence[str],
        max_rows: int,
        closure: tuple[str, str, str, str],
        max_closure_rows: int,
    ) -> tuple[list[Relationship] | None, list[Relationship] | None]:
        """See `rebac.datastore.graph.WalkClosureReader`: one statement (`WALK_CLOSURE_SQL`)."""
        if not resource_ids:
            return [], await self.subject_set_closure(*closure, max_rows=max_closure_rows)
        rows = await self._fetch(
            WALK_CLOSURE_SQL,
            resource_type,
            list(resource_ids),
            list(follow),
            list(relations),
            max_rows + 1,
            *closure,
            max_closure_rows + 1,
        )
        walked = [row[1:] for row in rows if row[0] == 0]
        closed = [row[1:] for row in rows if row[0] == 1]
        return _sorted_or_none(walked, max_rows), _sorted_or_none(closed, max_closure_rows)

    async def subject_set_closures(
        self,
        resource_type: str,
        relation: str,
        subject_type: str,
        subject_ids: Sequence[str],
        *,
        max_rows: int,
    ) -> dict[str, list[Relationship]] | None:
        """See `rebac.datastore.graph.BatchClosureReader`: one recursive query (`CLOSURES_SQL`)."""
        if not subject_ids:
            return {}
        rows = await self._fetch(
            CLOSURES_SQL, resource_type, relation, subject_type, list(subject_ids), max_rows + 1
        )
        if len(rows) > max_rows:
            return None
        plain: dict[str, list[Relationship]] = {}
        above: dict[str, list[Relationship]] = {}
        for row in rows:
            relationship = relationship_from_row(row)
            subject = relationship.subject
            (plain if subject.relation is None else above).setdefault(subject.id, []).append(relationship)
        shared = plain.get(WILDCARD, [])
        return {sid: _closure_of([*plain.get(sid, ()), *shared], above) for sid in subject_ids}

    async def search_paths(
        self,
        plan: PathPlan,
        items: Sequence[tuple[str, str]],
        *,
        max_steps: int,
        max_levels: int = DEFAULT_MAX_LEVELS,
        skip_closures: Sequence[bool] = (),
        roots: Sequence[tuple[str, str]] = (),
    ) -> list[PathOutcome]:
        """See `rebac.datastore.path_search.PathSearchReader`: one recursive query (`SEARCH_PATHS_SQL`)."""
        if not items:
            return []
        steps, closure_types, closure_relations = plan_parameters(plan)
        starts = per_item(roots, len(items), default=(plan.resource_type, plan.start))
        rows = await self._fetch(
            SEARCH_PATHS_SQL,
            [resource_type for resource_type, _ in starts],
            [node for _, node in starts],
            [rid for rid, _ in items],
            [sid for _, sid in items],
            steps,
            plan.subject_type,
            max_steps,
            closure_types,
            closure_relations,
            max_levels,
            per_item(skip_closures, len(items), default=False),
        )
        return outcomes(plan, len(items), rows, max_steps)

    async def subject_set_height(
        self,
        resource_type: str,
        relation: str,
        resource_ids: Sequence[str],
        *,
        max_height: int,
    ) -> int:
        """See `GraphReader.subject_set_height`: one recursive query (`HEIGHT_SQL`)."""
        if not resource_ids or max_height <= 0:
            return 0
        rows = await self._fetch(HEIGHT_SQL, resource_type, relation, list(resource_ids), max_height)
        return int(rows[0][0])

    def reverse_query_relationships(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the domain word
        *,
        limit: int | None = None,
        after: Relationship | None = None,
    ) -> AsyncIterator[Relationship]:
        """Like `query_relationships` for a filter with `subject` set; BugError otherwise."""
        if filter.subject is None:
            raise BugError("reverse_query_relationships needs filter.subject")
        return self._stream(filter, limit=limit, after=after, reverse=True)

    async def reverse_edges(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the domain word
        *,
        resource_types: Sequence[str] | None = None,
    ) -> Sequence[tuple[str, str, str, str, bool, datetime | None]]:
        """The live rows matching `filter` (which sets `subject`) as LookupResources edges.

        One row per relationship: ``(resource_type, relation, resource_id, subject_id,
        caveated, expiration)``, in no particular order, in one round trip. The reverse walk
        needs no more than that (`rebac.engine.lookup_resources.EdgeReader`); building whole
        relationships page by page in key order cost it most of its time (13,764 rows:
        350 ms and 80 ms of CPU paged, 30 ms and 11 ms so). `resource_types` (when the
        filter names no resource type) keeps the rows of those types only.
        """
        if filter.subject is None:
            raise BugError("reverse_edges needs filter.subject")
        if resource_types is not None and filter.resource_type is not None:
            raise BugError("reverse_edges takes resource_types or filter.resource_type, not both")
        if (
            filter.resource_ids == ()
            or filter.subject.ids == ()
            or (resource_types is not None and not resource_types)
        ):
            return []  # an empty id list matches nothing; skip the round trip
        conditions, args = _where(filter)
        if resource_types is not None:
            args.append(list(resource_types))
            conditions.append(f"resource_type = ANY(${len(args) + 1}::text[])")
        sql = f"SELECT {_EDGE_COLUMNS} FROM rebac_relationship WHERE {' AND '.join(conditions)}"  # noqa: S608
        rows = await self._fetch(sql, *args)
        # asyncpg Records unpack and index like these tuples; copying them would cost per row.
        return cast("list[tuple[str, str, str, str, bool, datetime | None]]", rows)

    async def _stream(
        self,
        filter: RelationshipFilter,  # noqa: A002 - the domain word
        *,
        limit: int | None,
        after: Relationship | None,
        reverse: bool,
    ) -> AsyncIterator[Relationship]:
        if limit is not None and limit < 0:
            raise BugError(f"negative limit {limit}")
        if filter.resource_ids == () or (filter.subject is not None and filter.subject.ids == ()):
            return  # an empty id list matches nothing; skip the round trip
        remaining = limit
        while remaining is None or remaining > 0:
            page_size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            sql, args = build_query(filter, after=after, limit=page_size, reverse=reverse)
            rows = await self._fetch(sql, *args)
            for row in rows:
                yield relationship_from_row(row)
            if len(rows) < page_size:
                return
            after = relationship_from_row(rows[-1])
            if remaining is not None:
                remaining -= len(rows)
