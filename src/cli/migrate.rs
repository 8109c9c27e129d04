//! `caseguard migrate`: apply pending database migrations and exit. Every
//! command that opens the store applies them the same way first.

use super::{Failure, print_line};
use crate::config::Settings;
use crate::db::{Db, migrations};

pub(super) fn run(runtime: &tokio::runtime::Runtime, settings: &Settings) -> Result<(), Failure> {
    let db = runtime.block_on(crate::startup::open_database(settings))?;
    let applied = apply_pending(&db)?;
    print_line(&if applied.is_empty() {
        format!("{}: the database is up to date", db.url().redacted())
    } else {
        format!(
            "{}: applied {} migration(s): {}",
            db.url().redacted(),
            applied.len(),
            applied.join(", ")
        )
    });
    Ok(())
}

/// Applies the pending migrations; returns the names of those applied.
pub(super) fn apply_pending(db: &Db) -> Result<Vec<String>, Failure> {
    let mut conn = db.get().map_err(|e| Failure::runtime(e.to_string()))?;
    migrations::run_pending(&mut conn).map_err(|e| Failure::runtime(e.to_string()))
}
