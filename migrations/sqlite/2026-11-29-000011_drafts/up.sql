-- Intake drafts: what a focal point typed before the case was saved, sealed
-- under a data key of the draft's own (wrapped by the keyring's field KEK),
-- one per person, kept for a week.
CREATE TABLE drafts (
    user_id TEXT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    kek_id TEXT NOT NULL,
    wrapped_dek BLOB NOT NULL,
    payload_enc BLOB NOT NULL,
    saved_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
