//! `caseguard backup`, `restore` and `migrate-store`: the whole store to an
//! encrypted archive, back from one, or copied to another backend; each
//! verified after (DESIGN §7, docs/OPERATIONS.md).

use std::path::Path;

use super::{Failure, print_line};
use crate::audit::Auditor;
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::keyring::Keyring;

/// The keyring for restoring: it must exist already (a new one could open
/// nothing in the archive, and would be confusing to leave behind).
fn existing_keyring(settings: &Settings, clock: &dyn Clock) -> Result<Keyring, Failure> {
    if let crate::config::KeyringSource::File(path) = &settings.keyring
        && !path.exists()
    {
        return Err(Failure::usage(format!(
            "the keyring {} does not exist: restoring needs the keyring that was in use when the data was written; copy it there (mode 0600) or set `keyring`",
            path.display()
        )));
    }
    Ok(crate::startup::load_keyring(
        settings,
        clock,
        crate::startup::NewKeyring::Refused,
    )?)
}

fn store_failure(error: crate::store::StoreError) -> Failure {
    use crate::store::StoreError as E;
    match error {
        E::NotEmpty(_) | E::Incompatible(_) => Failure::usage(error.to_string()),
        other => Failure::runtime(other.to_string()),
    }
}

fn print_counts(counts: &crate::store::Counts) {
    for (table, rows) in counts {
        print_line(&format!("  {table:<24} {rows:>10}"));
    }
    print_line(&format!(
        "  {:<24} {:>10}",
        "(all tables)",
        counts.values().sum::<u64>()
    ));
}

pub(super) fn backup(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
    out: &Path,
) -> Result<(), Failure> {
    // No migrations here: a backup is taken of the store as it is (before
    // an upgrade, say).
    let db = runtime.block_on(crate::startup::open_database(settings))?;
    let new_keyring = crate::startup::new_keyring_allowed(&db)?;
    let keyring = crate::startup::load_keyring(settings, clock, new_keyring)?;
    let auditor = Auditor::new(&keyring).map_err(|e| Failure::usage(e.to_string()))?;
    let mut conn = db.get().map_err(|e| Failure::runtime(e.to_string()))?;
    let verify = crate::store::Verification {
        keyring: &keyring,
        auditor: &auditor,
        clock,
        allow_unverified: false,
    };
    let report = crate::store::backup(&mut conn, &verify, out).map_err(store_failure)?;
    print_line(&format!(
        "backup of {} written to {} ({} bytes, encrypted with backup key {}), read back and checked:",
        db.url().redacted(),
        out.display(),
        report.bytes,
        report.key_id
    ));
    print_counts(&report.counts);
    print_line("To restore it you need this file AND the keyring (kept apart from it).");
    Ok(())
}

pub(super) fn restore(
    settings: &Settings,
    clock: &dyn Clock,
    file: &Path,
    allow_unverified: bool,
) -> Result<(), Failure> {
    let keyring = existing_keyring(settings, clock)?;
    let auditor = Auditor::new(&keyring).map_err(|e| Failure::usage(e.to_string()))?;
    let target = &settings.database;
    target
        .prepare()
        .map_err(|e| Failure::usage(format!("cannot create the database directory: {e}")))?;
    let mut conn = target
        .connect()
        .map_err(|e| Failure::runtime(format!("database {}: {e}", target.redacted())))?;
    let verify = crate::store::Verification {
        keyring: &keyring,
        auditor: &auditor,
        clock,
        allow_unverified,
    };
    let (summary, report) = crate::store::restore(file, &mut conn, &verify).map_err(|e| {
        let failure = store_failure(e);
        Failure {
            code: failure.code,
            message: format!("{}; nothing was restored", failure.message),
        }
    })?;
    print_line(&format!(
        "restored {} (made {} by caseguard {} on {}) into {}:",
        file.display(),
        summary.manifest.created_at,
        summary.manifest.release,
        summary.manifest.backend,
        target.redacted()
    ));
    print_counts(&report.counts);
    print_line(&report.check.summary());
    Ok(())
}

pub(super) fn migrate_store(
    settings: &Settings,
    clock: &dyn Clock,
    from: &str,
    to: &str,
    allow_unverified: bool,
) -> Result<(), Failure> {
    use secrecy::SecretString;
    let parse = |flag: &str, text: &str| {
        crate::db::DatabaseUrl::parse(&SecretString::from(text.to_owned()))
            .map_err(|problem| Failure::usage(format!("{flag}: {problem}")))
    };
    let (from, to) = (parse("--from", from)?, parse("--to", to)?);
    let keyring = existing_keyring(settings, clock)?;
    let auditor = Auditor::new(&keyring).map_err(|e| Failure::usage(e.to_string()))?;
    if let crate::db::DatabaseUrl::Sqlite { path } = &from
        && !path.exists()
    {
        return Err(Failure::usage(format!(
            "--from: {} does not exist",
            path.display()
        )));
    }
    let connect = |url: &crate::db::DatabaseUrl| {
        url.prepare()
            .map_err(|e| Failure::usage(format!("cannot create the database directory: {e}")))?;
        url.connect()
            .map_err(|e| Failure::runtime(format!("database {}: {e}", url.redacted())))
    };
    let mut source = connect(&from)?;
    let mut target = connect(&to)?;
    let verify = crate::store::Verification {
        keyring: &keyring,
        auditor: &auditor,
        clock,
        allow_unverified,
    };
    let report = crate::store::migrate_store(&mut source, &mut target, &verify).map_err(|e| {
        let failure = store_failure(e);
        Failure {
            code: failure.code,
            message: format!("{}; nothing was copied", failure.message),
        }
    })?;
    print_line(&format!(
        "copied {} to {}; rows per table (equal in both):",
        from.redacted(),
        to.redacted()
    ));
    print_counts(&report.counts);
    print_line(&report.check.summary());
    print_line(&format!(
        "Point `database_url` at {} and start the service.",
        to.redacted()
    ));
    Ok(())
}
