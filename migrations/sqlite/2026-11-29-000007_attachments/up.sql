-- Attachments (images and PDF): content and name sealed under the case's
-- data key; type and size are operational.
CREATE TABLE attachments (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    content_type TEXT NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'application/pdf')),
    size_bytes BIGINT NOT NULL,
    name_enc BLOB,
    content_enc BLOB NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at TIMESTAMP NOT NULL
);
CREATE INDEX attachments_case_idx ON attachments (case_id);
