-- Issue 13, monthly dispatch (一月一调度一督办): one report per programme and month, written by
-- DispatchWorkflow (workflows/dispatch_workflow.py); figures are the per-unit numbers and lists
-- (domain/dispatch.py), xlsx and html the rendered report over every unit (a unit reader gets a
-- view re-rendered from the figures, filtered to its own rows).
CREATE TABLE dispatch_report (
    programme_id    text        NOT NULL,
    period          text        NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    generated_at    timestamptz NOT NULL,          -- the workflow's time (as_of of the figures)
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    workflow_id     text        NOT NULL,
    workflow_run_id text        NOT NULL,
    trigger         text        NOT NULL DEFAULT '',  -- SCHEDULE / MANUAL (who, for a manual run)
    figures         jsonb       NOT NULL,
    units           text[]      NOT NULL DEFAULT '{}',
    xlsx            bytea       NOT NULL,
    html            text        NOT NULL,
    PRIMARY KEY (programme_id, period)
);

-- Programme-level notices (a unit's dispatch list) have no case and no ledger row: their outbox
-- row carries case_no 'programme:<id>' and no seq (the foreign key to the ledger is then not
-- checked, MATCH SIMPLE). Every case notice still has its seq and its ledger row.
ALTER TABLE outbox ALTER COLUMN seq DROP NOT NULL;
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_seq_or_programme;
ALTER TABLE outbox ADD CONSTRAINT outbox_seq_or_programme
    CHECK (seq IS NOT NULL OR case_no LIKE 'programme:%');
