//! The referral protocol loader, validated against the shipped taxonomy.
#![no_main]

use std::sync::LazyLock;

use caseguard::domain::protocol::Protocol;
use caseguard::domain::taxonomy::Taxonomy;
use libfuzzer_sys::fuzz_target;

static TAXONOMY: LazyLock<Option<Taxonomy>> =
    LazyLock::new(|| Taxonomy::parse(include_str!("../../policies/taxonomy.toml")).ok());

fuzz_target!(|data: &[u8]| {
    if let (Ok(text), Some(taxonomy)) = (std::str::from_utf8(data), TAXONOMY.as_ref()) {
        let _ = Protocol::parse(text, taxonomy);
    }
});
