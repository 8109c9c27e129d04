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
CREATE TABLE stats_counts (
    grain TEXT NOT NULL CHECK (grain IN ('d', 'm')),
    bucket TEXT NOT NULL,
    school_id TEXT NOT NULL,
    measure TEXT NOT NULL,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (grain, bucket, school_id, measure, a, b)
);

-- Adds `delta` to the day's and the month's row. The triggers below are
-- deferred to the commit, when a write has already appended to the audit
-- chain and so holds its append lock: the summary adds little to the time
-- writers hold it (an immediate trigger took it at the first counted row
-- and cut intake by a third), and taking it here first means writers that
-- did not append (bulk generation) never wait on each other's summary rows
-- in opposite orders. Restores make them immediate (one transaction).
CREATE FUNCTION stats_count(ts TIMESTAMP, school TEXT, what TEXT, code_a TEXT, code_b TEXT, delta BIGINT)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF ts IS NULL OR school IS NULL THEN
        RETURN;
    END IF;
    -- PG_APPEND_LOCK of src/audit/mod.rs ("audit_lo").
    PERFORM pg_advisory_xact_lock(7022629598040910959);
    INSERT INTO stats_counts AS s (grain, bucket, school_id, measure, a, b, n)
    VALUES ('d', to_char(ts, 'YYYY-MM-DD'), school, what, code_a, code_b, delta),
           ('m', to_char(date_trunc('month', ts), 'YYYY-MM-DD'), school, what, code_a, code_b, delta)
    ON CONFLICT (grain, bucket, school_id, measure, a, b) DO UPDATE SET n = s.n + excluded.n;
    -- No row of zero is kept: the table is the same whatever the history.
    IF delta < 0 THEN
        DELETE FROM stats_counts s WHERE s.n = 0 AND s.school_id = school AND s.measure = what
            AND s.a = code_a AND s.b = code_b
            AND ((s.grain = 'd' AND s.bucket = to_char(ts, 'YYYY-MM-DD'))
              OR (s.grain = 'm' AND s.bucket = to_char(date_trunc('month', ts), 'YYYY-MM-DD')));
    END IF;
END;
$$;

CREATE FUNCTION stats_whole(later TIMESTAMP, earlier TIMESTAMP, seconds INTEGER) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CAST(CAST(FLOOR(EXTRACT(EPOCH FROM (later - earlier)) / seconds) AS BIGINT) AS TEXT)
$$;

CREATE FUNCTION cases_count(c cases, delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM stats_count(c.created_at, c.school_id, 'case', c.survivor_sex, COALESCE(c.age_band, ''), delta);
    PERFORM stats_count(c.closed_at, c.school_id, 'closure', '', stats_whole(c.closed_at, c.created_at, 86400), delta);
END;
$$;
CREATE FUNCTION cases_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM cases_count(OLD, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM cases_count(NEW, 1);
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER cases_counted AFTER INSERT OR DELETE ON cases
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION cases_counted();
CREATE CONSTRAINT TRIGGER cases_recounted AFTER UPDATE OF created_at, school_id, survivor_sex, age_band, closed_at ON cases
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at
        OR OLD.school_id IS DISTINCT FROM NEW.school_id
        OR OLD.survivor_sex IS DISTINCT FROM NEW.survivor_sex
        OR OLD.age_band IS DISTINCT FROM NEW.age_band
        OR OLD.closed_at IS DISTINCT FROM NEW.closed_at)
    EXECUTE FUNCTION cases_counted();

CREATE FUNCTION incidents_count(i incidents, delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM stats_count(i.created_at, i.school_id, 'incident_type', COALESCE(i.survivor_sex, ''), i.incident_type, delta);
    PERFORM stats_count(i.created_at, i.school_id, 'incident_relation', COALESCE(i.survivor_sex, ''), i.perpetrator_relation, delta);
    PERFORM stats_count(i.created_at, i.school_id, 'incident_delay', COALESCE(i.survivor_sex, ''), i.reporting_delay, delta);
END;
$$;
CREATE FUNCTION incidents_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM incidents_count(OLD, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM incidents_count(NEW, 1);
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER incidents_counted AFTER INSERT OR DELETE ON incidents
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION incidents_counted();
CREATE CONSTRAINT TRIGGER incidents_recounted AFTER UPDATE OF created_at, school_id, survivor_sex, incident_type, perpetrator_relation, reporting_delay ON incidents
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at
        OR OLD.school_id IS DISTINCT FROM NEW.school_id
        OR OLD.survivor_sex IS DISTINCT FROM NEW.survivor_sex
        OR OLD.incident_type IS DISTINCT FROM NEW.incident_type
        OR OLD.perpetrator_relation IS DISTINCT FROM NEW.perpetrator_relation
        OR OLD.reporting_delay IS DISTINCT FROM NEW.reporting_delay)
    EXECUTE FUNCTION incidents_counted();

-- Referrals: outcome, and timeliness of acknowledged ones. Whether an
-- unacknowledged referral is overdue depends on the time of the report, so
-- those are counted from the rows (a partial index keeps that small).
CREATE FUNCTION referrals_count(r referrals, delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM stats_count(r.sent_at, r.school_id, 'referral', r.agency_type, r.status, delta);
    IF r.acknowledged_at IS NOT NULL THEN
        PERFORM stats_count(r.sent_at, r.school_id, 'referral_ack',
            CASE WHEN r.acknowledged_at <= r.acknowledge_by THEN 'on_time' ELSE 'late' END,
            stats_whole(r.acknowledged_at, r.sent_at, 3600), delta);
    END IF;
END;
$$;
CREATE FUNCTION referrals_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM referrals_count(OLD, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM referrals_count(NEW, 1);
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER referrals_counted AFTER INSERT OR DELETE ON referrals
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION referrals_counted();
CREATE CONSTRAINT TRIGGER referrals_recounted AFTER UPDATE OF sent_at, school_id, agency_type, status, acknowledge_by, acknowledged_at ON referrals
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.sent_at IS DISTINCT FROM NEW.sent_at
        OR OLD.school_id IS DISTINCT FROM NEW.school_id
        OR OLD.agency_type IS DISTINCT FROM NEW.agency_type
        OR OLD.status IS DISTINCT FROM NEW.status
        OR OLD.acknowledge_by IS DISTINCT FROM NEW.acknowledge_by
        OR OLD.acknowledged_at IS DISTINCT FROM NEW.acknowledged_at)
    EXECUTE FUNCTION referrals_counted();
CREATE INDEX referrals_unacknowledged_idx ON referrals (school_id, sent_at, acknowledge_by)
    WHERE acknowledged_at IS NULL;

-- What is already there, summed in one pass.
INSERT INTO stats_counts (grain, bucket, school_id, measure, a, b, n)
SELECT g.grain,
       CASE g.grain WHEN 'd' THEN to_char(x.ts, 'YYYY-MM-DD')
            ELSE to_char(date_trunc('month', x.ts), 'YYYY-MM-DD') END,
       x.school_id, x.measure, x.a, x.b, COUNT(*)
FROM (
    SELECT created_at AS ts, school_id, 'case' AS measure, survivor_sex AS a, COALESCE(age_band, '') AS b FROM cases
    UNION ALL
    SELECT closed_at, school_id, 'closure', '', stats_whole(closed_at, created_at, 86400)
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
           stats_whole(acknowledged_at, sent_at, 3600)
    FROM referrals WHERE acknowledged_at IS NOT NULL
) x
CROSS JOIN (VALUES ('d'), ('m')) AS g (grain)
WHERE x.school_id IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6;
