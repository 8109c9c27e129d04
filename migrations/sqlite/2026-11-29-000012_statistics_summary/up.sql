-- Pre-summed statistics (DESIGN §5, docs/PERFORMANCE.md): every count a
-- report publishes, per school, per UTC day ('d') and per UTC month ('m'),
-- kept exact by the triggers below. A report reads whole months and days
-- here and only the hours at the window's edges from the rows themselves,
-- so its cost follows the number of schools and codes, not of cases.
--
-- One row per measure and pair of codes:
--   case              a = survivor's sex, b = age band ('' unknown); at created_at
--   closure           a = '', b = whole days from recording to closing; at closed_at
--   incident_type     a = survivor's sex, b = incident type; at the incident's created_at
--   incident_relation a = survivor's sex, b = perpetrator relation
--   incident_delay    a = survivor's sex, b = reporting delay band
--   referral          a = agency type, b = status; at sent_at
--   referral_ack      a = on_time | late, b = whole hours to acknowledge;
--                     acknowledged referrals only, at sent_at
-- Only codes and counts: no identifier of a case, pupil or person.
-- Whole hours and days are taken from whole milliseconds: julianday()
-- differences are doubles, and exactly one hour would come out as
-- 0.99999… hours.
CREATE TABLE stats_counts (
    grain TEXT NOT NULL CHECK (grain IN ('d', 'm')),
    bucket TEXT NOT NULL,
    school_id TEXT NOT NULL,
    measure TEXT NOT NULL,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (grain, bucket, school_id, measure, a, b)
) WITHOUT ROWID;

-- Writing a delta here adds it to the day's and the month's row.
CREATE VIEW stats_count_delta (ts, school_id, measure, a, b, n) AS
    SELECT NULL, NULL, NULL, NULL, NULL, NULL WHERE 0;
CREATE TRIGGER stats_count_delta_add INSTEAD OF INSERT ON stats_count_delta
WHEN NEW.ts IS NOT NULL AND NEW.school_id IS NOT NULL
BEGIN
    INSERT INTO stats_counts (grain, bucket, school_id, measure, a, b, n)
    VALUES ('d', date(NEW.ts), NEW.school_id, NEW.measure, NEW.a, NEW.b, NEW.n),
           ('m', strftime('%Y-%m-01', NEW.ts), NEW.school_id, NEW.measure, NEW.a, NEW.b, NEW.n)
    ON CONFLICT (grain, bucket, school_id, measure, a, b) DO UPDATE SET n = n + excluded.n;
    -- No row of zero is kept: the table is the same whatever the history.
    DELETE FROM stats_counts WHERE NEW.n < 0 AND n = 0 AND grain = 'd' AND bucket = date(NEW.ts)
        AND school_id = NEW.school_id AND measure = NEW.measure AND a = NEW.a AND b = NEW.b;
    DELETE FROM stats_counts WHERE NEW.n < 0 AND n = 0 AND grain = 'm' AND bucket = strftime('%Y-%m-01', NEW.ts)
        AND school_id = NEW.school_id AND measure = NEW.measure AND a = NEW.a AND b = NEW.b;
END;

-- Cases: recorded, and closed.
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

-- Incidents: counted once their school is known (the copy trigger of
-- 000010 sets it just after the insert, as an update).
CREATE TRIGGER incidents_counted AFTER INSERT ON incidents
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    SELECT NEW.created_at, NEW.school_id, 'incident_type', COALESCE(NEW.survivor_sex, ''), NEW.incident_type, 1
    UNION ALL
    SELECT NEW.created_at, NEW.school_id, 'incident_relation', COALESCE(NEW.survivor_sex, ''), NEW.perpetrator_relation, 1
    UNION ALL
    SELECT NEW.created_at, NEW.school_id, 'incident_delay', COALESCE(NEW.survivor_sex, ''), NEW.reporting_delay, 1;
