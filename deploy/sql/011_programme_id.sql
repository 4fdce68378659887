-- Issue 13: every case may belong to a programme (one inspection round's rectification plan for
-- a locality). The id lives in the filing; the projection exposes it as a column, derived from
-- the stored filing so the record activity needs no change and rows written before stay right.
ALTER TABLE case_projection
    ADD COLUMN programme_id text GENERATED ALWAYS AS (COALESCE(filing ->> 'programme_id', '')) STORED;
CREATE INDEX case_projection_programme_idx ON case_projection (programme_id) WHERE programme_id <> '';
