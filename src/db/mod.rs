//! Storage: one diesel code path over embedded SQLite and PostgreSQL.
//!
//! Owns the connection type ([`DbConnection`], a `MultiConnection` enum), the
//! pool ([`Db`]), connection settings (SQLite: WAL, foreign keys, busy
//! timeout, fully synchronous commits) and the embedded migrations of both
//! backends. Blocking database work never runs on the async workers: callers
//! go through [`Db::read`] or [`Db::write`], which hop onto tokio's blocking
//! pool. This module never logs URLs or passwords; a [`DatabaseUrl`] only
//! prints its redacted form.

pub mod audit;
pub mod cases;
pub mod closure_requests;
pub mod intake_tokens;
pub mod legal_holds;
pub mod migrations;
pub mod organisations;
pub mod partner_sessions;
pub mod referrals;
pub mod reminders;
pub mod schema;
pub mod stats;
pub mod transfers;
pub mod unit_indicators;
pub mod users;

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};
use secrecy::{ExposeSecret, SecretString};

/// A connection to either backend. Queries written against it run on both.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

impl DbConnection {
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgresql(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the data lives: `sqlite://PATH` or `postgres://…`.
#[derive(Clone)]
pub enum DatabaseUrl {
    Sqlite { path: PathBuf },
    Postgres { url: SecretString, redacted: String },
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    /// Parses a database URL. The error message never repeats the URL: it
    /// may hold a password.
    pub fn parse(url: &SecretString) -> Result<Self, String> {
        let text = url.expose_secret().trim();
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(
                "expected sqlite://PATH or postgres://USER@HOST/DATABASE (no scheme found)"
                    .to_owned(),
            );
        };
        match scheme {
            "sqlite" => {
                if rest.is_empty() {
                    return Err(
                        "sqlite:// needs a file path, e.g. sqlite://./data/caseguard.db".into(),
                    );
                }
                if rest.contains('?') || rest.starts_with(':') {
                    return Err(
                        "sqlite:// takes a plain file path (no options, no :memory:)".into(),
                    );
                }
                Ok(Self::Sqlite {
                    path: PathBuf::from(rest),
                })
            }
            "postgres" | "postgresql" => {
                let parsed = url::Url::parse(text)
                    .map_err(|e| format!("not a valid postgres:// URL ({e})"))?;
                let host = parsed
                    .host_str()
                    .filter(|h| !h.is_empty())
                    .ok_or("postgres:// URL needs a host")?;
                let database = parsed.path().trim_start_matches('/');
                if database.is_empty() || database.contains('/') {
                    return Err("postgres:// URL needs a database name, e.g. postgres://caseguard@127.0.0.1/caseguard".into());
                }
                let user = match parsed.username() {
                    "" => String::new(),
                    user => format!("{user}@"),
                };
                let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
                Ok(Self::Postgres {
                    url: SecretString::from(text.to_owned()),
                    redacted: format!("postgres://{user}{host}{port}/{database}"),
                })
            }
            other => Err(format!(
                "unsupported scheme `{}`: expected sqlite:// or postgres://",
                other.chars().take(20).collect::<String>()
            )),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite { .. } => Backend::Sqlite,
            Self::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The URL without any password, safe for logs and messages.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite { path } => format!("sqlite://{}", path.display()),
            Self::Postgres { redacted, .. } => redacted.clone(),
        }
    }

    /// Opens one connection with the session settings caseguard relies on.
    pub fn connect(&self) -> Result<DbConnection, ConnectError> {
        match self {
            Self::Sqlite { path } => {
                let path_text = path.to_str().ok_or_else(|| {
                    ConnectError::Open("the SQLite path is not valid UTF-8".into())
                })?;
                let mut conn = SqliteConnection::establish(path_text)
                    .map_err(|e| ConnectError::Open(describe_connection_error(&e)))?;
                conn.batch_execute(SQLITE_SESSION_PRAGMAS)
                    .map_err(ConnectError::Setup)?;
                Ok(DbConnection::Sqlite(conn))
            }
            Self::Postgres { url, .. } => {
                let mut conn = PgConnection::establish(url.expose_secret())
                    .map_err(|e| ConnectError::Open(describe_connection_error(&e)))?;
                // Timestamps are stored without zone and are always UTC.
                conn.batch_execute("SET TIME ZONE 'UTC'")
                    .map_err(ConnectError::Setup)?;
                Ok(DbConnection::Postgresql(conn))
            }
        }
    }

    /// Creates the directory that will hold an SQLite file.
    pub fn prepare(&self) -> std::io::Result<()> {
        if let Self::Sqlite { path } = self
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)?;
        }
        Ok(())
    }
}

