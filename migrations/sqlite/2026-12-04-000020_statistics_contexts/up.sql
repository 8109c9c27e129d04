-- Tables by context, child-sexual-abuse sub-type and disability (issue 17):
-- three more measures in the pre-summed counts of 000012, kept exact by
-- the triggers below and back-filled from the rows already in the store.
--
--   incident_context  a = a context the incident carries (one row for each:
--                     `incidents.contexts` holds the sorted codes joined by
--                     commas), b = survivor's sex || '|' || age band ('' when
--                     unknown); at the incident's created_at and school_id,
--                     like the incident measures of 000012
--   incident_csa      a = child-sexual-abuse sub-type, b = sex|age band;
--                     incidents with a sub-type only
--   case_disability   a = survivor's sex, b = 'with' | 'without'; at the
--                     case's created_at and recording school, like `case`
-- Only codes and counts, as in 000012.

-- The survivor's age band, copied onto each incident like the sex (000010),
-- so an incident's counts never need its case (a deleted case's incidents
-- are uncounted from their own row).
ALTER TABLE incidents ADD COLUMN survivor_age_band TEXT;
UPDATE incidents SET survivor_age_band = (SELECT c.age_band FROM cases c WHERE c.id = incidents.case_id);
DROP TRIGGER incidents_copy_case_codes;
CREATE TRIGGER incidents_copy_case_codes AFTER INSERT ON incidents
BEGIN
    UPDATE incidents SET
        school_id = (SELECT c.school_id FROM cases c WHERE c.id = NEW.case_id),
        survivor_sex = (SELECT c.survivor_sex FROM cases c WHERE c.id = NEW.case_id),
        survivor_age_band = (SELECT c.age_band FROM cases c WHERE c.id = NEW.case_id)
    WHERE id = NEW.id;
END;
CREATE TRIGGER cases_age_to_incidents AFTER UPDATE OF age_band ON cases
WHEN OLD.age_band IS NOT NEW.age_band
BEGIN
    UPDATE incidents SET survivor_age_band = NEW.age_band WHERE case_id = NEW.id;
END;

-- Incidents: each context, and the sub-type. Counted once the school is
-- known (the copy trigger sets it just after the insert, as an update).
CREATE TRIGGER incidents_contexts_counted AFTER INSERT ON incidents
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    SELECT NEW.created_at, NEW.school_id, 'incident_context', j.value,
           COALESCE(NEW.survivor_sex, '') || '|' || COALESCE(NEW.survivor_age_band, ''), 1
    FROM json_each('["' || replace(NEW.contexts, ',', '","') || '"]') j WHERE j.value <> ''
    UNION ALL
    SELECT NEW.created_at, NEW.school_id, 'incident_csa', NEW.csa_subtype,
           COALESCE(NEW.survivor_sex, '') || '|' || COALESCE(NEW.survivor_age_band, ''), 1
    WHERE NEW.csa_subtype IS NOT NULL AND NEW.csa_subtype <> '';
END;
CREATE TRIGGER incidents_contexts_uncounted AFTER DELETE ON incidents
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    SELECT OLD.created_at, OLD.school_id, 'incident_context', j.value,
           COALESCE(OLD.survivor_sex, '') || '|' || COALESCE(OLD.survivor_age_band, ''), -1
    FROM json_each('["' || replace(OLD.contexts, ',', '","') || '"]') j WHERE j.value <> ''
    UNION ALL
    SELECT OLD.created_at, OLD.school_id, 'incident_csa', OLD.csa_subtype,
           COALESCE(OLD.survivor_sex, '') || '|' || COALESCE(OLD.survivor_age_band, ''), -1
    WHERE OLD.csa_subtype IS NOT NULL AND OLD.csa_subtype <> '';
