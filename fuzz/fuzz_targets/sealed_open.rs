//! The stored-ciphertext decoder: any bytes from the database must either
//! open (only what we sealed) or be refused, never panic.
#![no_main]

use caseguard::crypto::sealed::{self, Binding};
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = [7; 32];
const BINDING: Binding<'static> = Binding {
    table: "pupils",
    column: "name_enc",
    row_id: "row",
    case_id: "case",
};

fuzz_target!(|data: &[u8]| {
    let _ = sealed::key_id(data);
    let _ = sealed::open(data, &BINDING, |_| Some(&KEY[..]));
    // A short key or an unknown id must be refused, not panic.
    let _ = sealed::open(data, &BINDING, |_| Some(&KEY[..16]));
    let _ = sealed::open(data, &BINDING, |_| None);
    // What we seal opens to itself, and only where it was sealed.
    if let Ok(value) = sealed::seal("kek-1", &KEY, &BINDING, data) {
        let opened = sealed::open(&value, &BINDING, |_| Some(&KEY[..])).ok();
        assert_eq!(opened.as_ref().map(|p| p.expose()), Some(data));
        let moved = Binding { row_id: "other", ..BINDING };
        assert!(sealed::open(&value, &moved, |_| Some(&KEY[..])).is_err());
    }
});
