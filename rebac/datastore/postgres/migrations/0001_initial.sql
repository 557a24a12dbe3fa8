-- rebac 0001: relationship, transaction and schema tables with application-level MVCC.
--
-- Every versioned row carries created_xid / deleted_xid (xid8). A read at revision R keeps
-- rows with pg_visible_in_snapshot(created_xid, R) AND NOT pg_visible_in_snapshot(deleted_xid, R).
-- deleted_xid defaults to the largest xid8, which no snapshot ever sees: "not deleted".
-- Text columns use COLLATE "C" so ORDER BY matches Python's code-point order of Relationship.key.

CREATE TABLE rebac_transaction (
    xid        xid8        PRIMARY KEY,
    snapshot   pg_snapshot NOT NULL,
    timestamp  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rebac_transaction_timestamp_idx ON rebac_transaction (timestamp);

CREATE TABLE rebac_relationship (
    resource_type    text COLLATE "C" NOT NULL,
    resource_id      text COLLATE "C" NOT NULL,
    relation         text COLLATE "C" NOT NULL,
    subject_type     text COLLATE "C" NOT NULL,
    subject_id       text COLLATE "C" NOT NULL,
    subject_relation text COLLATE "C" NOT NULL DEFAULT '',   -- '' = a plain subject
    caveat_name      text,
    caveat_context   jsonb,
    expiration       timestamptz,
    created_xid      xid8 NOT NULL DEFAULT pg_current_xact_id(),
    deleted_xid      xid8 NOT NULL DEFAULT '9223372036854775807'
);

-- At most one live row per key; CREATE of a live key fails with unique_violation.
CREATE UNIQUE INDEX rebac_relationship_live_key_idx ON rebac_relationship
    (resource_type, resource_id, relation, subject_type, subject_id, subject_relation)
    WHERE deleted_xid = '9223372036854775807';
-- Key order over all versions: batched forward queries by ids and keyset export pages.
CREATE INDEX rebac_relationship_key_idx ON rebac_relationship
    (resource_type, resource_id, relation, subject_type, subject_id, subject_relation);
-- Forward path by (type, relation) without ids.
CREATE INDEX rebac_relationship_forward_idx ON rebac_relationship
    (resource_type, relation, resource_id);
-- Reverse path: which resources name this subject?
CREATE INDEX rebac_relationship_reverse_idx ON rebac_relationship
    (subject_type, subject_id, subject_relation, resource_type, relation);
-- Watch finds the rows a transaction created (deletes use the partial index below).
CREATE INDEX rebac_relationship_created_idx ON rebac_relationship (created_xid);
-- GC scans rows deleted long ago; live rows (max xid) sort last and are never visited.
CREATE INDEX rebac_relationship_deleted_idx ON rebac_relationship (deleted_xid)
    WHERE deleted_xid <> '9223372036854775807';

CREATE TABLE rebac_schema (
    text         text NOT NULL,
    hash         text NOT NULL,
    created_xid  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    deleted_xid  xid8 NOT NULL DEFAULT '9223372036854775807'
);
CREATE UNIQUE INDEX rebac_schema_live_idx ON rebac_schema ((true))
    WHERE deleted_xid = '9223372036854775807';

-- The garbage-collection horizon: rows deleted by xids below it may be gone, so
-- revisions whose snapshot xmin is below it are stale.
CREATE TABLE rebac_gc_state (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    horizon    xid8 NOT NULL
);
INSERT INTO rebac_gc_state (horizon) VALUES ('0');