END;
CREATE TRIGGER incidents_uncounted AFTER DELETE ON incidents
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    SELECT OLD.created_at, OLD.school_id, 'incident_type', COALESCE(OLD.survivor_sex, ''), OLD.incident_type, -1
    UNION ALL
    SELECT OLD.created_at, OLD.school_id, 'incident_relation', COALESCE(OLD.survivor_sex, ''), OLD.perpetrator_relation, -1
    UNION ALL
    SELECT OLD.created_at, OLD.school_id, 'incident_delay', COALESCE(OLD.survivor_sex, ''), OLD.reporting_delay, -1;
END;
CREATE TRIGGER incidents_recounted AFTER UPDATE OF created_at, school_id, survivor_sex, incident_type, perpetrator_relation, reporting_delay ON incidents
WHEN OLD.created_at IS NOT NEW.created_at OR OLD.school_id IS NOT NEW.school_id
    OR OLD.survivor_sex IS NOT NEW.survivor_sex OR OLD.incident_type IS NOT NEW.incident_type
    OR OLD.perpetrator_relation IS NOT NEW.perpetrator_relation
    OR OLD.reporting_delay IS NOT NEW.reporting_delay
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    SELECT OLD.created_at, OLD.school_id, 'incident_type', COALESCE(OLD.survivor_sex, ''), OLD.incident_type, -1
    UNION ALL
    SELECT OLD.created_at, OLD.school_id, 'incident_relation', COALESCE(OLD.survivor_sex, ''), OLD.perpetrator_relation, -1
    UNION ALL
    SELECT OLD.created_at, OLD.school_id, 'incident_delay', COALESCE(OLD.survivor_sex, ''), OLD.reporting_delay, -1
    UNION ALL
    SELECT NEW.created_at, NEW.school_id, 'incident_type', COALESCE(NEW.survivor_sex, ''), NEW.incident_type, 1
    UNION ALL
    SELECT NEW.created_at, NEW.school_id, 'incident_relation', COALESCE(NEW.survivor_sex, ''), NEW.perpetrator_relation, 1
    UNION ALL
    SELECT NEW.created_at, NEW.school_id, 'incident_delay', COALESCE(NEW.survivor_sex, ''), NEW.reporting_delay, 1;
END;

-- Referrals: outcome, and timeliness of acknowledged ones. Whether an
-- unacknowledged referral is overdue depends on the time of the report, so
-- those are counted from the rows (a partial index keeps that small).
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
CREATE INDEX referrals_unacknowledged_idx ON referrals (school_id, sent_at, acknowledge_by)
    WHERE acknowledged_at IS NULL;

-- What is already there, summed in one pass.
INSERT INTO stats_counts (grain, bucket, school_id, measure, a, b, n)
SELECT g.grain,
       CASE g.grain WHEN 'd' THEN date(x.ts) ELSE strftime('%Y-%m-01', x.ts) END,
       x.school_id, x.measure, x.a, x.b, COUNT(*)
FROM (
    SELECT created_at AS ts, school_id, 'case' AS measure, survivor_sex AS a, COALESCE(age_band, '') AS b FROM cases
    UNION ALL
    SELECT closed_at, school_id, 'closure', '', (CAST(ROUND((julianday(closed_at) - julianday(created_at)) * 86400000) AS INTEGER) / 86400000)
    FROM cases WHERE closed_at IS NOT NULL
    UNION ALL
    SELECT created_at, school_id, 'incident_type', COALESCE(survivor_sex, ''), incident_type FROM incidents
    UNION ALL
    SELECT created_at, school_id, 'incident_relation', COALESCE(survivor_sex, ''), perpetrator_relation FROM incidents
    UNION ALL
    SELECT created_at, school_id, 'incident_delay', COALESCE(survivor_sex, ''), reporting_delay FROM incidents
    UNION ALL
    SELECT sent_at, school_id, 'referral', agency_type, status FROM referrals
    UNION ALL
    SELECT sent_at, school_id, 'referral_ack',
           CASE WHEN acknowledged_at <= acknowledge_by THEN 'on_time' ELSE 'late' END,
           (CAST(ROUND((julianday(acknowledged_at) - julianday(sent_at)) * 86400000) AS INTEGER) / 3600000)
    FROM referrals WHERE acknowledged_at IS NOT NULL
) x
CROSS JOIN (SELECT 'd' AS grain UNION ALL SELECT 'm') g
WHERE x.school_id IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6;
