-- Issue 10, hostile input.
-- A refused request is recorded per user: another user's reuse of a request id is refused and
-- recorded as their own attempt (the Update id is user/request_id, workflows/client.py).
ALTER TABLE refused_action DROP CONSTRAINT IF EXISTS refused_action_case_no_request_id_key;
ALTER TABLE refused_action ADD CONSTRAINT refused_action_case_request_user_key
    UNIQUE (case_no, request_id, actor_user);

-- Login throttling counts recent failures per address as well as per account.
CREATE INDEX login_attempt_addr_idx ON login_attempt (remote_addr, at DESC);
ALTER TABLE login_attempt DROP CONSTRAINT IF EXISTS login_attempt_outcome_check;
ALTER TABLE login_attempt ADD CONSTRAINT login_attempt_outcome_check
    CHECK (outcome IN ('SUCCESS', 'FAILURE', 'LOCKED', 'LOCKOUT', 'UNLOCK', 'THROTTLED'));
