-- Referrals to partner agencies, the deadlines of the protocol and the law,
-- their escalations, the focal point's decisions on suggestions, and
-- one-time links for partners without an account (DESIGN §3).

-- The language messages to a user are written in.
ALTER TABLE users ADD COLUMN language TEXT NOT NULL DEFAULT 'vi' CHECK (language IN ('vi', 'en'));

CREATE TABLE referrals (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    school_id TEXT NOT NULL REFERENCES organisations (id),
    agency_id TEXT NOT NULL REFERENCES organisations (id),
    agency_type TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('statutory_report', 'service_referral')),
    need TEXT NOT NULL CHECK (need IN ('required', 'recommended', 'added')),
    profile TEXT NOT NULL,
    rules TEXT NOT NULL,
    legal_basis TEXT NOT NULL CHECK (legal_basis IN ('statutory_report', 'consent', 'override')),
    status TEXT NOT NULL CHECK (status IN ('sent', 'acknowledged', 'accepted', 'declined', 'in_service', 'completed', 'withdrawn')),
    note_enc BYTEA,
    override_reason_enc BYTEA,
    acknowledge_by TIMESTAMP NOT NULL,
    version INTEGER NOT NULL,
    sent_by TEXT NOT NULL,
    sent_at TIMESTAMP NOT NULL,
    acknowledged_at TIMESTAMP,
    answered_at TIMESTAMP,
    closed_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX referrals_case_idx ON referrals (case_id);
CREATE INDEX referrals_inbox_idx ON referrals (agency_id, status, acknowledge_by);

-- A focal point's decision not to make a suggested referral.
CREATE TABLE suggestion_skips (
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    agency_type TEXT NOT NULL,
    need TEXT NOT NULL CHECK (need IN ('required', 'recommended')),
    reason_enc BYTEA,
    skipped_by TEXT NOT NULL,
    skipped_at TIMESTAMP NOT NULL,
    PRIMARY KEY (case_id, agency_type)
);

-- Every clock: on the case (assessed, plan_made), on sending a required
-- referral (send), on an agency acknowledging one (acknowledge).
CREATE TABLE deadlines (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    school_id TEXT NOT NULL REFERENCES organisations (id),
    referral_id TEXT REFERENCES referrals (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('assessed', 'plan_made', 'send', 'acknowledge')),
    subject TEXT NOT NULL,
    rule TEXT NOT NULL,
    source TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    due_at TIMESTAMP NOT NULL,
    met_at TIMESTAMP,
    outcome TEXT,
    level INTEGER NOT NULL DEFAULT 0,
    next_check_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX deadlines_subject_idx ON deadlines (case_id, kind, subject);
-- The scheduler's scan: open clocks by when they next need a look.
CREATE INDEX deadlines_due_idx ON deadlines (next_check_at) WHERE met_at IS NULL;

CREATE TABLE escalations (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    deadline_id TEXT NOT NULL REFERENCES deadlines (id) ON DELETE CASCADE,
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    school_id TEXT NOT NULL REFERENCES organisations (id),
    area_id TEXT NOT NULL REFERENCES organisations (id),
    level INTEGER NOT NULL CHECK (level IN (1, 2)),
    reason TEXT NOT NULL CHECK (reason IN ('not_assessed', 'plan_not_made', 'referral_not_sent', 'not_acknowledged')),
    raised_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP
);
CREATE UNIQUE INDEX escalations_once_idx ON escalations (deadline_id, level);
CREATE INDEX escalations_area_idx ON escalations (area_id, resolved_at);
CREATE INDEX escalations_school_idx ON escalations (school_id, resolved_at);

CREATE TABLE partner_links (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    referral_id TEXT NOT NULL REFERENCES referrals (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    code_hash TEXT NOT NULL,
    recipient TEXT NOT NULL,
    failed_codes INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    opened_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX partner_links_referral_idx ON partner_links (referral_id);
