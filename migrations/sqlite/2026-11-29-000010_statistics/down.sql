DROP TABLE indicator_entries;
DROP TABLE stats_reports;
DROP INDEX referrals_stats_idx;
DROP INDEX incidents_stats_idx;
DROP INDEX cases_closed_stats_idx;
DROP INDEX cases_stats_idx;
