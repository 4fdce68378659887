-- 004: evidence files (佐证材料), stored outside the workflow history.
--
-- Content-addressed: a blob is stored once per sha256, in 1 MiB bytea chunks (streamed in and
-- out, never one 20 MB value); each upload to a case is a row of evidence_file naming the blob,
-- with the original name, the uploader and the time. Cases carry only references
-- `evidence:sha256:<hex>`. Everything is append-only (triggers), like the ledger.

CREATE TABLE evidence_blob (
    sha256      text        PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size        bigint      NOT NULL CHECK (size > 0),
    media_type  text        NOT NULL,
    chunk_size  int         NOT NULL CHECK (chunk_size > 0),
    chunks      int         NOT NULL CHECK (chunks > 0),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE evidence_chunk (
    sha256  text    NOT NULL REFERENCES evidence_blob (sha256),
    n       int     NOT NULL CHECK (n >= 0),
    data    bytea   NOT NULL,
    PRIMARY KEY (sha256, n)
);
-- JPEG, PNG and PDF are already compressed: store out of line without trying to compress.
ALTER TABLE evidence_chunk ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE evidence_file (
    id             bigserial   PRIMARY KEY,
    case_no        text        NOT NULL,
    sha256         text        NOT NULL REFERENCES evidence_blob (sha256),
    size           bigint      NOT NULL,
    media_type     text        NOT NULL,
    original_name  text        NOT NULL CHECK (length(original_name) BETWEEN 1 AND 200),
    uploader_user  text        NOT NULL,
    uploader_role  text        NOT NULL,
    uploader_unit  text        NOT NULL,
    uploaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The same file uploaded twice to one case is one entry (the first upload's name and uploader).
    UNIQUE (case_no, sha256)
);
CREATE INDEX evidence_file_case_idx ON evidence_file (case_no, uploaded_at, id);

CREATE FUNCTION evidence_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'evidence is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER evidence_blob_no_update BEFORE UPDATE OR DELETE ON evidence_blob
    FOR EACH ROW EXECUTE FUNCTION evidence_append_only();
CREATE TRIGGER evidence_chunk_no_update BEFORE UPDATE OR DELETE ON evidence_chunk
    FOR EACH ROW EXECUTE FUNCTION evidence_append_only();
CREATE TRIGGER evidence_file_no_update BEFORE UPDATE OR DELETE ON evidence_file
    FOR EACH ROW EXECUTE FUNCTION evidence_append_only();
