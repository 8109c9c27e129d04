//! The Cedar authorization policies, validated against the shipped schema.
#![no_main]

use caseguard::authz::Policies;
use libfuzzer_sys::fuzz_target;

const SCHEMA: &str = include_str!("../../policies/authz.cedarschema");

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Policies::parse(text, SCHEMA);
    }
});
