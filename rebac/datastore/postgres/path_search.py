"""`PathSearchReader.search_paths` for Postgres: every item's walk in one recursive statement.

The statement walks states (item, object, node, step) with one index scan of each state's
object, whatever its relations: the plan, sent as JSON (type -> node -> relation -> action:
"leaf" and/or "to" a node), picks the rows that lead on or are leaves, so a state costs one
scan however many steps leave it. Each subject's closures (the `closure_nodes` groups that
hold it, with their levels) are walked upward once per subject, only for the items that met
a subject set and no plain match, and that the caller did not exempt.
The rows come back tagged by kind and `outcomes` folds them into one `PathOutcome` per
item, by the rules of the reference (`rebac.datastore.path_search.search_paths_by_queries`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from rebac.datastore.path_search import OutcomeFacts, PathOutcome, PathPlan
from rebac.datastore.postgres.visibility import LIVE_AT

__all__ = ["SEARCH_PATHS_SQL", "outcomes", "plan_parameters"]


# The snapshot parsed once per statement (an InitPlan), not once per row read: about 5% of
# the statement's time over a hundred items.
_LIVE = (
    LIVE_AT.replace("created_xid", "r.created_xid")
    .replace("deleted_xid", "r.deleted_xid")
    .replace("$1::text::pg_snapshot", "(SELECT $1::text::pg_snapshot)")
)
_CONDITIONAL = "(r.caveat_name IS NOT NULL OR r.expiration IS NOT NULL)"

SEARCH_PATHS_SQL = f"""
WITH RECURSIVE walk(item, sid, t, id, p, srel, n, flag) AS (
    SELECT u.item::int, u.sid COLLATE "C", u.rtype COLLATE "C", u.rid COLLATE "C",
           u.start COLLATE "C", NULL::text COLLATE "C", 0, false
    FROM unnest($4::text[], $5::text[], $2::text[], $3::text[])
        WITH ORDINALITY AS u(rid, sid, rtype, start, item)
  UNION
    SELECT w.item, w.sid, r.subject_type, r.subject_id,
           CASE WHEN r.subject_id <> '*' THEN (s.a ->> 'to') COLLATE "C" END,
           CASE WHEN s.a ? 'leaf' AND (
               r.subject_relation <> '' OR (r.subject_type = $7 AND r.subject_id IN (w.sid, '*'))
           ) THEN r.subject_relation END,
           w.n + 1, {_CONDITIONAL}
    FROM walk w
    CROSS JOIN LATERAL (
        SELECT r.relation, r.subject_type, r.subject_id, r.subject_relation, r.caveat_name, r.expiration
        FROM rebac_relationship r
        WHERE r.resource_type = w.t AND r.resource_id = w.id AND {_LIVE}
    ) r
    CROSS JOIN LATERAL (SELECT $6::jsonb -> w.t -> w.p -> r.relation AS a) s
    WHERE w.p IS NOT NULL AND w.n < $8 AND (
        (s.a ? 'to' AND r.subject_id <> '*')
        OR (s.a ? 'leaf' AND (
            r.subject_relation <> '' OR (r.subject_type = $7 AND r.subject_id IN (w.sid, '*'))
        ))
    )
),
need(item, sid) AS (
    SELECT DISTINCT w.item, w.sid FROM walk w
    WHERE w.srel <> '' AND $11 > 0 AND NOT ($12::bool[])[w.item]
        AND NOT EXISTS (SELECT 1 FROM walk m WHERE m.item = w.item AND m.srel = '')
),
up(sid, gt, gr, gid, lvl, flag) AS (
    SELECT i.sid, r.resource_type, r.relation, r.resource_id, 0, {_CONDITIONAL}
    FROM (SELECT DISTINCT sid FROM need) i
    CROSS JOIN LATERAL (
        SELECT r.resource_type, r.relation, r.resource_id, r.caveat_name, r.expiration
        FROM rebac_relationship r
        WHERE r.subject_type = $7 AND r.subject_id IN (i.sid, '*') AND r.subject_relation = ''
            AND r.resource_type = ANY($9::text[]) AND r.relation = ANY($10::text[]) AND {_LIVE}
    ) r
    WHERE (r.resource_type, r.relation) IN (SELECT * FROM unnest($9::text[], $10::text[]))
  UNION
    SELECT up.sid, r.resource_type, r.relation, r.resource_id, up.lvl + 1, {_CONDITIONAL}
    FROM up
    JOIN rebac_relationship r ON r.subject_type = up.gt AND r.subject_id = up.gid
        AND r.subject_relation = up.gr AND r.resource_type = up.gt AND r.relation = up.gr
    WHERE up.lvl + 1 < $11 AND {_LIVE}
),
closure AS (SELECT sid, gt, gr, gid, min(lvl) AS lvl FROM up GROUP BY sid, gt, gr, gid)
SELECT 0 AS kind, w.item, w.n, w.t, w.id, w.srel, w.flag, c.lvl
FROM walk w
LEFT JOIN need ON need.item = w.item
LEFT JOIN closure c ON need.item IS NOT NULL
    AND c.sid = w.sid AND c.gt = w.t AND c.gr = w.srel AND c.gid = w.id
