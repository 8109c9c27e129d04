-- The evidence notes of the unit indicators are free text typed by a
-- school, which may name people: they are sealed at rest like every other
-- free-text field (src/stats/unit_notes.rs). Each note has a data key of
-- its own, wrapped by the keyring's field KEK (kek_id, wrapped_dek) and
-- bound to its row, unit, period and indicator; `keys rotate` rewraps
-- these keys as it rewraps the cases' ones.
--
-- SQL cannot encrypt: the notes stored in plain text before this migration
-- move to `evidence_unsealed` and are sealed by the service at its next
-- start (and by `keys rotate`), which then empties the column. A row
-- written after this migration never holds its note in that column.
ALTER TABLE unit_indicator_entries RENAME COLUMN evidence TO evidence_unsealed;
ALTER TABLE unit_indicator_entries ADD COLUMN kek_id TEXT;
ALTER TABLE unit_indicator_entries ADD COLUMN wrapped_dek BLOB;
ALTER TABLE unit_indicator_entries ADD COLUMN evidence_enc BLOB;
CREATE INDEX unit_indicator_entries_kek_idx ON unit_indicator_entries (kek_id);
