-- Accounts, credentials, sessions, revoked tokens, and the tamper-evident
-- audit log. Staff identities (work email, display name) are operational
-- data protected by access control; TOTP secrets are sealed (crypto/sealed.rs);
-- passwords, session tokens and recovery codes are stored only as hashes.
CREATE TABLE users (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    org_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE RESTRICT,
    role TEXT NOT NULL CHECK (role IN (
        'reporter', 'focal_point', 'agency_officer', 'district_officer', 'monitor', 'admin', 'auditor'
    )),
    email TEXT NOT NULL UNIQUE CHECK (length(email) BETWEEN 3 AND 254),
    display_name TEXT NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    disabled_at TIMESTAMP,
    -- Sessions and tokens issued before this instant are void (revocation).
    tokens_not_before TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX users_org_idx ON users (org_id);

-- What a user proves themselves with, and the throttling state.
CREATE TABLE credentials (
    user_id TEXT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT,
    password_changed_at TIMESTAMP,
    totp_secret BYTEA,
    totp_last_step BIGINT,
    mfa_enrolled_at TIMESTAMP,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    throttled_until TIMESTAMP,
    locked_at TIMESTAMP,
    enrolment_token_hash TEXT UNIQUE,
    enrolment_expires_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE recovery_codes (
    id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX recovery_codes_user_idx ON recovery_codes (user_id);

-- A browser session; the id is the SHA-256 of the cookie's token.
CREATE TABLE sessions (
    id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    mfa_verified BOOLEAN NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- Access tokens revoked before their expiry (logout of an API client).
CREATE TABLE revoked_tokens (
    jti TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

-- Append-only, hash-chained: entry_hash = SHA-256(prev_hash, fields).
-- No field values of cases ever go into details: ids and codes only.
CREATE TABLE audit_log (
    seq BIGINT NOT NULL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    occurred_at TIMESTAMP NOT NULL,
    actor_user_id TEXT,
    actor_org_id TEXT,
    actor_role TEXT,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    target_type TEXT,
    target_id TEXT,
    request_id TEXT,
    client_ip TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL
);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_user_id);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id);
CREATE INDEX audit_log_occurred_idx ON audit_log (occurred_at);

-- Ed25519 signatures over (seq, entry_hash) at intervals.
CREATE TABLE audit_checkpoints (
    seq BIGINT NOT NULL PRIMARY KEY,
    entry_hash TEXT NOT NULL,
    signed_at TIMESTAMP NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);

-- The audit log refuses changes through the application's role. (A
-- superuser can disable this; the hash chain and the signed checkpoints are
-- what detect that.)
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
