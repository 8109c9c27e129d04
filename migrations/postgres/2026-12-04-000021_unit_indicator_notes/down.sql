-- Sealed notes cannot be decrypted in SQL: going down keeps the answers
-- and loses the notes sealed since the upgrade (their column is empty).
DROP INDEX unit_indicator_entries_kek_idx;
ALTER TABLE unit_indicator_entries DROP COLUMN evidence_enc;
ALTER TABLE unit_indicator_entries DROP COLUMN wrapped_dek;
ALTER TABLE unit_indicator_entries DROP COLUMN kek_id;
ALTER TABLE unit_indicator_entries RENAME COLUMN evidence_unsealed TO evidence;
