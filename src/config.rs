//! Configuration: defaults, then `caseguard.toml`, then `CASEGUARD_*` variables.
//!
//! Owns parsing and validating every setting before anything starts. A bad
//! setting becomes one [`ConfigError`] line naming the key and the problem —
//! never the value of a secret. Secrets (database and SMTP URLs, which may
//! carry passwords) are `SecretString`s, so `Debug` and logs print
//! `[REDACTED]`. Runtime checks that touch the outside world (creating the data
//! directory, binding the port) live in `startup.rs` and report the same way.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::Deserialize;

use crate::db::DatabaseUrl;

pub mod proxies;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "caseguard.toml";
/// Prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "CASEGUARD_";

/// A setting that cannot be used. The message is one line, names the setting
/// and never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    fn key(key: &str, problem: impl std::fmt::Display) -> Self {
        Self(format!("configuration `{key}`: {problem}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

/// The settings as written by the operator, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    listen: String,
    database_url: SecretString,
    data_dir: PathBuf,
    keyring: Option<PathBuf>,
    smtp_url: Option<SecretString>,
    public_url: Option<String>,
    environment: Environment,
    log_format: Option<LogFormat>,
    log_level: String,
    db_pool_size: u32,
    db_connect_timeout_secs: u64,
    request_body_limit_bytes: u64,
    request_timeout_secs: u64,
    header_read_timeout_secs: u64,
    keep_alive_secs: u64,
    http_workers: u32,
    shutdown_grace_secs: u64,
    session_idle_timeout_secs: u64,
    session_absolute_timeout_secs: u64,
    access_token_lifetime_secs: u64,
    login_lock_after: u32,
    login_attempts_per_minute: u32,
    password_hash_concurrency: Option<u32>,
    policy_dir: Option<PathBuf>,
    attachment_max_bytes: u64,
    mail_from: Option<String>,
    outbox_poll_seconds: u64,
    outbox_max_attempts: u32,
    trusted_proxies: ProxyList,
    max_connections: u32,
    max_connections_per_address: u32,
    listen_backlog: u32,
    allow_insecure_file_modes: bool,
    audit_checkpoint_interval_secs: u64,
    blocking_threads: u32,
}

/// `trusted_proxies` as written: a list, or (handy in an environment
/// variable) one string with commas.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ProxyList {
    List(Vec<String>),
    Text(String),
}

/// Defaults, as a provider figment can merge the file and environment over.
fn defaults() -> Serialized<serde_json::Value> {
    Serialized::defaults(serde_json::json!({
        "listen": "127.0.0.1:8080",
        "database_url": "sqlite://./data/caseguard.db",
        "data_dir": "./data",
        "environment": "development",
        "log_level": "info",
        "db_pool_size": 8,
        "db_connect_timeout_secs": 5,
        "request_body_limit_bytes": 1_048_576,
        "request_timeout_secs": 30,
        "header_read_timeout_secs": 10,
        "keep_alive_secs": 60,
        "http_workers": 0,
        "shutdown_grace_secs": 30,
        "session_idle_timeout_secs": 900,
        "session_absolute_timeout_secs": 28_800,
        "access_token_lifetime_secs": 900,
        "login_lock_after": 20,
        "login_attempts_per_minute": 20,
        "attachment_max_bytes": 10_485_760,
        "outbox_poll_seconds": 5,
        "outbox_max_attempts": 10,
        "trusted_proxies": [],
        "max_connections": 4096,
        "max_connections_per_address": 256,
        "listen_backlog": 1024,
        "allow_insecure_file_modes": false,
        "audit_checkpoint_interval_secs": 5,
        "blocking_threads": 0,
    }))
}

/// Every known key, for the "unknown key" message.
const KNOWN_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "data_dir",
    "keyring",
    "smtp_url",
    "public_url",
    "environment",
    "log_format",
    "log_level",
    "db_pool_size",
    "db_connect_timeout_secs",
    "request_body_limit_bytes",
    "request_timeout_secs",
    "header_read_timeout_secs",
    "keep_alive_secs",
    "http_workers",
    "shutdown_grace_secs",
    "session_idle_timeout_secs",
    "session_absolute_timeout_secs",
    "access_token_lifetime_secs",
    "login_lock_after",
    "login_attempts_per_minute",
    "password_hash_concurrency",
    "policy_dir",
    "attachment_max_bytes",
    "mail_from",
    "outbox_poll_seconds",
    "outbox_max_attempts",
    "trusted_proxies",
    "max_connections",
    "max_connections_per_address",
    "listen_backlog",
    "allow_insecure_file_modes",
    "audit_checkpoint_interval_secs",
    "blocking_threads",
];

