-- Consent (GBV case-management guidelines; Primero's data-confidentiality
-- form): who gave it, for what, to whom the case may be disclosed, what must
-- be withheld (sensitive), and the legitimate basis. Every change is a new
-- row; the newest is in force.
CREATE TABLE consents (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    given_by TEXT NOT NULL,
    services BOOLEAN NOT NULL,
    reporting BOOLEAN NOT NULL,
    disclosure BOOLEAN NOT NULL,
    disclosure_to TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    withheld_enc BLOB,
    recorded_by TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX consents_case_idx ON consents (case_id, recorded_at);
