DROP TABLE intake_tokens;
