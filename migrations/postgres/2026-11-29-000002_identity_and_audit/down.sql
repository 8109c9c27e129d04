DROP TABLE audit_checkpoints;
DROP TRIGGER audit_log_no_change ON audit_log;
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
DROP TABLE revoked_tokens;
DROP TABLE sessions;
DROP TABLE recovery_codes;
DROP TABLE credentials;
DROP TABLE users;
