DROP TABLE partner_sessions;
