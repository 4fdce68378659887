-- 019 (issue 14): the final state of every case run that ended ARCHIVED, so that a look-back
-- finding years later can reopen the case as a linked new run (workflows/reopen.py) even after
-- Temporal's history retention removed the archived run. One row per run (the activity that
-- writes it is idempotent: ON CONFLICT DO NOTHING); append-only like the ledger.
CREATE TABLE archived_case_state (
    workflow_run_id text        PRIMARY KEY,
    case_no         text        NOT NULL,
    seq             bigint      NOT NULL,
    archived_at     timestamptz,
    state           jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX archived_case_state_case_idx ON archived_case_state (case_no, seq DESC);

CREATE FUNCTION archived_case_state_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'archived_case_state is append-only: % refused on run %', TG_OP, OLD.workflow_run_id;
END;
$$;
CREATE TRIGGER archived_case_state_append_only BEFORE UPDATE OR DELETE ON archived_case_state
    FOR EACH ROW EXECUTE FUNCTION archived_case_state_append_only();
