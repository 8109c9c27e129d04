//! `caseguard keys status` and `keys rotate`: the key-encryption keys, and
//! their rotation while the service runs (docs/OPERATIONS.md).

use clap::Subcommand;

use super::{Failure, Store, print_line};
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::keyring::Keyring;

#[derive(Debug, Subcommand)]
pub(super) enum KeysCommand {
    /// The key-encryption keys, which one is active, and how many case data
    /// keys each wraps.
    Status,
    /// Make a new key-encryption key and rewrap every case's data key under
    /// it, while the service runs; resumes an interrupted rotation; retires
    /// old keys nothing uses any more.
    Rotate,
}

pub(super) fn run(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
    command: &KeysCommand,
) -> Result<(), Failure> {
    use crate::cases::keys as rotation;
    use crate::crypto::keyring::{FileKeyProvider, KeyProvider, KeyPurpose};
    let provider = match &settings.keyring {
        crate::config::KeyringSource::File(path) => Ok(FileKeyProvider::new(path)),
        crate::config::KeyringSource::Env(name) => Err(Failure::usage(format!(
            "the keyring comes from the environment variable {name}, which caseguard cannot write: rotate on a copy of it as a file (CASEGUARD_KEYRING=/path/to/copy caseguard keys rotate), then replace the secret with the file's content and restart"
        ))),
    };
    let store = Store::open(runtime, settings)?;
    let mut conn = store.conn()?;
    let failed = |e: &dyn std::fmt::Display| Failure::runtime(e.to_string());
    let print_status =
        |conn: &mut crate::db::PooledConnection, keyring: &Keyring| -> Result<(), Failure> {
            let status = rotation::status(conn, keyring).map_err(|e| failed(&e))?;
            print_line("field key-encryption keys:");
            for kek in status {
                print_line(&format!(
                    "  {:<24} created {}  {:<7} wraps {} data key(s)",
                    kek.id,
                    kek.created_at.format("%Y-%m-%d %H:%M"),
                    if kek.active { "ACTIVE" } else { "" },
                    kek.wraps
                ));
            }
            for purpose in KeyPurpose::ALL {
                if *purpose != KeyPurpose::FieldKek {
                    let ids: Vec<&str> = keyring
                        .keys(*purpose)
                        .iter()
                        .map(|k| k.id.as_str())
                        .collect();
                    print_line(&format!("{purpose:?}: {}", ids.join(", ")));
                }
            }
            Ok(())
        };
    match command {
        KeysCommand::Status => print_status(&mut conn, &store.keyring),
        KeysCommand::Rotate => {
            let provider = provider?;
            let mut keyring = provider.load(clock).map_err(|e| failed(&e))?;
            // Notes stored in plain text before they were sealed (a store
            // upgraded but not yet started) are sealed first.
            let sealed = crate::stats::unit_notes::seal_unsealed(&mut conn, &keyring)
                .map_err(|e| failed(&e))?;
            if sealed > 0 {
                print_line(&format!(
                    "sealed {sealed} evidence note(s) stored in plain text before the upgrade"
                ));
            }
            let pending = rotation::pending(&mut conn, &keyring).map_err(|e| failed(&e))?;
            if pending > 0 {
                print_line(&format!(
                    "resuming an interrupted rotation: {pending} data key(s) are not under the active key yet"
                ));
            } else {
                let id = keyring
                    .add_key(KeyPurpose::FieldKek, clock)
                    .map_err(|e| failed(&e))?
                    .id
                    .clone();
                provider.write(&keyring).map_err(|e| failed(&e))?;
                rotation::audit(
                    &mut conn,
                    &store.auditor,
                    clock,
                    rotation::KEYS_ROTATED,
                    &id,
                )
                .map_err(|e| failed(&e))?;
                print_line(&format!(
                    "new key-encryption key {id}; waiting for running services to load it"
                ));
                // Every running service looks at the keyring file at least
                // once a second while it serves requests: after this pause
                // none will meet a data key wrapped by a key it does not have.
                std::thread::sleep(crate::crypto::keyring::RELOAD_CHECK * 3);
            }
            let total =
                u64::try_from(rotation::pending(&mut conn, &keyring).map_err(|e| failed(&e))?)
                    .unwrap_or(0);
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "rewrapping {bar:40} {pos}/{len} data keys ({eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            loop {
                let moved = rotation::rewrap_batch(&mut conn, &keyring, clock, 200)
                    .map_err(|e| failed(&e))?;
                bar.inc(u64::try_from(moved).unwrap_or(0));
                if moved == 0
                    && rotation::pending(&mut conn, &keyring).map_err(|e| failed(&e))? == 0
                {
                    break;
                }
            }
            bar.finish();
            let retirable =
                rotation::retirable(&mut conn, &keyring, clock).map_err(|e| failed(&e))?;
            for id in &retirable {
                keyring.remove_key(KeyPurpose::FieldKek, id);
            }
            if !retirable.is_empty() {
                provider.write(&keyring).map_err(|e| failed(&e))?;
                for id in &retirable {
                    rotation::audit(&mut conn, &store.auditor, clock, rotation::KEK_RETIRED, id)
                        .map_err(|e| failed(&e))?;
                }
                print_line(&format!("retired: {}", retirable.join(", ")));
            }
            let waiting = keyring.keys(KeyPurpose::FieldKek).len().saturating_sub(1);
            if waiting > 0 {
                print_line(&format!(
                    "{waiting} older key(s) kept until every replica has switched; the next rotation retires them (after {} minutes)",
                    rotation::RETIRE_AFTER.num_minutes()
                ));
            }
            print_status(&mut conn, &keyring)
        }
    }
}
