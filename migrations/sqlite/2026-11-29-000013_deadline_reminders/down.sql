DROP TABLE deadline_reminders;
