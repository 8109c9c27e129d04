//! Case-work (issue 16): partner. API tests on both stores, hostile cases, the
//! browser journey.
