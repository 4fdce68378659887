-- 020 (issue 14, part "public"): the public disclosure site.
--   publication_ledger  what the office chose to publish per programme, and 曝光 (naming a
--                       lagging unit) and its revocation: who, when, what (append-only)
--   public_objection    objections lodged on the public site, stored before they reach the case;
--                       the objector's contact stays here (never in workflow history)
--   public_site_key     the key that signs the public forms, shared by every public-site process
-- Idempotent (IF NOT EXISTS), so applying it twice changes nothing.

CREATE TABLE IF NOT EXISTS publication_ledger (
    programme_id    text        NOT NULL,
    seq             bigint      NOT NULL CHECK (seq > 0),
    event           text        NOT NULL CHECK (event IN ('SET_OPTIONS', 'NAME_UNIT', 'REVOKE_NAMING')),
    actor_user      text        NOT NULL,
    actor_role      text        NOT NULL,
    actor_unit      text        NOT NULL DEFAULT '',
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    reason          text        NOT NULL DEFAULT '',
    request_id      text        NOT NULL,
    data            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (programme_id, seq),
    UNIQUE (programme_id, request_id)
);

CREATE OR REPLACE FUNCTION publication_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'publication_ledger is append-only: % refused on programme % seq %',
        TG_OP, OLD.programme_id, OLD.seq;
END;
$$;
DROP TRIGGER IF EXISTS publication_ledger_no_update ON publication_ledger;
CREATE TRIGGER publication_ledger_no_update BEFORE UPDATE OR DELETE ON publication_ledger
    FOR EACH ROW EXECUTE FUNCTION publication_ledger_append_only();

CREATE TABLE IF NOT EXISTS public_objection (
    id              bigserial   PRIMARY KEY,
    receipt         text        NOT NULL UNIQUE,          -- shown to the objector only; random, 16 chars
    objection_ref   text        NOT NULL UNIQUE,          -- non-secret reference: the actor id in the case
    programme_id    text        NOT NULL,
    case_no         text        NOT NULL,
    text            text        NOT NULL,
    contact         text        NOT NULL,                 -- normalised phone digits or lower-case e-mail
    contact_kind    text        NOT NULL CHECK (contact_kind IN ('PHONE', 'EMAIL')),
    address         text        NOT NULL,                 -- the network address it came from (rate limit)
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    status          text        NOT NULL DEFAULT 'STORED' CHECK (status IN ('STORED', 'DELIVERED', 'REFUSED')),
    delivered_at    timestamptz,
    refused_reason  text        NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS public_objection_address_idx ON public_objection (address, created_at);
CREATE INDEX IF NOT EXISTS public_objection_contact_idx ON public_objection (contact, created_at);
CREATE INDEX IF NOT EXISTS public_objection_case_idx ON public_objection (case_no);
CREATE INDEX IF NOT EXISTS public_objection_stored_idx ON public_objection (created_at) WHERE status = 'STORED';

CREATE TABLE IF NOT EXISTS public_site_key (
    id   int   PRIMARY KEY CHECK (id = 1),
    key  bytea NOT NULL
);
