-- Reminders before a clock falls due (policies/referral-protocol.toml
-- [reminders]): one row per clock and point, written in the same
-- transaction as the reminder's outbox rows. The primary key makes the
-- send once-only however many schedulers race: the insert that loses adds
-- nothing, and its transaction sends nothing. A point the scheduler found
-- already superseded by a later one (it was down) is kept as 'skipped',
-- so it is never sent late.
CREATE TABLE deadline_reminders (
    deadline_id TEXT NOT NULL REFERENCES deadlines (id) ON DELETE CASCADE,
    point TEXT NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    remind_at TIMESTAMP NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('sent', 'skipped')),
    recipients INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (deadline_id, point)
);
CREATE INDEX deadline_reminders_case_idx ON deadline_reminders (case_id);
