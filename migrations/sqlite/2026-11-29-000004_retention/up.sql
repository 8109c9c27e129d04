-- Retention: a legal hold keeps a case's content past its retention period;
-- content_destroyed_at records when the case's data key was destroyed
-- (crypto-shredding). Coded fields stay for statistics.
ALTER TABLE cases ADD COLUMN legal_hold BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE cases ADD COLUMN content_destroyed_at TIMESTAMP;
CREATE INDEX cases_retention_idx ON cases (status, closed_at);
