-- Back to 000012: the summary counts at school_id; the columns go.
DELETE FROM escalations WHERE reason = 'transfer_not_answered';
DELETE FROM deadlines WHERE kind = 'transfer';
ALTER TABLE escalations DROP CONSTRAINT escalations_reason_check;
ALTER TABLE escalations ADD CONSTRAINT escalations_reason_check
    CHECK (reason IN ('not_assessed', 'plan_not_made', 'referral_not_sent', 'not_acknowledged'));
ALTER TABLE deadlines DROP CONSTRAINT deadlines_kind_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_kind_check
    CHECK (kind IN ('assessed', 'plan_made', 'send', 'acknowledge'));
CREATE OR REPLACE FUNCTION referrals_count(r referrals, delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM stats_count(r.sent_at, r.school_id, 'referral', r.agency_type, r.status, delta);
    IF r.acknowledged_at IS NOT NULL THEN
        PERFORM stats_count(r.sent_at, r.school_id, 'referral_ack',
            CASE WHEN r.acknowledged_at <= r.acknowledge_by THEN 'on_time' ELSE 'late' END,
            stats_whole(r.acknowledged_at, r.sent_at, 3600), delta);
    END IF;
END;
$$;
CREATE OR REPLACE FUNCTION cases_count(c cases, delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM stats_count(c.created_at, c.school_id, 'case', c.survivor_sex, COALESCE(c.age_band, ''), delta);
    PERFORM stats_count(c.closed_at, c.school_id, 'closure', '', stats_whole(c.closed_at, c.created_at, 86400), delta);
END;
$$;
DROP INDEX referrals_recorded_stats_idx;
DROP INDEX cases_recorded_stats_idx;
ALTER TABLE referrals DROP COLUMN recorded_school_id;
ALTER TABLE cases DROP COLUMN recorded_school_id;
ALTER TABLE case_keys DROP COLUMN bound_school_id;
DROP TABLE case_transfers;
