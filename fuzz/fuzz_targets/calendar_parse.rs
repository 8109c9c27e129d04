//! The working-day calendar loader (`policies/calendar-vn.toml`).
#![no_main]

use caseguard::domain::calendar::Calendar;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Calendar::parse(text);
    }
});
