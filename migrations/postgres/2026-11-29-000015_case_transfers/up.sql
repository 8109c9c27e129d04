-- Transfer of a pupil's case to another school (issue 16). The sending
-- school's focal point asks; the receiving school's focal points see it as
-- pending, open it (viewed) and accept or refuse; the sender may cancel
-- while it is open. At most one open transfer per case.
--   coded       status;
--   sensitive   reason_enc, answer_enc: sealed under the case's data key;
--   operational ids, schools, people, times, version.
CREATE TABLE case_transfers (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    from_school_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE RESTRICT,
    to_school_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE RESTRICT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'viewed', 'accepted', 'refused', 'cancelled')),
    reason_enc BYTEA NOT NULL,
    answer_enc BYTEA,
    requested_by TEXT NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    answer_by TIMESTAMP NOT NULL,
    viewed_at TIMESTAMP,
    answered_by TEXT,
    answered_at TIMESTAMP,
    version INTEGER NOT NULL,
    CHECK (from_school_id <> to_school_id)
);
CREATE UNIQUE INDEX case_transfers_open_idx ON case_transfers (case_id)
    WHERE status IN ('pending', 'viewed');
CREATE INDEX case_transfers_to_idx ON case_transfers (to_school_id, status);
CREATE INDEX case_transfers_from_idx ON case_transfers (from_school_id, requested_at);

-- A data key re-wrapped at an accepted transfer is bound to the school now
-- holding the case (crypto/envelope.rs); NULL: bound to the case alone.
ALTER TABLE case_keys ADD COLUMN bound_school_id TEXT;

-- Statistics keep counting a case, and its referrals, at the school that
-- recorded them. NULL: recorded where it is (school_id); set once, at the
-- first accepted transfer, to the school the case came from.
ALTER TABLE cases ADD COLUMN recorded_school_id TEXT;
ALTER TABLE referrals ADD COLUMN recorded_school_id TEXT;
CREATE INDEX cases_recorded_stats_idx ON cases (recorded_school_id, created_at)
    WHERE recorded_school_id IS NOT NULL;
CREATE INDEX referrals_recorded_stats_idx ON referrals (recorded_school_id, sent_at)
    WHERE recorded_school_id IS NOT NULL;

-- The summary functions of 000012, counting at COALESCE(recorded_school_id,
-- school_id): the update that moves a case sets both, so its -1 and +1 land
-- on the same school and its counts stay.
CREATE OR REPLACE FUNCTION cases_count(c cases, delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM stats_count(c.created_at, COALESCE(c.recorded_school_id, c.school_id), 'case', c.survivor_sex, COALESCE(c.age_band, ''), delta);
    PERFORM stats_count(c.closed_at, COALESCE(c.recorded_school_id, c.school_id), 'closure', '', stats_whole(c.closed_at, c.created_at, 86400), delta);
END;
$$;
CREATE OR REPLACE FUNCTION referrals_count(r referrals, delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM stats_count(r.sent_at, COALESCE(r.recorded_school_id, r.school_id), 'referral', r.agency_type, r.status, delta);
    IF r.acknowledged_at IS NOT NULL THEN
        PERFORM stats_count(r.sent_at, COALESCE(r.recorded_school_id, r.school_id), 'referral_ack',
            CASE WHEN r.acknowledged_at <= r.acknowledge_by THEN 'on_time' ELSE 'late' END,
            stats_whole(r.acknowledged_at, r.sent_at, 3600), delta);
    END IF;
END;
$$;

-- The transfer's clock is a deadline of its own kind, escalating for its
-- own reason.
ALTER TABLE deadlines DROP CONSTRAINT deadlines_kind_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_kind_check
    CHECK (kind IN ('assessed', 'plan_made', 'send', 'acknowledge', 'transfer'));
ALTER TABLE escalations DROP CONSTRAINT escalations_reason_check;
ALTER TABLE escalations ADD CONSTRAINT escalations_reason_check
    CHECK (reason IN ('not_assessed', 'plan_not_made', 'referral_not_sent', 'not_acknowledged', 'transfer_not_answered'));
