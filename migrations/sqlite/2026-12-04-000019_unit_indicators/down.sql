DROP TABLE indicator_reminders;
DROP TABLE unit_indicator_entries;
