-- Issue 9, runtime: blocked cases and the escalation watchdog's findings (side tables; the ledger
-- stays the record of what happened to a case).

-- A case the engine could not record a step for (domain/blocking.py). One row per block;
-- resolved by the office's UNBLOCK.
CREATE TABLE case_block (
    id                bigserial   PRIMARY KEY,
    case_no           text        NOT NULL,
    workflow_run_id   text        NOT NULL,
    block_no          int         NOT NULL,
    blocked_at        timestamptz NOT NULL,
    activity          text        NOT NULL,
    error_type        text        NOT NULL,
    message           text        NOT NULL,
    origin            text        NOT NULL,
    request_id        text,
    resolved_at       timestamptz,
    resolved_by       text,
    resolution        text,          -- RETRY / DISCARD
    resolution_reason text,
    recorded_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (workflow_run_id, block_no)
);
CREATE INDEX case_block_open ON case_block (blocked_at) WHERE resolved_at IS NULL;
CREATE INDEX case_block_case ON case_block (case_no);

-- A case whose wake-up (deadline, next rung, end of 公示, archiving) passed by more than the grace
-- period with no ledger row since: the watchdog nudged it. healed_at: the first ledger row at or
-- after the missed wake-up, seen by a later pass.
CREATE TABLE watchdog_nudge (
    id           bigserial   PRIMARY KEY,
    case_no      text        NOT NULL,
    wake_at      timestamptz NOT NULL,
    what         text        NOT NULL,
    detected_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    late_seconds double precision NOT NULL,
    nudges       int         NOT NULL DEFAULT 1,
    last_error   text,
    healed_at    timestamptz,
    UNIQUE (case_no, wake_at)
);
CREATE INDEX watchdog_nudge_open ON watchdog_nudge (detected_at) WHERE healed_at IS NULL;
