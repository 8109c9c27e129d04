DROP TABLE partner_links;
DROP TABLE escalations;
DROP TABLE deadlines;
DROP TABLE suggestion_skips;
DROP TABLE referrals;
ALTER TABLE users DROP COLUMN language;
