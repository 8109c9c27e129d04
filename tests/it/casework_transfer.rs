//! Case-work (issue 16): transfer. API tests on both stores, hostile cases, the
//! browser journey.
