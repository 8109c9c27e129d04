//! The one integration-test binary (STYLE §12). Every test gets its own
//! database: a fresh SQLite file always, and a fresh PostgreSQL database when
//! `CG_TEST_POSTGRES_URL` names a server (CI always sets it, together with
//! `CG_TEST_REQUIRE_POSTGRES=1` so a missing server fails instead of skipping).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation should panic with its message"
)]

#[macro_use]
mod helpers;

mod accounts_life;
mod audit;
mod auth;
mod authz;
mod browser;
mod browser_indicators;
// Case-work (issue 16): one module per capability, so that each grows alone.
mod cases;
mod casework_approval;
mod casework_finding;
mod casework_partner;
mod casework_reminders;
mod casework_transfer;
mod cli_users;
mod config_errors;
mod fault_disk;
mod fault_keyring;
mod fault_postgres;
mod health;
mod hostile;
mod http_layer;
mod issue21;
mod leaks;
mod migrations;
mod notify;
mod operations;
mod org_import;
mod phone;
mod quick_start;
mod referrals;
mod shutdown;
mod smtp_sink;
mod stats;
mod stats_contexts;
mod stats_live;
mod stats_summary;
mod unit_indicators;
