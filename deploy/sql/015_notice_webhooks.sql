-- 015: the HTTP webhook notice channel (an SMS gateway, a government messaging robot), beside
-- the in-app inbox and e-mail. Configured per unit in `unit_webhook` (like unit_directory holds
-- the e-mail address); each outbox row records its webhook delivery on its own columns, so an
-- SMTP outage never delays a webhook and the reverse.

CREATE TABLE unit_webhook (
    unit            text        PRIMARY KEY,
    url             text        NOT NULL CHECK (url ~ '^https?://'),
    secret          text        NOT NULL CHECK (length(secret) >= 16),  -- HMAC-SHA256 key of the signature header
    enabled         boolean     NOT NULL DEFAULT true,
    timeout_seconds real        NOT NULL DEFAULT 10 CHECK (timeout_seconds > 0 AND timeout_seconds <= 120),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- Like unit_directory, not granted to auditors (deploy/sql/roles/audit_roles.sql): it holds secrets.

ALTER TABLE outbox
    ADD COLUMN email_next_at     timestamptz,            -- e-mail backed off until (NULL: due)
    ADD COLUMN webhook_to        text,                   -- where it was posted (scheme, host, path; no query)
    ADD COLUMN webhook_attempts  int NOT NULL DEFAULT 0,
    ADD COLUMN webhook_next_at   timestamptz,            -- webhook backed off until (NULL: due)
    ADD COLUMN webhook_status    int,                    -- last HTTP status (NULL: no answer)
    ADD COLUMN webhook_error     text,                   -- last failure, kept when it became permanent
    ADD COLUMN webhook_sent_at   timestamptz,            -- the receiver answered 2xx
    ADD COLUMN webhook_failed_at timestamptz;            -- refused for good (a 4xx): not retried

CREATE INDEX outbox_webhook_failed_idx ON outbox (webhook_failed_at) WHERE webhook_failed_at IS NOT NULL;