WHERE w.srel IS NOT NULL
UNION ALL
SELECT 1, item, max(n), NULL, NULL, NULL, bool_or(flag), NULL
FROM walk WHERE p IS NOT NULL GROUP BY item
UNION ALL
SELECT 2, need.item, NULL, NULL, NULL, NULL, true, NULL FROM need
WHERE EXISTS (SELECT 1 FROM up WHERE up.sid = need.sid AND up.flag)
"""  # noqa: S608 - column names are constants; every value is a $n parameter
"""$2/$3 each item's resource type and start node, $4/$5 resource and subject ids, $6 steps (JSON), $7 subject
type, $8 max steps, $9/$10 closure nodes, $11 closure levels, $12 items whose closures are
skipped. A walk row is a state (`p`, the
node reached through an arrow), a leaf (`srel`: '' for the subject or its wildcard, else the
subject set's relation), or both. Rows out: (kind, item, ...): kind 0 a leaf row (step + 1,
subject, conditional, closure level), 1 an item's deepest state and whether an arrow row it
followed was conditional, 2 an item whose closure read a conditional row. Closures are walked
for the items (`need`) that met a subject set and no plain match, once per subject: a bulk of
one user's checks walks that user's groups once."""


@lru_cache(maxsize=64)
def plan_parameters(plan: PathPlan) -> tuple[str, list[str], list[str]]:
    """($6, $9, $10) for `plan`: the steps as JSON and the closure nodes as two arrays.

    $6 maps type -> node -> relation -> action, where an action has "leaf" (the rows are
    leaves) and/or "to" (the node their subjects' objects are reached at): at most one of
    each per relation (`PathPlan` guarantees it), so the statement looks an action up
    instead of expanding a list per row.
    """
    steps: dict[str, dict[str, dict[str, dict[str, object]]]] = {}
    for step in plan.steps:
        by_relation = steps.setdefault(step.resource_type, {}).setdefault(step.node, {})
        action = by_relation.setdefault(step.relation, {})
        if step.target is None:
            action["leaf"] = True
        else:
            action["to"] = step.target
    return (
        json.dumps(steps, sort_keys=True),
        [node[0] for node in plan.closure_nodes],
        [node[1] for node in plan.closure_nodes],
    )


def outcomes(plan: PathPlan, count: int, rows: Sequence[Any], max_steps: int) -> list[PathOutcome]:
    """Fold `SEARCH_PATHS_SQL`'s rows into one `PathOutcome` per item (1-based item numbers)."""
    facts = [OutcomeFacts() for _ in range(count)]
    for kind, item, n, stype, sid, srel, flag, level in rows:
        item_facts = facts[item - 1]
        if kind == 1:
            item_facts.deepest = n
            item_facts.mark_if(flag)
        elif kind == 2:
            item_facts.marked = True
        elif not srel:  # the subject itself or its wildcard (the statement keeps no other plain row)
            item_facts.plain_match(n - 1, flag)
        else:
            item_facts.subject_set(plan, (stype, srel), sid, n - 1, flag, level)
    return [item_facts.outcome(max_steps) for item_facts in facts]
