-- Intake form tokens (issue 16): each intake form the server shows carries
-- a random single-use token, so a form sent twice (a double tap on a slow
-- phone, without script) makes one case. Only the token's SHA-256 is kept,
-- bound to the session that was shown the form, with an expiry. It is
-- consumed in the transaction that records the case, and then names that
-- case: a replay shows the case already made.
CREATE TABLE intake_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY CHECK (length(token_hash) = 64),
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    consumed_at TIMESTAMP,
    case_id TEXT REFERENCES cases (id) ON DELETE CASCADE
);
CREATE INDEX intake_tokens_user_idx ON intake_tokens (user_id, expires_at);