/// Where the keyring comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyringSource {
    File(PathBuf),
    Env(String),
}

/// Validated settings. Construct with [`Settings::load`] or
/// [`Settings::from_overrides`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database: DatabaseUrl,
    pub data_dir: PathBuf,
    /// Where the keyring comes from: a file (default `<data_dir>/keyring`)
    /// or, with `env:NAME`, the environment variable NAME (production: a
    /// secret store injects it).
    pub keyring: KeyringSource,
    pub smtp_url: Option<SecretString>,
    /// The address users reach the service at, used in links.
    pub public_url: url::Url,
    pub environment: Environment,
    pub log_format: LogFormat,
    pub log_level: String,
    pub db_pool_size: u32,
    pub db_connect_timeout: Duration,
    pub request_body_limit: usize,
    pub request_timeout: Duration,
    /// The whole request head (request line and headers) must arrive
    /// within this; a slower client gets 408 and is disconnected.
    pub header_read_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    pub keep_alive: Duration,
    /// HTTP worker threads (configured as 0: one per core).
    pub http_workers: usize,
    pub shutdown_grace: Duration,
    /// A browser session ends after this long without a request (ASVS 7.3.1).
    pub session_idle_timeout: Duration,
    /// …and after this long in any case (ASVS 7.3.2).
    pub session_absolute_timeout: Duration,
    /// Lifetime of API access tokens; at most 15 minutes.
    pub access_token_lifetime: Duration,
    /// Consecutive failed sign-ins after which an account is locked until an
    /// admin unlocks it. Growing delays start after 5.
    pub login_lock_after: u32,
    /// Sign-in attempts per client address per minute.
    pub login_attempts_per_minute: u32,
    /// Password hashes computed at once (default: one fewer than the cores,
    /// at least one).
    pub password_hash_concurrency: usize,
    /// A directory with `authz.cedar` and `authz.cedarschema` replacing the
    /// shipped authorization policies.
    pub policy_dir: Option<PathBuf>,
    /// Largest attachment accepted (an image or a PDF).
    pub attachment_max_bytes: usize,
    /// The `From:` of notification e-mails (default
    /// `caseguard <no-reply@HOST>`, HOST from `public_url`).
    pub mail_from: lettre::message::Mailbox,
    /// How often this process sends due notifications; `None` (configured
    /// as 0) when another process does.
    pub outbox_poll_interval: Option<Duration>,
    /// Attempts to send a notification before it is given up (`dead`).
    pub outbox_max_attempts: u32,
    /// Reverse proxies whose `X-Forwarded-For` gives the client's address
    /// (for the sign-in limit and the audit log); nobody else's is believed.
    pub trusted_proxies: std::sync::Arc<proxies::TrustedProxies>,
    /// Open connections the server keeps at most (all workers together);
    /// beyond it new connections wait in the listen queue.
    pub max_connections: usize,
    /// Open connections one client address keeps at most; more are closed
    /// at once. Trusted proxies are not counted (they limit per client).
    pub max_connections_per_address: usize,
    /// The listen queue (`listen(2)` backlog).
    pub listen_backlog: i32,
    /// Start even when the data directory or the store's files are
    /// readable by group or others (the keyring never).
    pub allow_insecure_file_modes: bool,
    /// Every audit entry is covered by a signed checkpoint at most this long
    /// after its commit while the service runs (the bound `audit verify`
    /// relies on to find entries cut off the end of the log).
    pub audit_checkpoint_interval: Duration,
    /// Threads per HTTP worker for blocking work (database, password
    /// hashing); configured as 0: the connection pool's size plus the
    /// password hashes at once, shared out over the workers, at least 2.
    pub blocking_threads: usize,
}

