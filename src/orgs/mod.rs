//! The organisation tree: importing it from files.
//!
//! Owns the rules an import must satisfy as a whole — unique codes, parents
//! that exist and are areas, no cycles, bounded depth, a kind that never
//! changes — and applies an import in one transaction: a file with one bad row
//! changes nothing.

pub mod import;
