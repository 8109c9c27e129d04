DROP INDEX legal_holds_case_idx;
DROP TABLE legal_holds;
DROP INDEX closure_requests_pending_idx;
DROP INDEX closure_requests_case_idx;
DROP TABLE closure_requests;
DROP INDEX cases_assigned_idx;
ALTER TABLE cases DROP COLUMN assigned_to;
