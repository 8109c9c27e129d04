//! Domain types: values that are valid by construction (STYLE §3).
//!
//! Raw input arrives as plain strings in request or file DTOs; `parse` turns
//! it into these types or says precisely what is wrong. Fields are private so
//! nothing else can build an invalid value. This module never touches the
//! database or the network.

pub mod calendar;
pub mod case_ref;
pub mod org;
pub mod policy_files;
pub mod protocol;
pub mod reminder;
pub mod taxonomy;
pub mod user;