/// Every SQLite connection: write-ahead log so readers never block the
/// writer, foreign keys enforced, wait up to 5 s for a lock instead of failing,
/// and `synchronous = FULL` so an acknowledged commit survives a power cut.
const SQLITE_SESSION_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;
PRAGMA busy_timeout = 5000;";

fn describe_connection_error(error: &ConnectionError) -> String {
    // libpq messages name host, port and user but never the password.
    let text = match error {
        ConnectionError::BadConnection(message) => message.clone(),
        ConnectionError::InvalidConnectionUrl(_) => "invalid connection URL".to_owned(),
        other => other.to_string(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot open the database: {0}")]
    Open(String),
    #[error("cannot configure the database session: {0}")]
    Setup(diesel::result::Error),
    #[error("database health check failed: {0}")]
    Check(diesel::result::Error),
}

/// r2d2 glue: opens connections through [`DatabaseUrl::connect`].
#[derive(Debug)]
pub struct Manager {
    url: DatabaseUrl,
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<DbConnection, ConnectError> {
        self.url.connect()
    }

    /// The check-out test. PostgreSQL: a `SELECT 1`, so a connection the
    /// server dropped (a restart) is replaced before a request uses it.
    /// SQLite has no server that could drop a connection: an open file
    /// handle stays valid, and the statement would only cost time.
    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectError> {
        match conn {
            DbConnection::Postgresql(c) => c.ping().map_err(ConnectError::Check),
            DbConnection::Sqlite(_) => Ok(()),
        }
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        match conn {
            DbConnection::Postgresql(c) => c.is_broken(),
            DbConnection::Sqlite(c) => c.is_broken(),
        }
    }
}

pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// Errors from running work on the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time: the database is down or saturated.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("database task failed: {0}")]
    Task(String),
}

/// What a failed query says about the database itself, for the HTTP edge:
/// the server went away, or its storage is full. Anything else is a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// The connection was lost (server stopped or restarted, network cut).
    ConnectionLost,
    /// No space left where the database writes (SQLite `SQLITE_FULL`,
    /// PostgreSQL `disk_full`).
    StorageFull,
}

impl Outage {
    /// Classifies a query error by its kind and the database's own message.
    pub fn of(error: &diesel::result::Error) -> Option<Self> {
        use diesel::result::{DatabaseErrorKind, Error};
        let Error::DatabaseError(kind, info) = error else {
            return None;
        };
        if matches!(
            kind,
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand
        ) {
            return Some(Self::ConnectionLost);
        }
        Self::of_message(info.message())
    }

    /// The same from a message alone (an error that reached the edge as
    /// text inside another error).
    pub fn of_message(message: &str) -> Option<Self> {
        const LOST: [&str; 6] = [
            "server closed the connection",
            "no connection to the server",
            "terminating connection due to administrator command",
            "could not receive data from server",
            "could not send data to server",
            "connection to server",
        ];
        const FULL: [&str; 4] = [
            "database or disk is full",
            "No space left on device",
            "could not extend file",
            "disk I/O error",
        ];
        if LOST.iter().any(|m| message.contains(m)) {
            Some(Self::ConnectionLost)
        } else if FULL.iter().any(|m| message.contains(m)) {
            Some(Self::StorageFull)
        } else {
            None
        }
    }
}

impl DbError {
    /// See [`Outage`].
    pub fn outage(&self) -> Option<Outage> {
        match self {
            Self::Unavailable(_) => Some(Outage::ConnectionLost),
            Self::Query(error) => Outage::of(error),
            Self::Task(_) => None,
        }
    }
}

/// After a failed request: is this connection's server gone? (A statement
/// cut off by a stopped server can fail with an error diesel cannot
/// classify; the connection then no longer answers.) Always false for
/// SQLite, which has no server.
pub fn connection_lost(conn: &mut DbConnection) -> bool {
    match conn {
        DbConnection::Postgresql(c) => c.is_broken() || c.ping().is_err(),
        DbConnection::Sqlite(_) => false,
    }
}

