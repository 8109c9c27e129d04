-- Case-work (issue 16): the assigned case worker, approval of closure, and
-- the history of legal holds.

-- The focal point of the case's school who works the case; NULL when no one
-- is assigned (a case a reporter filed). Only an active focal point of the
-- case's school may be put here (checked when assigning); users are never
-- deleted, only disabled, so there is no foreign key (SQLite cannot drop a
-- column that has one).
ALTER TABLE cases ADD COLUMN assigned_to TEXT;
CREATE INDEX cases_assigned_idx ON cases (school_id, assigned_to);

-- A closure that needs a second person's approval (high risk, or a
-- statutory report): requested by one focal point, approved (the case
-- closes) or returned with a note (it stays open) by another. The notes are
-- sensitive (sealed under the case's key); the closure reason is a code.
CREATE TABLE closure_requests (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    closure_reason TEXT NOT NULL,
    note_enc BLOB NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'returned')),
    decided_by TEXT,
    decided_at TIMESTAMP,
    decision_note_enc BLOB
);
CREATE INDEX closure_requests_case_idx ON closure_requests (case_id, requested_at);
-- At most one request awaits a decision per case.
CREATE UNIQUE INDEX closure_requests_pending_idx ON closure_requests (case_id)
    WHERE status = 'pending';

-- Every setting and lifting of a case's legal hold (cases.legal_hold is the
-- hold in force): a coded reason, a sealed note, who and when.
CREATE TABLE legal_holds (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    held BOOLEAN NOT NULL,
    reason TEXT NOT NULL,
    note_enc BLOB,
    decided_by TEXT NOT NULL,
    decided_at TIMESTAMP NOT NULL
);
CREATE INDEX legal_holds_case_idx ON legal_holds (case_id, decided_at);
