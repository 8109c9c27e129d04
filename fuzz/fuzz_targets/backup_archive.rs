//! The backup archive reader: the encrypted stream (any bytes), and the
//! JSON-lines content inside a correctly encrypted stream (any plaintext).
#![no_main]

use std::io::Read;
use std::sync::LazyLock;

use caseguard::clock::FixedClock;
use caseguard::crypto::keyring::{KeyPurpose, Keyring};
use caseguard::crypto::stream::{StreamReader, StreamWriter};
use caseguard::store::archive::{self, Discard};
use libfuzzer_sys::fuzz_target;

static KEYRING: LazyLock<Option<Keyring>> = LazyLock::new(|| {
    let clock = FixedClock::new(chrono::DateTime::from_timestamp(1_793_000_000, 0)?);
    let mut keyring = Keyring::default();
    keyring.add_key(KeyPurpose::Backup, &clock).ok()?;
    Some(keyring)
});

fuzz_target!(|data: &[u8]| {
    let Some(keyring) = KEYRING.as_ref() else {
        return;
    };
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        // Raw bytes as an archive file: refused cleanly.
        if let Ok(mut reader) = StreamReader::new(rest, keyring) {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        }
    } else {
        // Any plaintext, sealed correctly: the line reader must refuse
        // what is not a backup without panicking.
        let Ok(mut writer) = StreamWriter::new(Vec::new(), keyring) else {
            return;
        };
        if std::io::Write::write_all(&mut writer, rest).is_err() {
            return;
        }
        let Ok(sealed) = writer.finish() else {
            return;
        };
        let path = std::env::temp_dir().join(format!("caseguard-fuzz-{}.cgb", std::process::id()));
        if std::fs::write(&path, sealed).is_ok() {
            let _ = archive::read(&path, keyring, &mut Discard);
        }
    }
});
