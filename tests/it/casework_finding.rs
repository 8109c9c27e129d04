//! Case-work (issue 16): finding. API tests on both stores, hostile cases, the
//! browser journey.