impl From<r2d2::Error> for DbError {
    fn from(error: r2d2::Error) -> Self {
        Self::Unavailable(error.to_string())
    }
}

/// The connection pool. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<Manager>,
    url: DatabaseUrl,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Builds the pool and checks that one connection can be opened, so a
    /// wrong URL fails at start with the database's own message.
    pub fn connect(url: &DatabaseUrl, size: u32, timeout: Duration) -> Result<Self, ConnectError> {
        url.prepare().map_err(|e| {
            ConnectError::Open(format!("cannot create the database directory: {e}"))
        })?;
        // Fail fast with the real reason instead of r2d2's generic timeout.
        drop(url.connect()?);
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(timeout)
            .test_on_check_out(true)
            .error_handler(Box::new(r2d2::LoggingErrorHandler))
            .build_unchecked(Manager { url: url.clone() });
        Ok(Self {
            pool,
            url: url.clone(),
        })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// Open and idle connections, for metrics.
    pub fn pool_state(&self) -> r2d2::State {
        self.pool.state()
    }

    /// A connection from the pool, waiting at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<PooledConnection, DbError> {
        self.pool
            .get_timeout(timeout)
            .map_err(|e| DbError::Unavailable(e.to_string()))
    }

    /// A connection from the pool, for blocking code (CLI commands).
    pub fn get(&self) -> Result<PooledConnection, DbError> {
        self.pool
            .get()
            .map_err(|e| DbError::Unavailable(e.to_string()))
    }

    /// The one way request work reaches the database: `work` runs with a
    /// pooled connection on the blocking pool. The outage policy is here and
    /// nowhere else: no connection in time, or a failure after which the
    /// connection turns out to be lost, is [`DbError::Unavailable`] (a 503 at
    /// the HTTP edge, whatever the work's own error said).
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut PooledConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get()
                .map_err(|e| E::from(DbError::Unavailable(e.to_string())))?;
            let result = work(&mut conn);
            if result.is_err() && connection_lost(&mut conn) {
                return Err(E::from(DbError::Unavailable(
                    "the connection was lost".into(),
                )));
            }
            result
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// Short read-only work (a few indexed lookups), on the calling thread
    /// when the store is SQLite and a connection is idle in the pool, else
    /// on the blocking pool like [`Db::read`]. A hand-off to the blocking
    /// pool and back costs two thread wake-ups, more than such a read on
    /// SQLite (a local file, where a reader in WAL mode never waits for the
    /// writer); on PostgreSQL every statement is a round trip to a server
    /// that may be slow or gone, which must not hold up an async worker.
    pub async fn read_short<T, F>(&self, work: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        if self.backend() == Backend::Sqlite
            && let Some(mut conn) = self.pool.try_get()
        {
            return work(&mut conn);
        }
        self.read(work).await
    }

    /// Runs read-only work on the blocking pool ([`Db::run`]).
    pub async fn read<T, F>(&self, work: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| work(conn)).await
    }

    /// Runs work in one write transaction on the blocking pool: all of it
    /// commits or none of it does ([`Db::run`]).
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + Send + 'static,
    {
        self.run(move |conn| write_transaction(conn, work)).await
    }
}

/// Whether the store holds anything sealed or signed with a keyring: an
/// account's sealed credentials, a case's wrapped data key, an audit entry or
/// a signed checkpoint. Needs a migrated store.
pub fn holds_keyed_data(conn: &mut DbConnection) -> diesel::QueryResult<bool> {
    use diesel::dsl::exists;
    use diesel::prelude::*;
    use schema::{audit_checkpoints, audit_log, case_keys, credentials};
    Ok(
        diesel::select(exists(credentials::table.select(credentials::user_id)))
            .get_result::<bool>(conn)?
            || diesel::select(exists(case_keys::table.select(case_keys::case_id)))
                .get_result::<bool>(conn)?
            || diesel::select(exists(audit_log::table.select(audit_log::seq)))
                .get_result::<bool>(conn)?
            || diesel::select(exists(
                audit_checkpoints::table.select(audit_checkpoints::seq),
            ))
            .get_result::<bool>(conn)?,
    )
}

