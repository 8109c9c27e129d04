//! The `caseguard` command line (DESIGN §7).
//!
//! Exit codes: 0 success; 1 the command failed (an invalid import file, an
//! unreachable database, a refused account); 2 a setting or argument the
//! operator must fix (unknown key, malformed URL, unusable data directory or
//! keyring, port in use). Errors are one line on stderr, never a panic or a
//! backtrace, never a secret. Output meant for people and scripts goes to
//! stdout; logs go to stderr.
//!
//! One file per subcommand; this one holds the arguments, the dispatch and
//! what the subcommands share (the [`Failure`] type, the opened [`Store`],
//! printing). Private to the library: `lib.rs` exports only `run_cli`.
//!
//! The operator at the server's command line already holds the database and
//! the keyring, so the commands act without a policy check. They do it
//! through an [`OperatorConsole`], which only this module can make: see
//! `authz/capability.rs` for why.

mod audit;
mod backup;
mod demo;
mod healthcheck;
mod keys;
mod migrate;
mod org;
mod retention;
mod serve;
mod stats;
mod user;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::audit::Auditor;
use crate::authn::accounts::AccountError;
use crate::clock::SystemClock;
use crate::config::{LogFormat, Settings};
use crate::crypto::keyring::Keyring;
use crate::db::Db;
use crate::orgs::import::ImportError;
use crate::startup::StartupError;

#[derive(Debug, Parser)]
#[command(
    name = "caseguard",
    version,
    about = "Confidential case management for schools: record, refer and follow up cases of gender-based violence and abuse of pupils."
)]
pub struct Cli {
    /// Configuration file (default: ./caseguard.toml when it exists).
    #[arg(long, global = true, value_name = "PATH", env = "CASEGUARD_CONFIG")]
    config: Option<PathBuf>,

    /// Log format; overrides `log_format` in the configuration.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (applies pending migrations first; creates a bootstrap
    /// administrator on the first start).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load a fictional district with accounts of every role, and print the
    /// logins. Refused in production.
    Demo {
        /// Print the logins as JSON.
        #[arg(long)]
        json: bool,
        /// Also generate this many fictional cases (coded fields with
        /// plausible distributions, sealed placeholder content, referrals in
        /// every state) over the demo schools, for load and statistics tests.
        #[arg(long, value_name = "N")]
        cases: Option<usize>,
        /// Seed of the generated cases (the same seed gives the same cases).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Statistics without disclosure (DESIGN §5).
    Stats {
        #[command(subcommand)]
        command: stats::StatsCommand,
    },
    /// Manage the organisation tree.
    Org {
        #[command(subcommand)]
        command: org::OrgCommand,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// Check the audit log.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Apply the retention policy now (the server also does it hourly); set
    /// or lift a case's legal hold.
    Retention {
        #[command(subcommand)]
        command: retention::RetentionCommand,
    },
    /// Inspect and rotate the keys that protect case data.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Ask a running service whether it is ready (for container health
    /// checks, where no curl exists): exit 0 when the URL answers 200.
    Healthcheck {
        /// A plain http:// URL on this host.
        #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
    },
    /// Write an encrypted, integrity-checked archive of the whole store
    /// (while the service runs). It holds no key: keep the keyring too.
    Backup {
        /// The archive to write (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Restore an archive made by `caseguard backup` into the configured,
    /// empty store (either backend), then verify the audit chain and open
    /// every case. Needs the keyring of the time of the backup.
    Restore {
        /// The archive.
        file: PathBuf,
        /// Keep the restored data even if the audit chain or a case does
        /// not verify (the problems are reported).
        #[arg(long)]
        allow_unverified: bool,
    },
    /// Copy every table of one store into another, empty one (e.g. from
    /// SQLite to PostgreSQL), then verify counts, the audit chain and every
    /// case. Stop the service first.
    MigrateStore {
        /// The store to copy: sqlite://PATH or postgres://…
        #[arg(long, value_name = "URL")]
        from: String,
        /// The empty store to fill: sqlite://PATH or postgres://…
        #[arg(long, value_name = "URL")]
        to: String,
        /// Keep the copy even if the audit chain or a case does not verify.
        #[arg(long)]
        allow_unverified: bool,
    },
}

/// A failed command: the message and the exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn runtime(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<StartupError> for Failure {
    fn from(error: StartupError) -> Self {
        Self {
            code: error.exit_code(),
            message: error.to_string(),
        }
    }
}

impl From<AccountError> for Failure {
    fn from(error: AccountError) -> Self {
        Self::runtime(error.to_string())
    }
}

/// Proof that the code holding it runs a command the operator typed at the
/// server's command line. [`Capability::for_operator`] requires one, and
/// only `crate::cli` (this module and the subcommands' files below it) can
/// make one: its field is private here. The rest of the library receives
/// the capabilities the commands make with it, never the console itself.
///
/// [`Capability::for_operator`]: crate::authz::capability::Capability::for_operator
pub(crate) struct OperatorConsole {
    _private: (),
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let message = failure.message.replace('\n', " ");
            let _ = writeln!(std::io::stderr(), "caseguard: error: {message}");
            ExitCode::from(failure.code)
        }
    }
}

