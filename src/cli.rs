//! The `caseguard` command line (DESIGN §7).
//!
//! Exit codes: 0 success; 1 the command failed (an invalid import file, an
//! unreachable database); 2 a setting or argument the operator must fix
//! (unknown key, malformed URL, unusable data directory, port in use). Errors
//! are one line on stderr, never a panic or a backtrace, never a secret.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use crate::clock::{Clock, SystemClock};
use crate::config::{LogFormat, Settings};
use crate::db::{Db, migrations};
use crate::orgs::import::{self, ImportError};
use crate::startup::{Application, StartupError};

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
    /// Run the service (applies pending migrations first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load a fictional district for trials and demonstrations.
    Demo,
    /// Manage the organisation tree.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Check the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify the hash chain and the signed checkpoints of the whole audit
    /// log; exits 1 naming the first bad entry.
    Verify,
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Import areas, schools and agencies from a TOML or CSV file; all rows
    /// or none.
    Import {
        /// The file (.toml or .csv).
        file: PathBuf,
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
}

impl From<StartupError> for Failure {
    fn from(error: StartupError) -> Self {
        Self {
            code: error.exit_code(),
            message: error.to_string(),
        }
    }
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

fn run(cli: Cli) -> Result<(), Failure> {
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
    match cli.command {
        Command::Serve => runtime.block_on(serve(settings)),
        Command::Migrate => {
            let db = runtime.block_on(crate::startup::open_database(&settings))?;
            let applied = migrate(&db)?;
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
        Command::Demo => {
            let db = runtime.block_on(crate::startup::open_database(&settings))?;
            migrate(&db)?;
            let mut conn = db.get().map_err(|e| Failure::runtime(e.to_string()))?;
            let summary =
                crate::orgs::demo::load(&mut conn, &SystemClock).map_err(describe_import)?;
            print_line(&format!(
                "Demo district loaded into {}: organisations {summary}.",
                db.url().redacted()
            ));
            print_line("Start the service with `caseguard serve`.");
            Ok(())
        }
        Command::Org {
            command: OrgCommand::Import { file },
        } => {
            let rows = import::read_file(&file).map_err(|e| describe_import_in(&file, e))?;
            let db = runtime.block_on(crate::startup::open_database(&settings))?;
            migrate(&db)?;
            let mut conn = db.get().map_err(|e| Failure::runtime(e.to_string()))?;
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let summary = import::import(&mut conn, &rows, clock.as_ref())
                .map_err(|e| describe_import_in(&file, e))?;
            print_line(&format!("{}: {summary}", file.display()));
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let keyring = crate::startup::load_keyring(&settings, &SystemClock)?;
            let db = runtime.block_on(crate::startup::open_database(&settings))?;
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
    }
}

async fn serve(settings: Settings) -> Result<(), Failure> {
    let app = Application::build(settings).await?;
    app.run_until_stopped()
        .await
        .map_err(|e| Failure::runtime(format!("the server stopped with an error: {e}")))
}

fn migrate(db: &Db) -> Result<Vec<String>, Failure> {
    let mut conn = db.get().map_err(|e| Failure::runtime(e.to_string()))?;
    migrations::run_pending(&mut conn).map_err(|e| Failure::runtime(e.to_string()))
}

fn describe_import(error: ImportError) -> Failure {
    describe_import_in(Path::new("import"), error)
}

/// Every problem on its own stderr line (`FILE: line N: message`), then the
/// one-line summary as the failure message.
fn describe_import_in(file: &Path, error: ImportError) -> Failure {
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
