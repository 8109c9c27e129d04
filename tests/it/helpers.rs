//! Test harness: fresh databases, the real server on a random port, the real
//! binary for command-line tests.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use caseguard::clock::FixedClock;
use caseguard::config::Settings;
use caseguard::db::{DatabaseUrl, DbConnection};
use caseguard::startup::Application;
use chrono::TimeZone;
use diesel::Connection;
use diesel::connection::SimpleConnection;
use secrecy::SecretString;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Admin URL of a PostgreSQL server tests may create databases on.
pub const PG_URL_VAR: &str = "CG_TEST_POSTGRES_URL";
/// When set to 1, a missing `CG_TEST_POSTGRES_URL` fails the test.
pub const REQUIRE_PG_VAR: &str = "CG_TEST_REQUIRE_POSTGRES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `NAME::sqlite` and `NAME::postgres` tests calling
/// `NAME(Backend)`.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )+
    };
}

fn pg_admin_url() -> Option<String> {
    match std::env::var(PG_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var(REQUIRE_PG_VAR).is_ok_and(|v| v == "1") {
                panic!("{REQUIRE_PG_VAR}=1 but {PG_URL_VAR} is not set");
            }
            eprintln!("skipping the PostgreSQL variant: {PG_URL_VAR} is not set");
            None
        }
    }
}

/// A PostgreSQL database that is dropped when the guard goes.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A fresh, empty database of one backend, with its own data directory.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: TempDir,
    pg: Option<PgDatabase>,
}

impl TestDb {
    /// `None` when the PostgreSQL variant is skipped.
    pub fn create(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("caseguard.db").display());
                Some(Self {
                    backend,
                    url,
                    dir,
                    pg: None,
                })
            }
            Backend::Postgres => {
                let admin_url = pg_admin_url()?;
                let name = format!("caseguard_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = diesel::PgConnection::establish(&admin_url)
                    .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL server: {e}"));
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create database");
                let mut url = url::Url::parse(&admin_url).expect("admin URL");
                url.set_path(&name);
                Some(Self {
                    backend,
                    url: url.to_string(),
                    dir,
                    pg: Some(PgDatabase { admin_url, name }),
                })
            }
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A direct connection, outside the application's pool.
    pub fn connect(&self) -> DbConnection {
        DatabaseUrl::parse(&SecretString::from(self.url.clone()))
            .expect("test URL")
            .connect()
            .expect("connect to test database")
    }

    /// Drops the PostgreSQL database now (simulates losing the database).
    pub fn drop_postgres_database(&mut self) {
        drop(self.pg.take());
    }

    /// Settings for an application on this database, on a random port.
    pub fn settings(&self) -> Settings {
        Settings::from_overrides([
            ("listen", serde_json::json!("127.0.0.1:0")),
            ("database_url", serde_json::json!(self.url)),
            ("data_dir", serde_json::json!(self.data_dir())),
            ("shutdown_grace_secs", serde_json::json!(10)),
            ("db_connect_timeout_secs", serde_json::json!(2)),
        ])
        .expect("test settings")
    }
}

/// The start of every test's fixed clock.
pub fn test_start() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 2, 8, 30, 0)
        .single()
        .expect("valid date")
}

/// The real server, on a random port, with a fixed clock.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    #[allow(dead_code, reason = "later tests move time")]
    pub clock: FixedClock,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<io::Result<()>>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, None).await
    }

    pub async fn spawn_with(backend: Backend, extra: Option<axum::Router>) -> Option<Self> {
        let db = TestDb::create(backend)?;
        let clock = FixedClock::new(test_start());
        let app = Application::build_with(db.settings(), std::sync::Arc::new(clock.clone()), extra)
            .await
            .unwrap_or_else(|e| panic!("application failed to build: {e}"));
        let address = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel();
        let server = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Some(Self {
            address,
            client,
            db,
            clock,
            stop: Some(stop),
            server: Some(server),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Asks the server to stop; returns the task that finishes when it has.
    pub fn begin_stop(&mut self) -> JoinHandle<io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server.take().expect("server still running")
    }
}

/// Runs the real `caseguard` binary in `dir` with only the given environment.
pub fn caseguard(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_caseguard"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run caseguard")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
