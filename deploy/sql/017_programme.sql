-- 017 (issue 13): the rectification programme (整改方案): its ledger, its projection, and its
-- notices through the same outbox as the cases'.

-- The programme ledger: append-only, one row per (programme_id, seq), each row chained to the
-- previous one of its programme by sha256 (activities/programme_activities.py).
CREATE TABLE programme_ledger (
    programme_id    text        NOT NULL,
    seq             bigint      NOT NULL CHECK (seq > 0),
    event           text        NOT NULL,
    actor_user      text        NOT NULL,
    actor_role      text        NOT NULL,
    actor_unit      text        NOT NULL DEFAULT '',
    at              timestamptz NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    request_id      text,
    data            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    workflow_run_id text        NOT NULL DEFAULT '',
    prev_hash       text        NOT NULL,
    row_hash        text        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (programme_id, seq)
);
CREATE INDEX programme_ledger_event_idx ON programme_ledger (event);

CREATE FUNCTION programme_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'programme_ledger is append-only: % refused on programme % seq %',
        TG_OP, OLD.programme_id, OLD.seq;
END;
$$;
CREATE TRIGGER programme_ledger_no_update BEFORE UPDATE OR DELETE ON programme_ledger
    FOR EACH ROW EXECUTE FUNCTION programme_ledger_append_only();

CREATE TABLE programme_projection (
    programme_id        text        PRIMARY KEY,
    workflow_id         text        NOT NULL,
    name                text        NOT NULL,
    inspection_round    text        NOT NULL,
    locality            text        NOT NULL,
    counties            text[]      NOT NULL DEFAULT '{}',
    stage               text        NOT NULL,
    feedback_date       date        NOT NULL,
    plan_submitted_at   timestamptz,
    plan_ref            text        NOT NULL DEFAULT '',
    report_due_date     date,
    report_due_at       timestamptz,
    report_submitted_at timestamptz,
    report_ref          text        NOT NULL DEFAULT '',
    escalation_level    int         NOT NULL DEFAULT 0,
    total_cases         int         NOT NULL DEFAULT 0,
    done_cases          int         NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL,
    completed_at        timestamptz,
    last_seq            bigint      NOT NULL,
    policy_version      text        NOT NULL,
    detail              jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at          timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Programme notices go through the outbox like the cases' (never lost, once per key). Such a row
-- names its programme ledger row instead of a case ledger row: `seq` is NULL (so the case-ledger
-- foreign key does not apply) and (programme_id, programme_seq) references programme_ledger.
-- `case_no` carries "programme:<id>" so the inbox and the sender need no change.
ALTER TABLE outbox ALTER COLUMN seq DROP NOT NULL;
ALTER TABLE outbox ADD COLUMN programme_id text;
ALTER TABLE outbox ADD COLUMN programme_seq bigint;
ALTER TABLE outbox ADD CONSTRAINT outbox_programme_ledger_fk
    FOREIGN KEY (programme_id, programme_seq) REFERENCES programme_ledger (programme_id, seq);
-- A programme-level notice without a programme ledger row (a unit's monthly dispatch list, 014)
-- has neither seq nor programme_seq; its case_no still says "programme:<id>" (014's check).
ALTER TABLE outbox ADD CONSTRAINT outbox_names_its_ledger_row
    CHECK ((seq IS NOT NULL AND programme_seq IS NULL)
           OR (seq IS NULL AND case_no LIKE 'programme:%'
               AND (programme_seq IS NULL OR programme_id IS NOT NULL)));
