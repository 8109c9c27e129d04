-- Cases (DESIGN §2). Every column has a fixed class:
--   coded       plaintext, closed vocabularies from policies/taxonomy.toml;
--   sensitive   *_enc: sealed under the case's data key (crypto/envelope.rs);
--   operational ids, foreign keys, timestamps, versions.
CREATE TABLE cases (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    school_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE RESTRICT,
    -- coded
    status TEXT NOT NULL CHECK (status IN (
        'reported', 'assessing', 'action_planned', 'in_progress', 'resolved', 'closed', 'reopened'
    )),
    risk_level TEXT NOT NULL,
    survivor_sex TEXT NOT NULL,
    age_band TEXT,
    under_16 BOOLEAN,
    under_18 BOOLEAN,
    disability BOOLEAN NOT NULL,
    school_level TEXT NOT NULL,
    -- operational
    version INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP
);
CREATE INDEX cases_school_status_idx ON cases (school_id, status);

-- Idempotent creation: a retried submission (same caller, same
-- Idempotency-Key) finds the case it made instead of making another.
CREATE TABLE case_requests (
    idempotency_key TEXT NOT NULL PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    request_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Each case's data key, wrapped by a key-encryption key of the keyring.
-- Deleting the row (retention) crypto-shreds the case.
CREATE TABLE case_keys (
    case_id TEXT NOT NULL PRIMARY KEY REFERENCES cases (id) ON DELETE CASCADE,
    kek_id TEXT NOT NULL,
    wrapped_dek BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    rewrapped_at TIMESTAMP
);
CREATE INDEX case_keys_kek_idx ON case_keys (kek_id);

-- The pupil: all sensitive, plus the blind index for duplicate detection.
CREATE TABLE pupils (
    case_id TEXT NOT NULL PRIMARY KEY REFERENCES cases (id) ON DELETE CASCADE,
    name_enc BLOB NOT NULL,
    date_of_birth_enc BLOB NOT NULL,
    class_enc BLOB,
    guardian_enc BLOB,
    contact_enc BLOB,
    blind_index TEXT NOT NULL
);
CREATE INDEX pupils_blind_index_idx ON pupils (blind_index);

CREATE TABLE incidents (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    -- coded
    incident_type TEXT NOT NULL,
    csa_subtype TEXT,
    contexts TEXT NOT NULL,
    location_type TEXT NOT NULL,
    perpetrator_relation TEXT NOT NULL,
    incident_month TEXT NOT NULL CHECK (length(incident_month) = 7),
    reporting_delay TEXT NOT NULL,
    -- sensitive
    incident_date_enc BLOB NOT NULL,
    narrative_enc BLOB NOT NULL,
    -- operational
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX incidents_case_idx ON incidents (case_id);
CREATE INDEX incidents_type_month_idx ON incidents (incident_type, incident_month);

-- What happened to the case, in order; notes are sensitive.
CREATE TABLE chronology (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT,
    note_enc BLOB,
    author_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX chronology_case_idx ON chronology (case_id, created_at);

-- Break-glass: a district officer opens one case read-only for a limited
-- time, with a written reason (sealed: it may describe the pupil).
CREATE TABLE break_glass (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reason_enc BLOB NOT NULL,
    granted_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX break_glass_user_case_idx ON break_glass (user_id, case_id);