impl Settings {
    /// Defaults → the config file → `CASEGUARD_*` environment variables.
    ///
    /// `file` is the `--config` path; when it is `None`, `caseguard.toml` in
    /// the working directory is read if it exists.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(defaults());
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError(format!(
                        "configuration file {} does not exist or is not a file",
                        path.display()
                    )));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => {
                if Path::new(DEFAULT_CONFIG_FILE).is_file() {
                    figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
                }
            }
        }
        // `CASEGUARD_CONFIG` is the `--config` flag's variable, not a setting.
        let env = Env::prefixed(ENV_PREFIX).ignore(&["config"]);
        Self::from_figment(figment.merge(env))
    }

    /// Defaults plus the given keys only: no file, no environment. For tests
    /// and tools that must not be influenced by the surrounding process.
    pub fn from_overrides<I, K, V>(overrides: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: serde::Serialize,
    {
        let mut figment = Figment::from(defaults());
        for (key, value) in overrides {
            figment = figment.merge(Serialized::default(key.as_ref(), value));
        }
        Self::from_figment(figment)
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let raw: RawSettings = figment.extract().map_err(describe_figment_error)?;
        Self::validate(raw)
    }

    fn validate(raw: RawSettings) -> Result<Self, ConfigError> {
        let listen: SocketAddr = raw.listen.trim().parse().map_err(|_| {
            ConfigError::key(
                "listen",
                format!("`{}` is not an address such as 127.0.0.1:8080", raw.listen),
            )
        })?;
        let database = DatabaseUrl::parse(&raw.database_url)
            .map_err(|problem| ConfigError::key("database_url", problem))?;
        if raw.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::key("data_dir", "must not be empty"));
        }
        let keyring = match raw.keyring {
            None => KeyringSource::File(raw.data_dir.join("keyring")),
            Some(path) => match path.to_str().and_then(|p| p.strip_prefix("env:")) {
                Some(name) => {
                    let valid = !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                        && !name.starts_with(ENV_PREFIX);
                    if !valid {
                        return Err(ConfigError::key(
                            "keyring",
                            format!(
                                "env:NAME needs an upper-case variable name not starting with {ENV_PREFIX} (e.g. env:CG_KEYRING)"
                            ),
                        ));
                    }
                    KeyringSource::Env(name.to_owned())
                }
                None => KeyringSource::File(path),
            },
        };
        let public_url = match raw.public_url {
            Some(text) => {
                let url = url::Url::parse(&text)
                    .map_err(|e| ConfigError::key("public_url", format!("not a URL ({e})")))?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(ConfigError::key(
                        "public_url",
                        "must be an http:// or https:// address with a host",
                    ));
                }
                url
            }
            None => url::Url::parse(&format!("http://{listen}/"))
                .map_err(|e| ConfigError::key("public_url", e))?,
        };
        if let Some(smtp) = &raw.smtp_url {
            use secrecy::ExposeSecret;
            let scheme = smtp.expose_secret().split("://").next().unwrap_or_default();
            if !matches!(scheme, "smtp" | "smtps") || !smtp.expose_secret().contains("://") {
                return Err(ConfigError::key(
                    "smtp_url",
                    "must start with smtp:// or smtps://",
                ));
            }
        }
        tracing_subscriber::EnvFilter::try_new(&raw.log_level)
            .map_err(|e| ConfigError::key("log_level", format!("not a log filter ({e})")))?;
        let log_format = raw.log_format.unwrap_or(match raw.environment {
            Environment::Development => LogFormat::Text,
            Environment::Production => LogFormat::Json,
        });
        let db_pool_size = in_range("db_pool_size", raw.db_pool_size, 1, 256)?;
        let connect = in_range(
            "db_connect_timeout_secs",
            raw.db_connect_timeout_secs,
            1,
            300,
        )?;
        let body = in_range(
            "request_body_limit_bytes",
            raw.request_body_limit_bytes,
            1024,
            1 << 30,
        )?;
        let timeout = in_range("request_timeout_secs", raw.request_timeout_secs, 1, 3600)?;
        let grace = in_range("shutdown_grace_secs", raw.shutdown_grace_secs, 0, 3600)?;
        let header_read = in_range(
            "header_read_timeout_secs",
            raw.header_read_timeout_secs,
            1,
            300,
        )?;
        let keep_alive = in_range("keep_alive_secs", raw.keep_alive_secs, 0, 3600)?;
        let workers = in_range("http_workers", raw.http_workers, 0, 256)?;
        let idle = in_range(
            "session_idle_timeout_secs",
            raw.session_idle_timeout_secs,
            60,
            86_400,
        )?;
        let absolute = in_range(
            "session_absolute_timeout_secs",
            raw.session_absolute_timeout_secs,
            idle,
            7 * 86_400,
        )?;
        let token_lifetime = in_range(
            "access_token_lifetime_secs",
            raw.access_token_lifetime_secs,
            60,
            900,
        )?;
        let lock_after = in_range("login_lock_after", raw.login_lock_after, 6, 1000)?;
        let per_minute = in_range(
            "login_attempts_per_minute",
            raw.login_attempts_per_minute,
            1,
            100_000_000,
        )?;
        let mail_from = mail_from(raw.mail_from.as_deref(), &public_url)?;
        let poll = in_range("outbox_poll_seconds", raw.outbox_poll_seconds, 0, 3600)?;
        let max_attempts = in_range("outbox_max_attempts", raw.outbox_max_attempts, 1, 100)?;
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let http_workers = match usize::try_from(workers).unwrap_or(0) {
            0 => cores,
            n => n,
        };
        let hash_concurrency = match raw.password_hash_concurrency {
            Some(n) => {
                usize::try_from(in_range("password_hash_concurrency", n, 1, 256)?).unwrap_or(1)
            }
            None => cores.saturating_sub(1).max(1),
        };
        let checkpoint_every = in_range(
            "audit_checkpoint_interval_secs",
            raw.audit_checkpoint_interval_secs,
            1,
            3600,
        )?;
        let blocking = in_range("blocking_threads", raw.blocking_threads, 0, 1024)?;
        let blocking_threads = match usize::try_from(blocking).unwrap_or(0) {
            0 => (usize::try_from(db_pool_size).unwrap_or(8) + hash_concurrency)
                .div_ceil(http_workers)
                .max(2),
            n => n,
        };
        let proxies = match &raw.trusted_proxies {
            ProxyList::List(list) => list.clone(),
            ProxyList::Text(text) => text.split(',').map(str::to_owned).collect(),
        };
        let trusted_proxies = proxies::TrustedProxies::parse(&proxies)
            .map_err(|problem| ConfigError::key("trusted_proxies", problem))?;
        let max_connections = in_range("max_connections", raw.max_connections, 16, 1_000_000)?;
        let per_address = in_range(
            "max_connections_per_address",
            raw.max_connections_per_address,
            1,
            max_connections,
        )?;
        let backlog = in_range("listen_backlog", raw.listen_backlog, 16, 65_535)?;
        Ok(Self {
            listen,
            database,
            data_dir: raw.data_dir,
            keyring,
            smtp_url: raw.smtp_url,
            public_url,
            environment: raw.environment,
            log_format,
            log_level: raw.log_level,
            db_pool_size,
            db_connect_timeout: Duration::from_secs(connect),
            request_body_limit: usize::try_from(body)
                .map_err(|e| ConfigError::key("request_body_limit_bytes", e))?,
            request_timeout: Duration::from_secs(timeout),
            header_read_timeout: Duration::from_secs(header_read),
            keep_alive: Duration::from_secs(keep_alive),
            http_workers,
            shutdown_grace: Duration::from_secs(grace),
            session_idle_timeout: Duration::from_secs(idle),
            session_absolute_timeout: Duration::from_secs(absolute),
            access_token_lifetime: Duration::from_secs(token_lifetime),
            login_lock_after: lock_after,
            login_attempts_per_minute: per_minute,
            password_hash_concurrency: hash_concurrency,
            policy_dir: raw.policy_dir,
            attachment_max_bytes: usize::try_from(in_range(
                "attachment_max_bytes",
                raw.attachment_max_bytes,
                1024,
                100 * 1024 * 1024,
            )?)
            .map_err(|e| ConfigError::key("attachment_max_bytes", e))?,
            mail_from,
            outbox_poll_interval: (poll > 0).then(|| Duration::from_secs(poll)),
            outbox_max_attempts: max_attempts,
            trusted_proxies: std::sync::Arc::new(trusted_proxies),
            max_connections: usize::try_from(max_connections)
                .map_err(|e| ConfigError::key("max_connections", e))?,
            max_connections_per_address: usize::try_from(per_address)
                .map_err(|e| ConfigError::key("max_connections_per_address", e))?,
            listen_backlog: i32::try_from(backlog)
                .map_err(|e| ConfigError::key("listen_backlog", e))?,
            allow_insecure_file_modes: raw.allow_insecure_file_modes,
            audit_checkpoint_interval: Duration::from_secs(checkpoint_every),
            blocking_threads,
        })
    }
}

