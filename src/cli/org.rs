//! `caseguard org import`: areas, schools and agencies from a TOML or CSV
//! file; all rows or none.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{Failure, describe_import, migrate, print_line};
use crate::clock::Clock;
use crate::config::Settings;
use crate::orgs::import;

#[derive(Debug, Subcommand)]
pub(super) enum OrgCommand {
    /// Import areas, schools and agencies from a TOML or CSV file; all rows
    /// or none.
    Import {
        /// The file (.toml or .csv).
        file: PathBuf,
    },
}

pub(super) fn import(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
    file: &Path,
) -> Result<(), Failure> {
    let rows = import::read_file(file).map_err(|e| describe_import(file, e))?;
    let db = runtime.block_on(crate::startup::open_database(settings))?;
    migrate::apply_pending(&db)?;
    let mut conn = db.get().map_err(|e| Failure::runtime(e.to_string()))?;
    let summary = import::import(&mut conn, &rows, clock).map_err(|e| describe_import(file, e))?;
    print_line(&format!("{}: {summary}", file.display()));
    Ok(())
}
