-- The transactional outbox (DESIGN §3, issue 5): an e-mail to send, written in
-- the same transaction as the event it announces, so it exists if and only if
-- the event committed. `notify::Outbox` sends it later.
--
-- No personal data: the recipient is a staff or partner address; `params` is a
-- JSON object of allow-listed, non-personal values (a link, a deadline, an
-- opaque reference); `last_error` holds an error kind, never message content.
CREATE TABLE outbox (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    idempotency_key TEXT NOT NULL UNIQUE,
    recipient TEXT NOT NULL,
    language TEXT NOT NULL CHECK (language IN ('vi', 'en')),
    template TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    locked_by TEXT,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
-- The worker's question: what is due?
CREATE INDEX outbox_status_due_idx ON outbox (status, next_attempt_at);
