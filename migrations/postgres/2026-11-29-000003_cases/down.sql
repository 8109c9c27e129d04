DROP TABLE break_glass;
DROP TABLE chronology;
DROP TABLE incidents;
DROP TABLE pupils;
DROP TABLE case_keys;
DROP TABLE case_requests;
DROP TABLE cases;
