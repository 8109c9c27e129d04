//! The `caseguard` command line (DESIGN §7).
//!
//! Exit codes: 0 success; 1 the command failed (an invalid import file, an
//! unreachable database, a refused account); 2 a setting or argument the
//! operator must fix (unknown key, malformed URL, unusable data directory or
//! keyring, port in use). Errors are one line on stderr, never a panic or a
//! backtrace, never a secret. Output meant for people and scripts goes to
//! stdout; logs go to stderr.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::audit::Auditor;
use crate::authn::accounts::{self, AccountError, NewAccount};
use crate::authn::password;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::clock::{Clock, SystemClock};
use crate::config::{Environment, LogFormat, Settings};
use crate::crypto::keyring::Keyring;
use crate::db::{Db, migrations};
use crate::domain::org::OrgCode;
use crate::domain::user::{DisplayName, EmailAddress, NewPassword, Role};
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
        command: StatsCommand,
    },
    /// Manage the organisation tree.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Check the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Apply the retention policy now (the server also does it hourly).
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Inspect and rotate the keys that protect case data.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
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

#[derive(Debug, Subcommand)]
enum StatsCommand {
    /// The report of an area for a period, after disclosure control: the
    /// released one when there is one, else computed now from live data.
    Report {
        /// Code of the area (e.g. SX-AL).
        #[arg(long)]
        area: String,
        /// The period, `<kind>-<year>` (e.g. six_month-2026; kinds in
        /// policies/reporting.toml).
        #[arg(long)]
        period: String,
        #[arg(long, value_enum, default_value = "json")]
        format: ReportFormat,
        /// Labels in Vietnamese (vi) or English (en).
        #[arg(long, default_value = "vi")]
        lang: String,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReportFormat {
    Csv,
    Xlsx,
    Json,
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Destroy the content of closed cases past `closed_case_content_days`
    /// (their coded fields stay for statistics).
    Run,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// The key-encryption keys, which one is active, and how many case data
    /// keys each wraps.
    Status,
    /// Make a new key-encryption key and rewrap every case's data key under
    /// it, while the service runs; resumes an interrupted rotation; retires
    /// old keys nothing uses any more.
    Rotate,
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

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account. Without --password-stdin, prints a one-time
    /// enrolment link for the person to choose their password.
    Create(CreateUser),
    /// Disable an account: its sessions and tokens stop working at once.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Replace an account's second factor (lost phone) and unlock it.
    ResetMfa {
        #[arg(long)]
        email: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct CreateUser {
    /// Code of the organisation the account belongs to.
    #[arg(long)]
    org: String,
    /// reporter, focal_point, agency_officer, district_officer, monitor,
    /// admin or auditor.
    #[arg(long)]
    role: String,
    #[arg(long)]
    email: String,
    #[arg(long)]
    name: String,
    /// Read the password from standard input (one line).
    #[arg(long)]
    password_stdin: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify the hash chain and the signed checkpoints of the whole audit
    /// log; exits 1 naming the first bad entry.
    Verify,
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
        migrate(&db)?;
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
    // Before settings: a health check must not depend on the configuration
    // the service was started with (nor log anything).
    if let Command::Healthcheck { url } = &cli.command {
        return healthcheck(url);
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
        Command::Demo { json, cases, seed } => {
            demo(&runtime, &settings, &clock, json)?;
            match cases {
                Some(count) => demo_cases(&runtime, &settings, &clock, count, seed),
                None => Ok(()),
            }
        }
        Command::Stats {
            command:
                StatsCommand::Report {
                    area,
                    period,
                    format,
                    lang,
                    out,
                },
        } => stats_report(
            &runtime,
            &settings,
            &clock,
            &area,
            &period,
            format,
            &lang,
            out.as_deref(),
        ),
        Command::Org {
            command: OrgCommand::Import { file },
        } => {
            let rows = import::read_file(&file).map_err(|e| describe_import(&file, e))?;
            let db = runtime.block_on(crate::startup::open_database(&settings))?;
            migrate(&db)?;
            let mut conn = db.get().map_err(|e| Failure::runtime(e.to_string()))?;
            let summary =
                import::import(&mut conn, &rows, &clock).map_err(|e| describe_import(&file, e))?;
            print_line(&format!("{}: {summary}", file.display()));
            Ok(())
        }
        Command::User { command } => user(&runtime, &settings, &clock, command),
        Command::Healthcheck { url } => healthcheck(&url),
        Command::Backup { out } => backup(&runtime, &settings, &clock, &out),
        Command::Restore {
            file,
            allow_unverified,
        } => restore(&settings, &clock, &file, allow_unverified),
        Command::MigrateStore {
            from,
            to,
            allow_unverified,
        } => migrate_store(&settings, &clock, &from, &to, allow_unverified),
        Command::Keys { command } => keys(&runtime, &settings, &clock, &command),
        Command::Retention {
            command: RetentionCommand::Run,
        } => {
            let policy =
                crate::cases::retention::RetentionPolicy::load(settings.policy_dir.as_deref())
                    .map_err(Failure::usage)?;
            let store = Store::open(&runtime, &settings)?;
            let mut conn = store.conn()?;
            let count = crate::cases::retention::run(&mut conn, &store.auditor, &clock, &policy)
                .map_err(|e| Failure::runtime(e.to_string()))?;
            print_line(&format!(
                "retention ({} days after closing): content of {count} case(s) destroyed",
                policy.closed_case_content_days
            ));
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let db = runtime.block_on(crate::startup::open_database(&settings))?;
            // Verifying needs the keyring the log was signed with.
            let keyring = crate::startup::load_keyring(
                &settings,
                &clock,
                crate::startup::NewKeyring::Refused,
            )?;
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
    let state = app.state().clone();
    let bootstrap = tokio::task::spawn_blocking(move || {
        let mut conn = state
            .db
            .get()
            .map_err(|e| Failure::runtime(e.to_string()))?;
        accounts::bootstrap_admin(
            &mut conn,
            &state.keyring.current(),
            &state.auditor,
            state.clock.as_ref(),
        )
        .map_err(Failure::from)
    })
    .await
    .map_err(|e| Failure::runtime(e.to_string()))??;
    if let Some(admin) = bootstrap {
        print_block(&[
            "================================================================".to_owned(),
            "caseguard: first start — a bootstrap administrator was created.".to_owned(),
            "These credentials are shown ONCE. Store them safely now.".to_owned(),
            format!("  email:    {}", admin.email),
            format!("  password: {}", admin.password),
            format!("  TOTP:     {}", admin.totp_uri),
            "Add the TOTP line to an authenticator app. Then create your own".to_owned(),
            "administrator and disable this one:".to_owned(),
            format!("  caseguard user disable --email {}", admin.email),
            "================================================================".to_owned(),
        ]);
    }
    app.run_until_stopped()
        .await
        .map_err(|e| Failure::runtime(format!("the server stopped with an error: {e}")))
}

/// One HTTP/1.0 GET with a 5-second limit; success is status 200.
fn healthcheck(url: &str) -> Result<(), Failure> {
    use std::net::ToSocketAddrs;
    let parsed = url::Url::parse(url).map_err(|e| Failure::usage(format!("--url: {e}")))?;
    if parsed.scheme() != "http" {
        return Err(Failure::usage(
            "--url: only http:// (the service behind its proxy)",
        ));
    }
    let host = parsed.host_str().unwrap_or("127.0.0.1");
    let port = parsed.port_or_known_default().unwrap_or(80);
    let timeout = std::time::Duration::from_secs(5);
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| Failure::runtime(format!("{host}: {e}")))?
        .next()
        .ok_or_else(|| Failure::runtime(format!("{host}: no address")))?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| Failure::runtime(format!("{url}: {e}")))?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    write!(
        stream,
        "GET {} HTTP/1.0\r\nHost: {host}\r\n\r\n",
        parsed.path()
    )
    .map_err(|e| Failure::runtime(format!("{url}: {e}")))?;
    let mut head = [0u8; 64];
    let n = stream
        .read(&mut head)
        .map_err(|e| Failure::runtime(format!("{url}: {e}")))?;
    let status_line = String::from_utf8_lossy(head.get(..n).unwrap_or_default()).into_owned();
    let status = status_line.split_whitespace().nth(1).unwrap_or("none");
    if status == "200" {
        Ok(())
    } else {
        Err(Failure::runtime(format!("{url}: status {status}")))
    }
}

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

fn backup(
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

fn restore(
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

fn migrate_store(
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

fn migrate(db: &Db) -> Result<Vec<String>, Failure> {
    let mut conn = db.get().map_err(|e| Failure::runtime(e.to_string()))?;
    migrations::run_pending(&mut conn).map_err(|e| Failure::runtime(e.to_string()))
}

fn demo(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
    json: bool,
) -> Result<(), Failure> {
    if settings.environment == Environment::Production {
        return Err(Failure::usage(
            "the demo's passwords are public; `caseguard demo` is refused when environment = production",
        ));
    }
    let store = Store::open(runtime, settings)?;
    let mut conn = store.conn()?;
    let summary = crate::demo::load_organisations(&mut conn, clock)
        .map_err(|e| describe_import(Path::new("demo district"), e))?;
    let logins = crate::demo::load_accounts(&mut conn, &store.keyring, &store.auditor, clock)
        .map_err(|e| Failure::runtime(e.to_string()))?;
    let taxonomy = crate::domain::taxonomy::Taxonomy::load(settings.policy_dir.as_deref())
        .map_err(Failure::usage)?;
    let protocol =
        crate::domain::protocol::Protocol::load(settings.policy_dir.as_deref(), &taxonomy)
            .map_err(Failure::usage)?;
    let calendar = crate::domain::calendar::Calendar::load(settings.policy_dir.as_deref())
        .map_err(Failure::usage)?;
    let context = crate::cases::CaseContext {
        keyring: std::sync::Arc::new(store.keyring.clone()),
        auditor: &store.auditor,
        clock,
        taxonomy: &taxonomy,
        protocol: &protocol,
        calendar: &calendar,
        public_url: settings.public_url.as_str(),
    };
    let cases = crate::demo::load_cases(&mut conn, &context)
        .map_err(|e| Failure::runtime(e.to_string()))?;
    if json {
        print_json(&logins)?;
        return Ok(());
    }
    print_line(&format!(
        "Demo district loaded into {}: organisations {summary}; {cases} new demo case(s).",
        store.db.url().redacted()
    ));
    print_line("Demo logins (fictional people; these passwords are public):");
    for login in &logins {
        print_line(&format!(
            "  {:<17} {:<14} {:<40} password: {}",
            login.role, login.org, login.email, login.password
        ));
        print_line(&format!("  {:<17} TOTP: {}", "", login.totp_uri));
    }
    print_line("Start the service with `caseguard serve`.");
    Ok(())
}

fn demo_cases(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
    count: usize,
    seed: u64,
) -> Result<(), Failure> {
    let store = Store::open(runtime, settings)?;
    let mut conn = store.conn()?;
    let bar = indicatif::ProgressBar::new(u64::try_from(count).unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template("generating {bar:40} {pos}/{len} cases ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let made = crate::demo::generate::generate_cases(
        &mut conn,
        &store.keyring,
        &store.auditor,
        clock,
        count,
        seed,
        |done| bar.set_position(u64::try_from(done).unwrap_or(0)),
    )
    .map_err(|e| Failure::runtime(e.to_string()))?;
    bar.finish_and_clear();
    print_line(&format!(
        "generated {made} fictional case(s) in {:.1} s (seed {seed})",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

#[expect(clippy::too_many_arguments, reason = "one per command-line option")]
fn stats_report(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
    area: &str,
    period: &str,
    format: ReportFormat,
    lang: &str,
    out: Option<&Path>,
) -> Result<(), Failure> {
    use crate::stats::{self, DisclosurePolicy, ReportingPolicy, StatsContext};
    let lang = match lang {
        "vi" | "en" => lang,
        _ => return Err(Failure::usage("--lang must be vi or en")),
    };
    let dir = settings.policy_dir.as_deref();
    let reporting = ReportingPolicy::load(dir).map_err(Failure::usage)?;
    let disclosure = DisclosurePolicy::load(dir).map_err(Failure::usage)?;
    let taxonomy = crate::domain::taxonomy::Taxonomy::load(dir).map_err(Failure::usage)?;
    let calendar = crate::domain::calendar::Calendar::load(dir).map_err(Failure::usage)?;
    let period = reporting
        .period(period)
        .map_err(|e| Failure::usage(format!("--period: {e}")))?;
    let store = Store::open(runtime, settings)?;
    let mut conn = store.conn()?;
    let ctx = StatsContext {
        reporting: &reporting,
        disclosure: &disclosure,
        taxonomy: &taxonomy,
        utc_offset: calendar.utc_offset(),
        clock,
    };
    let failed = |e: stats::StatsError| match e {
        stats::StatsError::NotFound => {
            Failure::usage(format!("--area: no organisation has the code {area}"))
        }
        stats::StatsError::NotAnArea | stats::StatsError::TooFewSchools => {
            Failure::usage(format!("--area: {e}"))
        }
        other => Failure::runtime(other.to_string()),
    };
    let area_row = stats::area_by_code(&mut conn, area).map_err(failed)?;
    let capability = Capability::for_operator(Action::StatsRead);
    let (report, stored) =
        stats::live_or_released(&mut conn, &ctx, &capability, &area_row, &period)
            .map_err(failed)?;
    let (bytes, name) = match format {
        ReportFormat::Json => {
            let value = serde_json::json!({
                "released": stored.is_some(),
                "id": stored.as_ref().map(|s| s.id.clone()),
                "report": report,
            });
            let mut text = serde_json::to_string_pretty(&value)
                .map_err(|e| Failure::runtime(e.to_string()))?;
            text.push('\n');
            (text.into_bytes(), "json")
        }
        ReportFormat::Csv => (
            stats::export::csv(&report, lang).map_err(Failure::runtime)?,
            "csv",
        ),
        ReportFormat::Xlsx => (
            stats::export::xlsx(&report, lang).map_err(Failure::runtime)?,
            "xlsx",
        ),
    };
    stats::audit_export(
        &mut conn,
        &ctx,
        &store.auditor,
        &capability,
        &area_row.id,
        &period.id,
        name,
    )
    .map_err(failed)?;
    match out {
        Some(path) => std::fs::write(path, &bytes)
            .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", path.display()))),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .map_err(|e| Failure::runtime(format!("cannot write the report: {e}")))
        }
    }
}

fn keys(
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

/// What `user create --json` prints.
#[derive(Serialize)]
struct CreatedJson {
    user_id: String,
    email: String,
    role: String,
    org: String,
    totp_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    enrolment_url: Option<String>,
}

fn user(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    clock: &dyn Clock,
    command: UserCommand,
) -> Result<(), Failure> {
    match command {
        UserCommand::Create(args) => {
            let org =
                OrgCode::parse(&args.org).map_err(|e| Failure::usage(format!("--org: {e}")))?;
            let role =
                Role::parse(&args.role).map_err(|e| Failure::usage(format!("--role: {e}")))?;
            let email = EmailAddress::parse(&args.email)
                .map_err(|e| Failure::usage(format!("--email: {e}")))?;
            let name = DisplayName::parse(&args.name)
                .map_err(|e| Failure::usage(format!("--name: {e}")))?;
            let password_hash = if args.password_stdin {
                let mut text = String::new();
                std::io::stdin()
                    .take(4096)
                    .read_to_string(&mut text)
                    .map_err(|e| {
                        Failure::usage(format!("cannot read the password from stdin: {e}"))
                    })?;
                let line = text.strip_suffix('\n').unwrap_or(&text);
                let line = line.strip_suffix('\r').unwrap_or(line);
                let mut context = vec![email.local_part()];
                context.extend(name.as_str().split_whitespace());
                let password = NewPassword::parse(line, &context).map_err(Failure::runtime)?;
                Some(
                    password::hash_blocking(password.expose())
                        .map_err(|e| Failure::runtime(e.to_string()))?,
                )
            } else {
                None
            };
            let store = Store::open(runtime, settings)?;
            let mut conn = store.conn()?;
            let created = accounts::create(
                &mut conn,
                &store.keyring,
                &store.auditor,
                clock,
                NewAccount {
                    org,
                    role,
                    email,
                    name,
                    password_hash,
                    totp_secret: None,
                },
                &Capability::for_operator(Action::UserCreate),
            )?;
            let enrolment_url = created.enrolment_token.as_ref().map(|token| {
                format!(
                    "{}/enrol/{token}",
                    settings.public_url.as_str().trim_end_matches('/')
                )
            });
            if args.json {
                print_json(&CreatedJson {
                    user_id: created.user_id,
                    email: created.email.as_str().to_owned(),
                    role: created.role.as_str().to_owned(),
                    org: created.org.as_str().to_owned(),
                    totp_uri: created.totp_uri,
                    enrolment_url,
                })?;
            } else {
                print_line(&format!(
                    "created {} {} in {} (id {})",
                    created.role,
                    created.email.as_str(),
                    created.org,
                    created.user_id
                ));
                print_line(&format!(
                    "TOTP for the authenticator app: {}",
                    created.totp_uri
                ));
                if let Some(url) = enrolment_url {
                    print_line(&format!(
                        "one-time enrolment link (valid {} hours): {url}",
                        accounts::ENROLMENT_VALIDITY_HOURS
                    ));
                }
            }
            Ok(())
        }
        UserCommand::Disable { email } => {
            let email =
                EmailAddress::parse(&email).map_err(|e| Failure::usage(format!("--email: {e}")))?;
            let store = Store::open(runtime, settings)?;
            let mut conn = store.conn()?;
            let user = accounts::find_by_email(&mut conn, &email)?;
            accounts::disable(
                &mut conn,
                &store.auditor,
                clock,
                &user.id,
                &Capability::for_operator(Action::UserDisable),
            )?;
            print_line(&format!(
                "disabled {} (id {}); its sessions and tokens are void",
                email.as_str(),
                user.id
            ));
            Ok(())
        }
        UserCommand::ResetMfa { email, json } => {
            let email =
                EmailAddress::parse(&email).map_err(|e| Failure::usage(format!("--email: {e}")))?;
            let store = Store::open(runtime, settings)?;
            let mut conn = store.conn()?;
            let user = accounts::find_by_email(&mut conn, &email)?;
            let totp_uri = accounts::reset_mfa(
                &mut conn,
                &store.keyring,
                &store.auditor,
                clock,
                &user.id,
                &Capability::for_operator(Action::UserResetMfa),
            )?;
            if json {
                print_json(
                    &serde_json::json!({"user_id": user.id, "email": email.as_str(), "totp_uri": totp_uri}),
                )?;
            } else {
                print_line(&format!(
                    "new second factor for {} (id {}): {totp_uri}",
                    email.as_str(),
                    user.id
                ));
            }
            Ok(())
        }
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
