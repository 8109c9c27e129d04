//! Case-work (issue 16): reminders. API tests on both stores, hostile cases, the
//! browser journey.
