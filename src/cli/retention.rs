//! `caseguard retention run`: applies the retention policy now (the server
//! also does it hourly).

use clap::Subcommand;

use super::{Failure, Store, print_line};
use crate::clock::Clock;
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub(super) enum RetentionCommand {
    /// Destroy the content of closed cases past `closed_case_content_days`
    /// (their coded fields stay for statistics).
    Run,
}

pub(super) fn run(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
) -> Result<(), Failure> {
    let policy = crate::cases::retention::RetentionPolicy::load(settings.policy_dir.as_deref())
        .map_err(Failure::usage)?;
    let store = Store::open(runtime, settings)?;
    let mut conn = store.conn()?;
    let count = crate::cases::retention::run(&mut conn, &store.auditor, clock, &policy)
        .map_err(|e| Failure::runtime(e.to_string()))?;
    print_line(&format!(
        "retention ({} days after closing): content of {count} case(s) destroyed",
        policy.closed_case_content_days
    ));
    Ok(())
}
