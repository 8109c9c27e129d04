//! The access-token parser, with a real keyring: nothing but a token we
//! signed may pass, and nothing may panic.
#![no_main]

use std::sync::LazyLock;

use caseguard::authn::{Authn, tokens};
use caseguard::clock::FixedClock;
use caseguard::config::Settings;
use caseguard::crypto::keyring::{KeyPurpose, Keyring};
use libfuzzer_sys::fuzz_target;

static WORLD: LazyLock<Option<(Authn, FixedClock)>> = LazyLock::new(|| {
    let _ = caseguard::crypto::jwt::install_backend();
    let clock = FixedClock::new(chrono::DateTime::from_timestamp(1_793_000_000, 0)?);
    let mut keyring = Keyring::default();
    for purpose in KeyPurpose::ALL {
        keyring.add_key(*purpose, &clock).ok()?;
    }
    let settings = Settings::from_overrides(Vec::<(&str, serde_json::Value)>::new()).ok()?;
    let authn = Authn::new(&settings, &keyring).ok()?;
    Some((authn, clock))
});

fuzz_target!(|data: &[u8]| {
    let Some((authn, clock)) = WORLD.as_ref() else {
        return;
    };
    if let Ok(token) = std::str::from_utf8(data) {
        // No key of ours signed anything the fuzzer can make.
        assert!(tokens::verify(authn, clock, token).is_err());
    }
});