/// The writers of this process to SQLite, one at a time (see
/// [`write_transaction`]).
static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `work` inside one write transaction.
///
/// On SQLite the transaction starts with `BEGIN IMMEDIATE`, which takes the
/// write lock up front: a transaction that reads and then writes can then never
/// fail halfway with "database is locked" — it waits (busy timeout) at the
/// start instead.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let depth = match conn {
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::transaction_manager_status_mut(inner).transaction_depth()
        }
        DbConnection::Postgresql(inner) => {
            AnsiTransactionManager::transaction_manager_status_mut(inner).transaction_depth()
        }
    };
    if matches!(depth, Ok(Some(_))) {
        // Already inside a write transaction: a savepoint keeps it
        // all-or-nothing, and the audit entries it appended go with it.
        let mark = crate::audit::PendingGuard::mark();
        let result = conn.transaction(work);
        if result.is_err() {
            crate::audit::PendingGuard::rewind(mark);
        }
        return result;
    }
    // SQLite has one writer at a time. Queueing writers of this process on a
    // lock, instead of on SQLite's busy handler (which sleeps in growing
    // steps), keeps the slowest write close to the time of the writes ahead
    // of it. Other processes (the command line) still meet the busy handler.
    let _writer = match conn {
        DbConnection::Sqlite(_) => Some(
            SQLITE_WRITER
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ),
        DbConnection::Postgresql(_) => None,
    };
    match conn {
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
        }
        DbConnection::Postgresql(inner) => AnsiTransactionManager::begin_transaction(inner)?,
    }
    // The audit entries the work appends are chained last, right before the
    // commit (see `Auditor::append`).
    let pending = crate::audit::PendingGuard::begin(conn);
    let outcome = work(conn).and_then(|value| {
        pending
            .flush(conn)
            .map(|()| value)
            .map_err(|e| E::from(e.into_query_error()))
    });
    drop(pending);
    match outcome {
        Ok(value) => {
            let committed = match conn {
                DbConnection::Sqlite(inner) => AnsiTransactionManager::commit_transaction(inner),
                DbConnection::Postgresql(inner) => {
                    AnsiTransactionManager::commit_transaction(inner)
                }
            };
            match committed {
                Ok(()) => Ok(value),
                Err(error) => {
                    rollback(conn);
                    Err(error.into())
                }
            }
        }
        Err(error) => {
            rollback(conn);
            Err(error)
        }
    }
}

fn rollback(conn: &mut DbConnection) {
    let result = match conn {
        DbConnection::Sqlite(inner) => AnsiTransactionManager::rollback_transaction(inner),
        DbConnection::Postgresql(inner) => AnsiTransactionManager::rollback_transaction(inner),
    };
    if let Err(error) = result {
        // The connection is then marked broken and the pool discards it.
        tracing::warn!(error = %error, "rollback failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DatabaseUrl, String> {
        DatabaseUrl::parse(&SecretString::from(text.to_owned()))
    }

    #[test]
    fn sqlite_urls_name_a_path() {
        let DatabaseUrl::Sqlite { path } = parse("sqlite://./data/caseguard.db").unwrap() else {
            panic!("not sqlite");
        };
        assert_eq!(path, PathBuf::from("./data/caseguard.db"));
        let DatabaseUrl::Sqlite { path } = parse("sqlite:///var/lib/caseguard/db").unwrap() else {
            panic!("not sqlite");
        };
        assert_eq!(path, PathBuf::from("/var/lib/caseguard/db"));
        assert!(parse("sqlite://").is_err());
        assert!(parse("sqlite://:memory:").is_err());
    }

    #[test]
    fn postgres_urls_are_redacted() {
        let url = parse("postgres://app:pa55word@db.internal:6543/caseguard").unwrap();
        assert_eq!(url.redacted(), "postgres://app@db.internal:6543/caseguard");
        assert!(!format!("{url:?}").contains("pa55word"));
    }

    #[test]
    fn malformed_urls_never_echo_secrets() {
        for bad in [
            "mysql://root:pa55word@localhost/db",
            "postgres://app:pa55word@db:notaport/db",
            "postgres://app:pa55word@db.internal",
            "pa55word",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(!err.contains("pa55word"), "{bad} -> {err}");
        }
    }
}
