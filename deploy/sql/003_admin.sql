-- 003: the admin console and casectl: users, sessions, API tokens, login attempts.
-- (002 is reserved for the audit tables.)

CREATE TABLE console_user (
    username        text        PRIMARY KEY CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    display_name    text        NOT NULL DEFAULT '',
    unit            text        NOT NULL,
    roles           text[]      NOT NULL CHECK (cardinality(roles) > 0),
    password_hash   text        NOT NULL,
    failed_logins   int         NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    disabled        boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Server-side sessions: the cookie holds a random token, the table only its sha256.
CREATE TABLE console_session (
    token_hash   text        PRIMARY KEY,
    username     text        NOT NULL REFERENCES console_user (username) ON DELETE CASCADE,
    csrf_token   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_seen_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at   timestamptz NOT NULL,
    remote_addr  text        NOT NULL DEFAULT ''
);
CREATE INDEX console_session_user_idx ON console_session (username);

-- API tokens for casectl: only the sha256 is stored; the token is shown once.
CREATE TABLE api_token (
    token_hash   text        PRIMARY KEY,
    username     text        NOT NULL REFERENCES console_user (username) ON DELETE CASCADE,
    label        text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_token_user_idx ON api_token (username);

-- Every login attempt (success, failure, refused while locked), for auditors.
CREATE TABLE login_attempt (
    id          bigserial   PRIMARY KEY,
    username    text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    outcome     text        NOT NULL CHECK (outcome IN ('SUCCESS', 'FAILURE', 'LOCKED', 'LOCKOUT', 'UNLOCK')),
    remote_addr text        NOT NULL DEFAULT '',
    detail      text        NOT NULL DEFAULT ''
);
CREATE INDEX login_attempt_user_idx ON login_attempt (username, at DESC);
