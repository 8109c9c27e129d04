//! The JSON bodies of intake and consent: serde, then the domain parsers.
#![no_main]

use std::sync::LazyLock;

use caseguard::cases::CaseInput;
use caseguard::cases::consent::{ConsentInput, RawConsent};
use caseguard::cases::input::RawCase;
use caseguard::domain::taxonomy::Taxonomy;
use libfuzzer_sys::fuzz_target;

static TAXONOMY: LazyLock<Option<Taxonomy>> =
    LazyLock::new(|| Taxonomy::parse(include_str!("../../policies/taxonomy.toml")).ok());

fuzz_target!(|data: &[u8]| {
    let Some(taxonomy) = TAXONOMY.as_ref() else {
        return;
    };
    if let Ok(raw) = serde_json::from_slice::<RawCase>(data) {
        let _ = CaseInput::parse(&raw, taxonomy, "school");
    }
    if let Ok(raw) = serde_json::from_slice::<RawConsent>(data) {
        let _ = ConsentInput::parse(&raw, taxonomy);
    }
});
