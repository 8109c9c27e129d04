-- Short-lived sessions of partners without an account (issue 16): opened
-- with a one-time link and its code, scoped to that link's one referral.
-- Only the SHA-256 of the cookie's token is stored. One link opens at most
-- one session (UNIQUE link_id): a one-time code gives one session.
CREATE TABLE partner_sessions (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 64),
    link_id TEXT NOT NULL UNIQUE REFERENCES partner_links (id) ON DELETE CASCADE,
    referral_id TEXT NOT NULL REFERENCES referrals (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP,
    ended_reason TEXT CHECK (ended_reason IN ('other_path', 'expired', 'withdrawn', 'closed', 'answered'))
);
CREATE INDEX partner_sessions_referral_idx ON partner_sessions (referral_id);
