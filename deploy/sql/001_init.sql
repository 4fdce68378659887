-- 001: ledger (台账), case projection, notice outbox, in-app inbox, unit directory,
-- refused actions. Applied by `python -m activities.migrate`.

CREATE TABLE ledger (
    case_no         text        NOT NULL,
    seq             bigint      NOT NULL CHECK (seq > 0),
    event           text        NOT NULL,
    actor_user      text        NOT NULL,
    actor_role      text        NOT NULL,
    actor_unit      text        NOT NULL DEFAULT '',
    at              timestamptz NOT NULL,
    from_stage      text,
    to_stage        text,
    reason          text        NOT NULL DEFAULT '',
    request_id      text,
    data            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    workflow_run_id text        NOT NULL DEFAULT '',
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (case_no, seq)
);
CREATE INDEX ledger_at_idx ON ledger (at);
CREATE INDEX ledger_event_idx ON ledger (event);

-- The ledger is append-only: corrections are new rows, never edits.
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger is append-only: % refused on case % seq %', TG_OP, OLD.case_no, OLD.seq;
END;
$$;
CREATE TRIGGER ledger_no_update BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

CREATE TABLE case_projection (
    case_no                text        PRIMARY KEY,
    workflow_id            text        NOT NULL,
    kind                   text        NOT NULL,
    title                  text        NOT NULL,
    stage                  text        NOT NULL,
    stage_entered_at       timestamptz NOT NULL,
    responsible_units      text[]      NOT NULL DEFAULT '{}',
    lead_supervising_units text[]      NOT NULL DEFAULT '{}',
    assisting_units        text[]      NOT NULL DEFAULT '{}',
    inspection_round       text        NOT NULL DEFAULT '',
    due_date               date,
    due_at                 timestamptz,
    deadline               jsonb,
    escalation_level       int         NOT NULL DEFAULT 0,
    escalation_max_level   int         NOT NULL DEFAULT 0,
    suspended              boolean     NOT NULL DEFAULT false,
    cycle                  int         NOT NULL DEFAULT 1,
    reopen_count           int         NOT NULL DEFAULT 0,
    open_referrals         int         NOT NULL DEFAULT 0,
    filed_at               timestamptz NOT NULL,
    closed_at              timestamptz,
    last_seq               bigint      NOT NULL,
    policy_version         text        NOT NULL,
    filing                 jsonb       NOT NULL,
    detail                 jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at             timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX case_projection_stage_idx ON case_projection (stage);
CREATE INDEX case_projection_due_idx ON case_projection (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX case_projection_units_idx ON case_projection USING gin (responsible_units);

CREATE TABLE unit_directory (
    unit       text PRIMARY KEY,
    email      text,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE outbox (
    notice_key      text        PRIMARY KEY,
    case_no         text        NOT NULL,
    seq             bigint      NOT NULL,
    recipient_unit  text        NOT NULL,
    recipient_role  text        NOT NULL,
    subject         text        NOT NULL,
    body            text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    status          text        NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'DELIVERED')),
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_error      text,
    email_to        text,
    email_sent_at   timestamptz,
    inbox_at        timestamptz,
    delivered_at    timestamptz,
    FOREIGN KEY (case_no, seq) REFERENCES ledger (case_no, seq)
);
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE status = 'PENDING';

CREATE TABLE inbox (
    notice_key text        PRIMARY KEY REFERENCES outbox (notice_key),
    unit       text        NOT NULL,
    case_no    text        NOT NULL,
    subject    text        NOT NULL,
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    read_at    timestamptz
);
CREATE INDEX inbox_unit_idx ON inbox (unit, created_at DESC);

-- Refused handler actions: a rejected Update leaves no trace in workflow history.
CREATE TABLE refused_action (
    id          bigserial   PRIMARY KEY,
    case_no     text        NOT NULL,
    request_id  text        NOT NULL,
    action      text        NOT NULL,
    actor_user  text        NOT NULL,
    actor_role  text        NOT NULL,
    actor_unit  text        NOT NULL DEFAULT '',
    error_type  text        NOT NULL,
    message     text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (case_no, request_id)
);
