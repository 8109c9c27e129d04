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
-- so an incident's counts never need its case.
ALTER TABLE incidents ADD COLUMN survivor_age_band TEXT;
UPDATE incidents i SET survivor_age_band = c.age_band
FROM cases c WHERE c.id = i.case_id AND c.age_band IS NOT NULL;
CREATE OR REPLACE FUNCTION incidents_copy_case_codes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT c.school_id, c.survivor_sex, c.age_band INTO NEW.school_id, NEW.survivor_sex, NEW.survivor_age_band
    FROM cases c WHERE c.id = NEW.case_id;
    RETURN NEW;
END;
$$;
CREATE FUNCTION cases_age_to_incidents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE incidents SET survivor_age_band = NEW.age_band WHERE case_id = NEW.id;
    RETURN NEW;
END;
$$;
CREATE TRIGGER cases_age_to_incidents AFTER UPDATE OF age_band ON cases
    FOR EACH ROW WHEN (OLD.age_band IS DISTINCT FROM NEW.age_band)
    EXECUTE FUNCTION cases_age_to_incidents();

-- Incidents: each context, and the sub-type (deferred like 000012's).
CREATE FUNCTION incidents_count_contexts(i incidents, delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    context TEXT;
    codes TEXT := COALESCE(i.survivor_sex, '') || '|' || COALESCE(i.survivor_age_band, '');
BEGIN
    FOREACH context IN ARRAY string_to_array(i.contexts, ',') LOOP
        IF context <> '' THEN
            PERFORM stats_count(i.created_at, i.school_id, 'incident_context', context, codes, delta);
        END IF;
    END LOOP;
    IF i.csa_subtype IS NOT NULL AND i.csa_subtype <> '' THEN
        PERFORM stats_count(i.created_at, i.school_id, 'incident_csa', i.csa_subtype, codes, delta);
    END IF;
END;
$$;
CREATE FUNCTION incidents_contexts_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM incidents_count_contexts(OLD, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM incidents_count_contexts(NEW, 1);
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER incidents_contexts_counted AFTER INSERT OR DELETE ON incidents
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION incidents_contexts_counted();
CREATE CONSTRAINT TRIGGER incidents_contexts_recounted
    AFTER UPDATE OF created_at, school_id, survivor_sex, survivor_age_band, contexts, csa_subtype ON incidents
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at
        OR OLD.school_id IS DISTINCT FROM NEW.school_id
        OR OLD.survivor_sex IS DISTINCT FROM NEW.survivor_sex
        OR OLD.survivor_age_band IS DISTINCT FROM NEW.survivor_age_band
        OR OLD.contexts IS DISTINCT FROM NEW.contexts
        OR OLD.csa_subtype IS DISTINCT FROM NEW.csa_subtype)
    EXECUTE FUNCTION incidents_contexts_counted();

-- Cases: with or without a disability.
CREATE FUNCTION cases_count_disability(c cases, delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM stats_count(c.created_at, COALESCE(c.recorded_school_id, c.school_id), 'case_disability', c.survivor_sex,
        CASE WHEN c.disability THEN 'with' ELSE 'without' END, delta);
END;
$$;
CREATE FUNCTION cases_disability_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM cases_count_disability(OLD, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM cases_count_disability(NEW, 1);
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER cases_disability_counted AFTER INSERT OR DELETE ON cases
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION cases_disability_counted();
CREATE CONSTRAINT TRIGGER cases_disability_recounted
    AFTER UPDATE OF created_at, school_id, recorded_school_id, survivor_sex, disability ON cases
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at
        OR COALESCE(OLD.recorded_school_id, OLD.school_id) IS DISTINCT FROM COALESCE(NEW.recorded_school_id, NEW.school_id)
        OR OLD.survivor_sex IS DISTINCT FROM NEW.survivor_sex
        OR OLD.disability IS DISTINCT FROM NEW.disability)
    EXECUTE FUNCTION cases_disability_counted();

-- What is already there, summed in one pass (an upgrade of a populated
-- store). The measures are new, so nothing is there to add to.
INSERT INTO stats_counts (grain, bucket, school_id, measure, a, b, n)
SELECT g.grain,
       CASE g.grain WHEN 'd' THEN to_char(x.ts, 'YYYY-MM-DD') ELSE to_char(date_trunc('month', x.ts), 'YYYY-MM-DD') END,
       x.school_id, x.measure, x.a, x.b, COUNT(*)
FROM (
    SELECT i.created_at AS ts, i.school_id AS school_id, 'incident_context' AS measure, j.context AS a,
           COALESCE(i.survivor_sex, '') || '|' || COALESCE(i.survivor_age_band, '') AS b
    FROM incidents i CROSS JOIN LATERAL unnest(string_to_array(i.contexts, ',')) AS j(context)
    WHERE j.context <> ''
    UNION ALL
    SELECT created_at, school_id, 'incident_csa', csa_subtype,
           COALESCE(survivor_sex, '') || '|' || COALESCE(survivor_age_band, '')
    FROM incidents WHERE csa_subtype IS NOT NULL AND csa_subtype <> ''
    UNION ALL
    SELECT created_at, COALESCE(recorded_school_id, school_id), 'case_disability', survivor_sex,
           CASE WHEN disability THEN 'with' ELSE 'without' END
    FROM cases
) x
CROSS JOIN (VALUES ('d'), ('m')) AS g(grain)
WHERE x.school_id IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6;
