DROP TRIGGER cases_disability_recounted;
DROP TRIGGER cases_disability_uncounted;
DROP TRIGGER cases_disability_counted;
DROP TRIGGER incidents_contexts_recounted;
DROP TRIGGER incidents_contexts_uncounted;
DROP TRIGGER incidents_contexts_counted;
DROP TRIGGER cases_age_to_incidents;
DROP TRIGGER incidents_copy_case_codes;
CREATE TRIGGER incidents_copy_case_codes AFTER INSERT ON incidents
BEGIN
    UPDATE incidents SET
        school_id = (SELECT c.school_id FROM cases c WHERE c.id = NEW.case_id),
        survivor_sex = (SELECT c.survivor_sex FROM cases c WHERE c.id = NEW.case_id)
    WHERE id = NEW.id;
END;
ALTER TABLE incidents DROP COLUMN survivor_age_band;
DELETE FROM stats_counts WHERE measure IN ('incident_context', 'incident_csa', 'case_disability');