/// The sender of notifications: as configured, or `no-reply@` the public
/// host (`localhost` when that is an IP address).
fn mail_from(
    configured: Option<&str>,
    public_url: &url::Url,
) -> Result<lettre::message::Mailbox, ConfigError> {
    let text = match configured {
        Some(text) => text.to_owned(),
        None => {
            let host = match public_url.host() {
                Some(url::Host::Domain(domain)) => domain.to_owned(),
                _ => "localhost".to_owned(),
            };
            format!("caseguard <no-reply@{host}>")
        }
    };
    text.parse().map_err(|_| {
        ConfigError::key(
            "mail_from",
            "must be an address such as `caseguard <no-reply@example.org>`",
        )
    })
}

fn in_range<T>(key: &str, value: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if value < min || value > max {
        return Err(ConfigError::key(
            key,
            format!("{value} is out of range ({min}–{max})"),
        ));
    }
    Ok(value)
}

/// Turns figment's error into one line that names the key and where it came
/// from. Values are never echoed: a mistyped secret must not reach a terminal
/// or a log collector.
fn describe_figment_error(error: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let source = error
        .metadata
        .as_ref()
        .map(|meta| match &meta.source {
            Some(figment::Source::File(path)) => format!(" in {}", path.display()),
            _ if meta.name.contains("environment") => " in the environment".to_owned(),
            _ => String::new(),
        })
        .unwrap_or_default();
    let from_env = source == " in the environment";
    let key = error.path.join(".");
    match &error.kind {
        Kind::UnknownField(field, _) => {
            let shown = if from_env {
                format!("{ENV_PREFIX}{}", field.to_uppercase())
            } else {
                format!("`{field}`")
            };
            ConfigError(format!(
                "unknown configuration key {shown}{source} (known keys: {})",
                KNOWN_KEYS.join(", ")
            ))
        }
        Kind::InvalidType(actual, expected) => ConfigError(format!(
            "configuration `{key}`{source}: expected {expected}, found {}",
            describe_actual(actual)
        )),
        Kind::InvalidValue(_, expected) | Kind::Message(expected) => ConfigError(format!(
            "configuration `{key}`{source}: expected {expected}"
        )),
        Kind::UnknownVariant(_, expected) => ConfigError(format!(
            "configuration `{key}`{source}: expected one of {}",
            expected.join(", ")
        )),
        Kind::MissingField(field) => {
            ConfigError(format!("configuration `{field}`{source} is missing"))
        }
        _ => ConfigError(format!(
            "configuration{source} cannot be read: {}",
            error.kind
        )),
    }
}

