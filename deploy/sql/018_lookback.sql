-- 018 (issue 14): look-back campaigns (回头看): the campaign ledger (append-only, sha256-chained),
-- its projection, one row per selected case with its finding, and its notices through the outbox.

CREATE TABLE lookback_ledger (
    campaign_id     text        NOT NULL,
    seq             bigint      NOT NULL CHECK (seq > 0),
    event           text        NOT NULL,
    actor_user      text        NOT NULL,
    actor_role      text        NOT NULL,
    actor_unit      text        NOT NULL DEFAULT '',
    at              timestamptz NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    request_id      text,
    case_no         text,
    data            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    workflow_run_id text        NOT NULL DEFAULT '',
    prev_hash       text        NOT NULL,
    row_hash        text        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (campaign_id, seq)
);
CREATE INDEX lookback_ledger_case_idx ON lookback_ledger (case_no) WHERE case_no IS NOT NULL;

CREATE FUNCTION lookback_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'lookback_ledger is append-only: % refused on campaign % seq %',
        TG_OP, OLD.campaign_id, OLD.seq;
END;
$$;
CREATE TRIGGER lookback_ledger_no_update BEFORE UPDATE OR DELETE ON lookback_ledger
    FOR EACH ROW EXECUTE FUNCTION lookback_ledger_append_only();

CREATE TABLE lookback_projection (
    campaign_id     text        PRIMARY KEY,
    workflow_id     text        NOT NULL,
    name            text        NOT NULL,
    basis           text        NOT NULL DEFAULT '',
    unannounced     boolean     NOT NULL DEFAULT false,
    start_date      date        NOT NULL,
    end_date        date        NOT NULL,
    programme_id    text        NOT NULL DEFAULT '',
    stage           text        NOT NULL,
    created_by      text        NOT NULL,
    created_at      timestamptz NOT NULL,
    closed_at       timestamptz,
    close_reason    text        NOT NULL DEFAULT '',
    selected        int         NOT NULL DEFAULT 0,
    visited         int         NOT NULL DEFAULT 0,
    population      int         NOT NULL DEFAULT 0,
    criteria        jsonb,
    reminders       jsonb       NOT NULL DEFAULT '[]'::jsonb,
    last_seq        bigint      NOT NULL,
    policy_version  text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One row per selected case; only moves forward (last_seq).
CREATE TABLE lookback_item (
    campaign_id            text        NOT NULL REFERENCES lookback_projection (campaign_id),
    case_no                text        NOT NULL,
    title                  text        NOT NULL DEFAULT '',
    stage_at_selection     text        NOT NULL,
    responsible_units      text[]      NOT NULL DEFAULT '{}',
    lead_supervising_units text[]      NOT NULL DEFAULT '{}',
    finding                text,
    evidence               text        NOT NULL DEFAULT '',
    evidence_refs          text[]      NOT NULL DEFAULT '{}',
    inspector_user         text,
    inspector_role         text,
    inspector_unit         text,
    found_at               timestamptz,
    finding_seq            bigint,
    reopen                 text,
    reopen_due_date        date,
    reopen_error           text        NOT NULL DEFAULT '',
    referral_proposed      text,
    last_seq               bigint      NOT NULL,
    PRIMARY KEY (campaign_id, case_no)
);
CREATE INDEX lookback_item_case_idx ON lookback_item (case_no);

-- Campaign notices go through the outbox like the programme's: `seq` NULL, case_no
-- "lookback:<id>", and (lookback_id, lookback_seq) naming the campaign ledger row.
ALTER TABLE outbox ADD COLUMN lookback_id text;
ALTER TABLE outbox ADD COLUMN lookback_seq bigint;
ALTER TABLE outbox ADD CONSTRAINT outbox_lookback_ledger_fk
    FOREIGN KEY (lookback_id, lookback_seq) REFERENCES lookback_ledger (campaign_id, seq);
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_seq_or_programme;
ALTER TABLE outbox ADD CONSTRAINT outbox_seq_or_programme
    CHECK (seq IS NOT NULL OR case_no LIKE 'programme:%' OR case_no LIKE 'lookback:%');
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_names_its_ledger_row;
ALTER TABLE outbox ADD CONSTRAINT outbox_names_its_ledger_row
    CHECK ((seq IS NOT NULL AND programme_seq IS NULL AND lookback_seq IS NULL)
           OR (seq IS NULL AND case_no LIKE 'programme:%' AND lookback_seq IS NULL
               AND (programme_seq IS NULL OR programme_id IS NOT NULL))
           OR (seq IS NULL AND case_no LIKE 'lookback:%' AND programme_seq IS NULL
               AND lookback_id IS NOT NULL AND lookback_seq IS NOT NULL));
