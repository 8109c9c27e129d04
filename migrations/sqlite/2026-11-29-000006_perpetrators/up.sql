-- Alleged perpetrators: coded relation, sex and age group for statistics;
-- identity and description sealed under the case's data key.
CREATE TABLE perpetrators (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    incident_id TEXT REFERENCES incidents (id) ON DELETE CASCADE,
    relation TEXT NOT NULL,
    sex TEXT NOT NULL,
    age_group TEXT NOT NULL,
    identity_enc BLOB,
    description_enc BLOB,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX perpetrators_case_idx ON perpetrators (case_id);
