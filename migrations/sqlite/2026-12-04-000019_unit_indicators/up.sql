-- The plan's targets that are not counts of people (policies/reporting.toml
-- [[unit_indicator]]): each unit's own answer, once per period and
-- indicator. `value` is 0 or 1 for a yes/no indicator and tenths of a
-- percent (0–1000) for a percentage; `kind` records which, so a changed
-- policy cannot misread an old answer. `evidence` is a reference (a
-- document's number and date, a page's address), never a person's data.
CREATE TABLE unit_indicator_entries (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    school_id TEXT NOT NULL REFERENCES organisations (id),
    period TEXT NOT NULL,
    indicator TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('yes_no', 'percent')),
    value INTEGER NOT NULL CHECK (value >= 0 AND value <= 1000),
    evidence TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    submitted_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX unit_indicator_entries_once_idx ON unit_indicator_entries (school_id, period, indicator);
CREATE INDEX unit_indicator_entries_period_idx ON unit_indicator_entries (period, school_id);

-- Reminders to units that have not entered their indicators, before the
-- due date and on it: one row per unit, period and point, written in the
-- same transaction as the reminder's outbox rows. The primary key makes
-- the send once-only however many schedulers race (as deadline_reminders).
CREATE TABLE indicator_reminders (
    school_id TEXT NOT NULL REFERENCES organisations (id),
    period TEXT NOT NULL,
    point TEXT NOT NULL,
    remind_at TIMESTAMP NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('sent', 'skipped')),
    recipients INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (school_id, period, point)
);