/// The database, keyring and audit log, opened and migrated for a command.
struct Store {
    db: Db,
    keyring: Keyring,
    auditor: Auditor,
}

impl Store {
    fn open(runtime: &tokio::runtime::Runtime, settings: &Settings) -> Result<Self, Failure> {
        let db = runtime.block_on(crate::startup::open_database(settings))?;
        migrate::apply_pending(&db)?;
        let new_keyring = crate::startup::new_keyring_allowed(&db)?;
        let keyring = crate::startup::load_keyring(settings, &SystemClock, new_keyring)?;
        let auditor = Auditor::new(&keyring).map_err(|e| Failure::usage(e.to_string()))?;
        Ok(Self {
            db,
            keyring,
            auditor,
        })
    }

    fn conn(&self) -> Result<crate::db::PooledConnection, Failure> {
        self.db.get().map_err(|e| Failure::runtime(e.to_string()))
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    // Every file a command creates (store, keyring, outbox, backups) is the
    // service user's alone.
    crate::files::restrict_umask();
    // Before settings: a health check must not depend on the configuration
    // the service was started with (nor log anything).
    if let Command::Healthcheck { url } = &cli.command {
        return healthcheck::run(url);
    }
    let mut settings = Settings::load(cli.config.as_deref()).map_err(StartupError::from)?;
    if let Some(format) = cli.log_format {
        settings.log_format = match format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    crate::telemetry::init(settings.log_format, &settings.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start the async runtime: {e}")))?;
    let clock = SystemClock;
    let console = OperatorConsole { _private: () };
    match cli.command {
        Command::Serve => runtime.block_on(serve::run(settings)),
        Command::Migrate => migrate::run(&runtime, &settings),
        Command::Demo { json, cases, seed } => {
            demo::load(&runtime, &settings, &clock, &console, json)?;
            match cases {
                Some(count) => demo::generate(&runtime, &settings, &clock, count, seed),
                None => Ok(()),
            }
        }
        Command::Stats {
            command:
                stats::StatsCommand::Report {
                    area,
                    period,
                    format,
                    lang,
                    out,
                },
        } => stats::report(
            &runtime,
            &settings,
            &clock,
            &console,
            &area,
            &period,
            format,
            &lang,
            out.as_deref(),
        ),
        Command::Org {
            command: org::OrgCommand::Import { file },
        } => org::import(&runtime, &settings, &clock, &file),
        Command::User { command } => user::run(&runtime, &settings, &clock, &console, command),
        Command::Healthcheck { url } => healthcheck::run(&url),
        Command::Backup { out } => backup::backup(&runtime, &settings, &clock, &out),
        Command::Restore {
            file,
            allow_unverified,
        } => backup::restore(&settings, &clock, &file, allow_unverified),
        Command::MigrateStore {
            from,
            to,
            allow_unverified,
        } => backup::migrate_store(&settings, &clock, &from, &to, allow_unverified),
        Command::Keys { command } => keys::run(&runtime, &settings, &clock, &command),
        Command::Retention { command } => {
            retention::dispatch(&runtime, &settings, &clock, &console, command)
        }
        Command::Audit {
            command: audit::AuditCommand::Verify,
        } => audit::verify(&runtime, &settings, &clock),
    }
}

/// Every problem on its own stderr line (`FILE: line N: message`), then the
/// one-line summary as the failure message.
fn describe_import(file: &Path, error: ImportError) -> Failure {
    match error {
        ImportError::Invalid(problems) => {
            let mut stderr = std::io::stderr().lock();
            for problem in &problems {
                let _ = writeln!(stderr, "{}: {problem}", file.display());
            }
            Failure::runtime(format!(
                "{}: {} problem(s); nothing was imported",
                file.display(),
                problems.len()
            ))
        }
        ImportError::Db(error) => Failure::runtime(error.to_string()),
    }
}

fn print_line(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}

fn print_block(lines: &[String]) {
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(stdout, "{line}");
    }
    let _ = stdout.flush();
}

fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::runtime(e.to_string()))?;
    print_line(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::OperatorConsole;
    use crate::authz::Action;
    use crate::authz::capability::Capability;

    #[test]
    fn an_operator_capability_covers_every_organisation_for_its_action_only() {
        let console = OperatorConsole { _private: () };
        let capability = Capability::for_operator(&console, Action::UserDisable);
        assert!(capability.allows(Action::UserDisable, "any-organisation"));
        assert!(!capability.allows(Action::UserCreate, "any-organisation"));
        assert!(capability.actor().is_none());
        assert_eq!(capability.author(), "operator");
        assert!(!capability.via_break_glass());
    }
}
