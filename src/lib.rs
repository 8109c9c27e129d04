//! caseguard: confidential case management for gender-based violence and
//! abuse cases in schools. See `docs/ARCHITECTURE.md` for the map.

pub mod audit;
pub mod authn;
pub mod authz;
pub mod cases;
mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod domain;
pub mod files;
pub mod notify;
pub mod orgs;
pub mod referrals;
pub mod startup;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod web;

/// Runs the `caseguard` command line: parses the arguments, runs the
/// command, and returns its exit code (the codes are listed in
/// `src/cli/mod.rs`). The command line itself is private to the library.
pub fn run_cli() -> std::process::ExitCode {
    cli::main()
}
