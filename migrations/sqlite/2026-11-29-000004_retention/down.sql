DROP INDEX cases_retention_idx;
ALTER TABLE cases DROP COLUMN content_destroyed_at;
ALTER TABLE cases DROP COLUMN legal_hold;