fn describe_actual(actual: &figment::error::Actual) -> &'static str {
    use figment::error::Actual;
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a number",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Map => "a table",
        Actual::Seq => "a list",
        _ => "another kind of value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_use_embedded_sqlite() {
        let settings = Settings::from_overrides(Vec::<(&str, &str)>::new()).unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert!(matches!(settings.database, DatabaseUrl::Sqlite { .. }));
        assert_eq!(
            settings.keyring,
            KeyringSource::File(PathBuf::from("./data/keyring"))
        );
        assert_eq!(settings.log_format, LogFormat::Text);
        assert_eq!(settings.public_url.as_str(), "http://127.0.0.1:8080/");
    }

    #[test]
    fn keyring_from_the_environment() {
        let s = Settings::from_overrides([("keyring", "env:CG_KEYRING")]).unwrap();
        assert_eq!(s.keyring, KeyringSource::Env("CG_KEYRING".into()));
        assert!(Settings::from_overrides([("keyring", "env:CASEGUARD_X")]).is_err());
        assert!(Settings::from_overrides([("keyring", "env:")]).is_err());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Settings::from_overrides([("databse_url", "x")]).unwrap_err();
        assert!(
            err.0.contains("unknown configuration key `databse_url`"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let err = Settings::from_overrides([("db_pool_size", 0)]).unwrap_err();
        assert!(err.0.contains("db_pool_size"), "{err}");
    }

    #[test]
    fn production_logs_json_by_default() {
        let s = Settings::from_overrides([("environment", "production")]).unwrap();
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Settings::from_overrides([
            (
                "database_url",
                "postgres://app:hunter2secret@db.example/caseguard",
            ),
            ("smtp_url", "smtp://mailer:hunter3secret@mail.example"),
        ])
        .unwrap();
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("hunter2secret") && !debug.contains("hunter3secret"),
            "{debug}"
        );
    }

    #[test]
    fn notification_settings() {
        let s = Settings::from_overrides([("public_url", "https://cg.example.org/")]).unwrap();
        assert_eq!(
            s.mail_from.to_string(),
            "caseguard <no-reply@cg.example.org>"
        );
        assert_eq!(s.outbox_poll_interval, Some(Duration::from_secs(5)));
        assert_eq!(s.outbox_max_attempts, 10);
        let s = Settings::from_overrides([("outbox_poll_seconds", 0)]).unwrap();
        assert_eq!(s.outbox_poll_interval, None);
        assert_eq!(s.mail_from.email.to_string(), "no-reply@localhost");
        assert!(Settings::from_overrides([("mail_from", "not an address")]).is_err());
        assert!(Settings::from_overrides([("outbox_max_attempts", 0)]).is_err());
    }

    #[test]
    fn bad_smtp_url_is_refused_without_echo() {
        let err =
            Settings::from_overrides([("smtp_url", "mail.example:hunter4secret")]).unwrap_err();
        assert!(
            err.0.contains("smtp_url") && !err.0.contains("hunter4secret"),
            "{err}"
        );
    }
}