END;
CREATE TRIGGER incidents_contexts_recounted AFTER UPDATE OF created_at, school_id, survivor_sex, survivor_age_band, contexts, csa_subtype ON incidents
WHEN OLD.created_at IS NOT NEW.created_at OR OLD.school_id IS NOT NEW.school_id
    OR OLD.survivor_sex IS NOT NEW.survivor_sex OR OLD.survivor_age_band IS NOT NEW.survivor_age_band
    OR OLD.contexts IS NOT NEW.contexts OR OLD.csa_subtype IS NOT NEW.csa_subtype
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    SELECT OLD.created_at, OLD.school_id, 'incident_context', j.value,
           COALESCE(OLD.survivor_sex, '') || '|' || COALESCE(OLD.survivor_age_band, ''), -1
    FROM json_each('["' || replace(OLD.contexts, ',', '","') || '"]') j WHERE j.value <> ''
    UNION ALL
    SELECT OLD.created_at, OLD.school_id, 'incident_csa', OLD.csa_subtype,
           COALESCE(OLD.survivor_sex, '') || '|' || COALESCE(OLD.survivor_age_band, ''), -1
    WHERE OLD.csa_subtype IS NOT NULL AND OLD.csa_subtype <> ''
    UNION ALL
    SELECT NEW.created_at, NEW.school_id, 'incident_context', j.value,
           COALESCE(NEW.survivor_sex, '') || '|' || COALESCE(NEW.survivor_age_band, ''), 1
    FROM json_each('["' || replace(NEW.contexts, ',', '","') || '"]') j WHERE j.value <> ''
    UNION ALL
    SELECT NEW.created_at, NEW.school_id, 'incident_csa', NEW.csa_subtype,
           COALESCE(NEW.survivor_sex, '') || '|' || COALESCE(NEW.survivor_age_band, ''), 1
    WHERE NEW.csa_subtype IS NOT NULL AND NEW.csa_subtype <> '';
END;

-- Cases: with or without a disability.
CREATE TRIGGER cases_disability_counted AFTER INSERT ON cases
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    VALUES (NEW.created_at, COALESCE(NEW.recorded_school_id, NEW.school_id), 'case_disability', NEW.survivor_sex,
            CASE WHEN NEW.disability THEN 'with' ELSE 'without' END, 1);
END;
CREATE TRIGGER cases_disability_uncounted AFTER DELETE ON cases
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    VALUES (OLD.created_at, COALESCE(OLD.recorded_school_id, OLD.school_id), 'case_disability', OLD.survivor_sex,
            CASE WHEN OLD.disability THEN 'with' ELSE 'without' END, -1);
END;
CREATE TRIGGER cases_disability_recounted AFTER UPDATE OF created_at, school_id, recorded_school_id, survivor_sex, disability ON cases
WHEN OLD.created_at IS NOT NEW.created_at
    OR COALESCE(OLD.recorded_school_id, OLD.school_id) IS NOT COALESCE(NEW.recorded_school_id, NEW.school_id)
    OR OLD.survivor_sex IS NOT NEW.survivor_sex OR OLD.disability IS NOT NEW.disability
BEGIN
    INSERT INTO stats_count_delta (ts, school_id, measure, a, b, n)
    VALUES (OLD.created_at, COALESCE(OLD.recorded_school_id, OLD.school_id), 'case_disability', OLD.survivor_sex,
            CASE WHEN OLD.disability THEN 'with' ELSE 'without' END, -1),
           (NEW.created_at, COALESCE(NEW.recorded_school_id, NEW.school_id), 'case_disability', NEW.survivor_sex,
            CASE WHEN NEW.disability THEN 'with' ELSE 'without' END, 1);
END;

-- What is already there, summed in one pass (an upgrade of a populated
-- store). The measures are new, so nothing is there to add to.
INSERT INTO stats_counts (grain, bucket, school_id, measure, a, b, n)
SELECT g.grain,
       CASE g.grain WHEN 'd' THEN date(x.ts) ELSE strftime('%Y-%m-01', x.ts) END,
       x.school_id, x.measure, x.a, x.b, COUNT(*)
FROM (
    SELECT i.created_at AS ts, i.school_id AS school_id, 'incident_context' AS measure, j.value AS a,
           COALESCE(i.survivor_sex, '') || '|' || COALESCE(i.survivor_age_band, '') AS b
    FROM incidents i, json_each('["' || replace(i.contexts, ',', '","') || '"]') j
    WHERE i.contexts <> '' AND j.value <> ''
    UNION ALL
    SELECT created_at, school_id, 'incident_csa', csa_subtype,
           COALESCE(survivor_sex, '') || '|' || COALESCE(survivor_age_band, '')
    FROM incidents WHERE csa_subtype IS NOT NULL AND csa_subtype <> ''
    UNION ALL
    SELECT created_at, COALESCE(recorded_school_id, school_id), 'case_disability', survivor_sex,
           CASE WHEN disability THEN 'with' ELSE 'without' END
    FROM cases
) x
CROSS JOIN (SELECT 'd' AS grain UNION ALL SELECT 'm') g
WHERE x.school_id IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6;
