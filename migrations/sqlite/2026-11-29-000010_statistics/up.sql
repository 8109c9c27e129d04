-- Statistics (DESIGN §5): indexes for the aggregate queries, released
-- reports, and the plan's staff indicators entered by schools.

-- The report's GROUP BY queries read only these indexes (covering): cases
-- recorded in a window per school, closed in a window, incidents recorded
-- in a window, referrals sent in a window.
CREATE INDEX cases_stats_idx ON cases (school_id, created_at, survivor_sex, age_band, school_level);
CREATE INDEX cases_closed_stats_idx ON cases (school_id, closed_at, created_at);

-- The school and the survivor's sex of an incident's case, copied onto the
-- incident by triggers (a case's school never changes; its sex is followed),
-- so the incident tables read one index instead of joining every incident
-- of the window to its case (see docs/PERFORMANCE.md).
ALTER TABLE incidents ADD COLUMN school_id TEXT;
ALTER TABLE incidents ADD COLUMN survivor_sex TEXT;
UPDATE incidents SET
    school_id = (SELECT c.school_id FROM cases c WHERE c.id = incidents.case_id),
    survivor_sex = (SELECT c.survivor_sex FROM cases c WHERE c.id = incidents.case_id);
CREATE TRIGGER incidents_copy_case_codes AFTER INSERT ON incidents
BEGIN
    UPDATE incidents SET
        school_id = (SELECT c.school_id FROM cases c WHERE c.id = NEW.case_id),
        survivor_sex = (SELECT c.survivor_sex FROM cases c WHERE c.id = NEW.case_id)
    WHERE id = NEW.id;
END;
CREATE TRIGGER cases_sex_to_incidents AFTER UPDATE OF survivor_sex ON cases
WHEN OLD.survivor_sex IS NOT NEW.survivor_sex
BEGIN
    UPDATE incidents SET survivor_sex = NEW.survivor_sex WHERE case_id = NEW.id;
END;
CREATE INDEX incidents_stats_idx ON incidents (school_id, created_at, survivor_sex, incident_type, perpetrator_relation, reporting_delay);
CREATE INDEX referrals_stats_idx ON referrals (school_id, sent_at, agency_type, status, acknowledge_by, acknowledged_at);

-- A report of an area for a period: computed (draft), reviewed and released
-- by a district officer. `body` is the published JSON (after suppression):
-- no raw small count is ever stored here. A released report never changes.
CREATE TABLE stats_reports (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    area_id TEXT NOT NULL REFERENCES organisations (id),
    period TEXT NOT NULL,
    window_start TIMESTAMP NOT NULL,
    window_end TIMESTAMP NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'released')),
    body TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    computed_by TEXT NOT NULL,
    computed_at TIMESTAMP NOT NULL,
    released_by TEXT,
    released_at TIMESTAMP
);
CREATE UNIQUE INDEX stats_reports_released_idx ON stats_reports (area_id, period) WHERE status = 'released';
CREATE INDEX stats_reports_area_idx ON stats_reports (area_id, period, computed_at);

-- Released reports are frozen: no update, no delete.
CREATE TRIGGER stats_reports_released_frozen BEFORE UPDATE ON stats_reports
WHEN OLD.status = 'released'
BEGIN SELECT RAISE(ABORT, 'a released report never changes'); END;
CREATE TRIGGER stats_reports_released_kept BEFORE DELETE ON stats_reports
WHEN OLD.status = 'released'
BEGIN SELECT RAISE(ABORT, 'a released report never changes'); END;

-- The plan's indicators (section II.2.3): staff figures by sex, entered
-- once per period by each school. Not pupils' data, but people: published
-- only under the same release rules.
CREATE TABLE indicator_entries (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    school_id TEXT NOT NULL REFERENCES organisations (id),
    period TEXT NOT NULL,
    figure TEXT NOT NULL,
    women INTEGER NOT NULL CHECK (women >= 0),
    men INTEGER NOT NULL CHECK (men >= 0),
    submitted_by TEXT NOT NULL,
    submitted_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX indicator_entries_once_idx ON indicator_entries (school_id, period, figure);
CREATE INDEX indicator_entries_period_idx ON indicator_entries (period, school_id);
