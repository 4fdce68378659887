-- Roles for auditors and for the history archiver. NOT a migration (the migrator reads only
-- deploy/sql/NNN_*.sql); apply once per database, as its owner, after the migrations:
--
--   psql "$DATABASE_URL" -f deploy/sql/roles/audit_roles.sql
--   psql "$DATABASE_URL" -c "CREATE ROLE audit_qian LOGIN PASSWORD '...' IN ROLE case_auditor"
--   psql "$DATABASE_URL" -c "ALTER ROLE audit_qian SET default_transaction_read_only = on"
--
-- (Role settings are not inherited: set default_transaction_read_only on each auditor login.)
--
-- Idempotent: running it again changes nothing. Role names are cluster-wide.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'case_auditor') THEN
        CREATE ROLE case_auditor NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'case_archiver') THEN
        CREATE ROLE case_archiver NOLOGIN;
    END IF;
END;
$$;

-- Auditors read; they never write (SELECT only). Their logins also start every session
-- read-only (see above), so even a mistaken grant elsewhere does not let them write.
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO case_auditor, case_archiver', current_database());
END;
$$;
GRANT USAGE ON SCHEMA public TO case_auditor, case_archiver;
GRANT SELECT ON ledger, history_archive, archive_checkpoint, case_projection, outbox, inbox,
                refused_action, schema_migrations
    TO case_auditor;
-- unit_directory (e-mail addresses) is deliberately not readable by auditors.
-- Evidence files (migration 004): auditors read the files and their metadata.
GRANT SELECT ON evidence_file, evidence_blob, evidence_chunk TO case_auditor;
-- Monthly dispatch reports (migration 014).
GRANT SELECT ON dispatch_report TO case_auditor;
-- Look-back campaigns (migration 018).
GRANT SELECT ON lookback_ledger, lookback_projection, lookback_item TO case_auditor;

-- The archiver (`casectl audit archive`, or the worker's background task) adds histories
-- and moves its checkpoint; it cannot change the ledger, nor (trigger) stored histories.
GRANT SELECT, INSERT ON history_archive TO case_archiver;
GRANT SELECT, INSERT, UPDATE ON archive_checkpoint TO case_archiver;
