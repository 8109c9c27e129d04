DROP TRIGGER cases_disability_recounted ON cases;
DROP TRIGGER cases_disability_counted ON cases;
DROP FUNCTION cases_disability_counted();
DROP FUNCTION cases_count_disability(cases, BIGINT);
DROP TRIGGER incidents_contexts_recounted ON incidents;
DROP TRIGGER incidents_contexts_counted ON incidents;
DROP FUNCTION incidents_contexts_counted();
DROP FUNCTION incidents_count_contexts(incidents, BIGINT);
DROP TRIGGER cases_age_to_incidents ON cases;
DROP FUNCTION cases_age_to_incidents();
CREATE OR REPLACE FUNCTION incidents_copy_case_codes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT c.school_id, c.survivor_sex INTO NEW.school_id, NEW.survivor_sex
    FROM cases c WHERE c.id = NEW.case_id;
    RETURN NEW;
END;
$$;
ALTER TABLE incidents DROP COLUMN survivor_age_band;
DELETE FROM stats_counts WHERE measure IN ('incident_context', 'incident_csa', 'case_disability');
