-- Runs outside diesel's transaction (metadata.toml): rebuilding `deadlines`
-- needs foreign keys off, which SQLite allows only outside a transaction,
-- so the migration opens its own.
PRAGMA foreign_keys = OFF;
BEGIN;
DELETE FROM escalations WHERE reason = 'transfer_not_answered';
DELETE FROM deadlines WHERE kind = 'transfer';
CREATE TABLE escalations_kept AS SELECT * FROM escalations;
DROP TABLE escalations;
CREATE TABLE deadlines_new (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    school_id TEXT NOT NULL REFERENCES organisations (id),
    referral_id TEXT REFERENCES referrals (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('assessed', 'plan_made', 'send', 'acknowledge')),
    subject TEXT NOT NULL,
    rule TEXT NOT NULL,
    source TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    due_at TIMESTAMP NOT NULL,
    met_at TIMESTAMP,
    outcome TEXT,
    level INTEGER NOT NULL DEFAULT 0,
    next_check_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO deadlines_new SELECT * FROM deadlines;
DROP TABLE deadlines;
ALTER TABLE deadlines_new RENAME TO deadlines;
CREATE UNIQUE INDEX deadlines_subject_idx ON deadlines (case_id, kind, subject);
CREATE INDEX deadlines_due_idx ON deadlines (next_check_at) WHERE met_at IS NULL;
CREATE TABLE escalations (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    deadline_id TEXT NOT NULL REFERENCES deadlines (id) ON DELETE CASCADE,
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    school_id TEXT NOT NULL REFERENCES organisations (id),
    area_id TEXT NOT NULL REFERENCES organisations (id),
    level INTEGER NOT NULL CHECK (level IN (1, 2)),
    reason TEXT NOT NULL CHECK (reason IN ('not_assessed', 'plan_not_made', 'referral_not_sent', 'not_acknowledged')),
    raised_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP
);
INSERT INTO escalations SELECT * FROM escalations_kept;
DROP TABLE escalations_kept;
CREATE UNIQUE INDEX escalations_once_idx ON escalations (deadline_id, level);
CREATE INDEX escalations_area_idx ON escalations (area_id, resolved_at);
CREATE INDEX escalations_school_idx ON escalations (school_id, resolved_at);
-- Back to 000012: the summary counts at school_id; the columns go.
DROP TRIGGER referrals_recounted;
DROP TRIGGER referrals_uncounted;
DROP TRIGGER referrals_counted;
DROP TRIGGER cases_recounted;
DROP TRIGGER cases_uncounted;
DROP TRIGGER cases_counted;
CREATE TRIGGER cases_counted AFTER INSERT ON cases
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    SELECT NEW.created_at, NEW.school_id, 'case', NEW.survivor_sex, COALESCE(NEW.age_band, ''), 1
    UNION ALL
    SELECT NEW.closed_at, NEW.school_id, 'closure', '',
           (CAST(ROUND((julianday(NEW.closed_at) - julianday(NEW.created_at)) * 86400000) AS INTEGER) / 86400000), 1;
END;
CREATE TRIGGER cases_uncounted AFTER DELETE ON cases
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    SELECT OLD.created_at, OLD.school_id, 'case', OLD.survivor_sex, COALESCE(OLD.age_band, ''), -1
    UNION ALL
    SELECT OLD.closed_at, OLD.school_id, 'closure', '',
           (CAST(ROUND((julianday(OLD.closed_at) - julianday(OLD.created_at)) * 86400000) AS INTEGER) / 86400000), -1;
END;
CREATE TRIGGER cases_recounted AFTER UPDATE OF created_at, school_id, survivor_sex, age_band, closed_at ON cases
WHEN OLD.created_at IS NOT NEW.created_at OR OLD.school_id IS NOT NEW.school_id
    OR OLD.survivor_sex IS NOT NEW.survivor_sex OR OLD.age_band IS NOT NEW.age_band
    OR OLD.closed_at IS NOT NEW.closed_at
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    SELECT OLD.created_at, OLD.school_id, 'case', OLD.survivor_sex, COALESCE(OLD.age_band, ''), -1
    UNION ALL
    SELECT OLD.closed_at, OLD.school_id, 'closure', '',
           (CAST(ROUND((julianday(OLD.closed_at) - julianday(OLD.created_at)) * 86400000) AS INTEGER) / 86400000), -1
    UNION ALL
    SELECT NEW.created_at, NEW.school_id, 'case', NEW.survivor_sex, COALESCE(NEW.age_band, ''), 1
    UNION ALL
    SELECT NEW.closed_at, NEW.school_id, 'closure', '',
           (CAST(ROUND((julianday(NEW.closed_at) - julianday(NEW.created_at)) * 86400000) AS INTEGER) / 86400000), 1;
END;
CREATE TRIGGER referrals_counted AFTER INSERT ON referrals
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    SELECT NEW.sent_at, NEW.school_id, 'referral', NEW.agency_type, NEW.status, 1
    UNION ALL
    SELECT NEW.sent_at, NEW.school_id, 'referral_ack',
           CASE WHEN NEW.acknowledged_at <= NEW.acknowledge_by THEN 'on_time' ELSE 'late' END,
           (CAST(ROUND((julianday(NEW.acknowledged_at) - julianday(NEW.sent_at)) * 86400000) AS INTEGER) / 3600000), 1
    WHERE NEW.acknowledged_at IS NOT NULL;
END;
CREATE TRIGGER referrals_uncounted AFTER DELETE ON referrals
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    SELECT OLD.sent_at, OLD.school_id, 'referral', OLD.agency_type, OLD.status, -1
    UNION ALL
    SELECT OLD.sent_at, OLD.school_id, 'referral_ack',
           CASE WHEN OLD.acknowledged_at <= OLD.acknowledge_by THEN 'on_time' ELSE 'late' END,
           (CAST(ROUND((julianday(OLD.acknowledged_at) - julianday(OLD.sent_at)) * 86400000) AS INTEGER) / 3600000), -1
    WHERE OLD.acknowledged_at IS NOT NULL;
END;
CREATE TRIGGER referrals_recounted AFTER UPDATE OF sent_at, school_id, agency_type, status, acknowledge_by, acknowledged_at ON referrals
WHEN OLD.sent_at IS NOT NEW.sent_at OR OLD.school_id IS NOT NEW.school_id
    OR OLD.agency_type IS NOT NEW.agency_type OR OLD.status IS NOT NEW.status
    OR OLD.acknowledge_by IS NOT NEW.acknowledge_by OR OLD.acknowledged_at IS NOT NEW.acknowledged_at
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    SELECT OLD.sent_at, OLD.school_id, 'referral', OLD.agency_type, OLD.status, -1
    UNION ALL
    SELECT OLD.sent_at, OLD.school_id, 'referral_ack',
           CASE WHEN OLD.acknowledged_at <= OLD.acknowledge_by THEN 'on_time' ELSE 'late' END,
           (CAST(ROUND((julianday(OLD.acknowledged_at) - julianday(OLD.sent_at)) * 86400000) AS INTEGER) / 3600000), -1
    WHERE OLD.acknowledged_at IS NOT NULL
    UNION ALL
    SELECT NEW.sent_at, NEW.school_id, 'referral', NEW.agency_type, NEW.status, 1
    UNION ALL
    SELECT NEW.sent_at, NEW.school_id, 'referral_ack',
           CASE WHEN NEW.acknowledged_at <= NEW.acknowledge_by THEN 'on_time' ELSE 'late' END,
           (CAST(ROUND((julianday(NEW.acknowledged_at) - julianday(NEW.sent_at)) * 86400000) AS INTEGER) / 3600000), 1
    WHERE NEW.acknowledged_at IS NOT NULL;
END;
DROP INDEX referrals_recorded_stats_idx;
DROP INDEX cases_recorded_stats_idx;
ALTER TABLE referrals DROP COLUMN recorded_school_id;
ALTER TABLE cases DROP COLUMN recorded_school_id;
ALTER TABLE case_keys DROP COLUMN bound_school_id;
DROP INDEX case_transfers_from_idx;
DROP INDEX case_transfers_to_idx;
DROP INDEX case_transfers_open_idx;
DROP TABLE case_transfers;
COMMIT;
PRAGMA foreign_keys = ON;
