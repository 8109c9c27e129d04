//! `caseguard audit verify`: the hash chain and the signed checkpoints of
//! the whole audit log; exits 1 naming the first bad entry.

use clap::Subcommand;

use super::{Failure, print_line};
use crate::clock::Clock;
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub(super) enum AuditCommand {
    /// Verify the hash chain and the signed checkpoints of the whole audit
    /// log; exits 1 naming the first bad entry.
    Verify,
}

pub(super) fn verify(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
) -> Result<(), Failure> {
    let db = runtime.block_on(crate::startup::open_database(settings))?;
    // Verifying needs the keyring the log was signed with.
    let keyring =
        crate::startup::load_keyring(settings, clock, crate::startup::NewKeyring::Refused)?;
    let mut conn = db.get().map_err(|e| Failure::runtime(e.to_string()))?;
    let report = crate::audit::verify(&mut conn, &keyring)
        .map_err(|e| Failure::runtime(format!("cannot read the audit log: {e}")))?;
    match report.problem {
        None => {
            let signed = report.last_checkpoint.map_or_else(
                || "no signed checkpoint yet".to_owned(),
                |seq| format!("signed up to entry {seq}"),
            );
            print_line(&format!(
                "audit log intact: {} entries, {} signed checkpoint(s), {signed}",
                report.entries, report.checkpoints
            ));
            Ok(())
        }
        Some(problem) => Err(Failure::runtime(format!(
            "audit log verification failed at {problem}"
        ))),
    }
}
