//! Case-work (issue 16): approval. API tests on both stores, hostile cases, the
//! browser journey.
