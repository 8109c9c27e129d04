//! The taxonomy loader (`policies/taxonomy.toml`).
#![no_main]

use caseguard::domain::taxonomy::Taxonomy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Taxonomy::parse(text);
    }
});
