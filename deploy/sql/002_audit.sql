-- 002: auditors. Hash-chained ledger, archive of closed workflow runs, archiver checkpoint.
-- Applied by `python -m activities.migrate`.

-- Each ledger row carries the hash of the previous row of its case (prev_hash) and its own
-- hash over prev_hash and its content (row_hash); audit/chain.py defines the canonical form.
-- Rows written before this migration keep NULL here ("legacy" rows): their hashes are
-- recomputed from content by the writer of the first chained row and by `audit verify`,
-- so the chain still covers them from the first chained row on (README: Audit).
ALTER TABLE ledger ADD COLUMN prev_hash text;
ALTER TABLE ledger ADD COLUMN row_hash text;
-- New rows must be chained; NOT VALID leaves legacy rows alone.
ALTER TABLE ledger ADD CONSTRAINT ledger_row_chained
    CHECK (prev_hash IS NOT NULL AND row_hash IS NOT NULL) NOT VALID;
ALTER TABLE ledger ADD CONSTRAINT ledger_hash_format
    CHECK ((row_hash IS NULL OR row_hash ~ '^[0-9a-f]{64}$')
       AND (prev_hash IS NULL OR prev_hash ~ '^[0-9a-f]{64}$'));

-- Full histories of ended runs of the Case workflow, exactly as `temporal workflow show
-- --output json` writes them (WorkflowHistory.to_json), with the sha256 of that text.
CREATE TABLE history_archive (
    run_id            text        PRIMARY KEY,
    workflow_id       text        NOT NULL,
    case_no           text        NOT NULL,
    status            text        NOT NULL,   -- COMPLETED, CONTINUED_AS_NEW, FAILED, TERMINATED, ...
    start_time        timestamptz NOT NULL,
    close_time        timestamptz NOT NULL,
    continued_from    text,                   -- run id this run continued from (continue-as-new)
    event_count       int         NOT NULL CHECK (event_count > 0),
    history_json      text        NOT NULL,
    sha256            text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    archived_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX history_archive_case_idx ON history_archive (case_no, start_time);
CREATE INDEX history_archive_close_idx ON history_archive (close_time);

-- The archive is append-only too: a stored history is evidence.
CREATE FUNCTION history_archive_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'history_archive is append-only: % refused on run %', TG_OP, OLD.run_id;
END;
$$;
CREATE TRIGGER history_archive_no_update BEFORE UPDATE OR DELETE ON history_archive
    FOR EACH ROW EXECUTE FUNCTION history_archive_append_only();

-- Where the archiver's visibility scan stands (close-time watermark; scanned again with overlap).
CREATE TABLE archive_checkpoint (
    name        text        PRIMARY KEY,
    watermark   timestamptz,
    runs_seen   bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
