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
        // As the binary does at start: files the test makes before the
        // application (a direct connection) are owner-only too.
        caseguard::files::restrict_umask();
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

    /// A database on a server the test runs itself (nothing to drop), with
    /// its own data directory.
    pub fn external(backend: Backend, url: String) -> Self {
        caseguard::files::restrict_umask();
        Self {
            backend,
            url,
            dir: tempfile::tempdir().expect("temp dir"),
            pg: None,
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

    /// The test settings with some keys changed.
    pub fn settings_with(&self, extra: &[(&str, serde_json::Value)]) -> Settings {
        let mut pairs = vec![
            ("listen", serde_json::json!("127.0.0.1:0")),
            ("database_url", serde_json::json!(self.url)),
            ("data_dir", serde_json::json!(self.data_dir())),
            ("shutdown_grace_secs", serde_json::json!(10)),
            ("db_connect_timeout_secs", serde_json::json!(2)),
            // Tests sign in often from one address; the limit has its own test.
            ("login_attempts_per_minute", serde_json::json!(10_000)),
            ("password_hash_concurrency", serde_json::json!(2)),
        ];
        pairs.extend(extra.iter().cloned());
        Settings::from_overrides(pairs).expect("test settings")
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
    pub state: caseguard::web::AppState,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub clock: FixedClock,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<io::Result<()>>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, None).await
    }

    pub async fn spawn_with(
        backend: Backend,
        extra: Option<caseguard::web::ExtraRoutes>,
    ) -> Option<Self> {
        Self::spawn_configured(backend, extra, &[]).await
    }

    pub async fn spawn_configured(
        backend: Backend,
        extra: Option<caseguard::web::ExtraRoutes>,
        settings: &[(&str, serde_json::Value)],
    ) -> Option<Self> {
        let db = TestDb::create(backend)?;
        Some(Self::spawn_on(db, extra, settings).await)
    }

    /// The real server on a given database.
    pub async fn spawn_on(
        db: TestDb,
        extra: Option<caseguard::web::ExtraRoutes>,
        settings: &[(&str, serde_json::Value)],
    ) -> Self {
        let clock = FixedClock::new(test_start());
        let app = Application::build_with(
            db.settings_with(settings),
            std::sync::Arc::new(clock.clone()),
            extra,
        )
        .await
        .unwrap_or_else(|e| panic!("application failed to build: {e}"));
        let state = app.state().clone();
        let address = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel();
        let server = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            address,
            state,
            client,
            db,
            clock,
            stop: Some(stop),
            server: Some(server),
        }
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

/// The id of the root area's administrator: the bootstrap administrator,
/// made (on first use, with the application's clock) the way `caseguard
/// serve` makes it on a first start. The harness is outside the crate and
/// cannot mint an operator capability; every account it creates is created
/// with this administrator's capability instead, as the policies grant it.
pub fn root_admin(state: &caseguard::web::AppState, conn: &mut DbConnection) -> String {
    use caseguard::authn::accounts::{self, BOOTSTRAP_EMAIL};
    let find = |conn: &mut DbConnection| {
        caseguard::db::users::find_by_email(conn, BOOTSTRAP_EMAIL)
            .unwrap()
            .map(|admin| admin.id)
    };
    if let Some(id) = find(conn) {
        return id;
    }
    // Made here, or (returning None) by a concurrent call of this test.
    accounts::bootstrap_admin(
        conn,
        &state.keyring.current(),
        &state.auditor,
        state.clock.as_ref(),
    )
    .unwrap();
    find(conn).expect(
        "accounts exist but no bootstrap administrator: make the test's first account with TestApp::user",
    )
}

/// The capability the policies grant account `user_id` for `action` on
/// organisation `org_id`, asked the way a signed-in request asks it.
pub fn capability_of(
    state: &caseguard::web::AppState,
    conn: &mut DbConnection,
    user_id: &str,
    action: caseguard::authz::Action,
    org_id: &str,
) -> caseguard::authz::capability::Capability {
    let user = caseguard::db::users::find(conn, user_id)
        .unwrap()
        .expect("the account exists");
    let actor = caseguard::audit::Actor {
        user_id: user.id,
        org_id: user.org_id,
        role: user.role,
    };
    state
        .authz
        .check(
            conn,
            &actor,
            &caseguard::audit::RequestContext::default(),
            action,
            org_id,
        )
        .unwrap_or_else(|e| {
            panic!(
                "the policies refuse a {} {} on {org_id}: {e}",
                actor.role,
                action.as_str()
            )
        })
}

/// An account made for a test, with what it signs in with.
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub password: String,
    pub totp_secret: caseguard::crypto::SecretBytes,
}

impl TestApp {
    /// Loads the demo organisation tree (no accounts).
    pub async fn with_demo_orgs(self) -> Self {
        let db = self.state.db.clone();
        let clock = self.clock.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.get().unwrap();
            caseguard::demo::load_organisations(&mut conn, &clock).unwrap();
        })
        .await
        .unwrap();
        self
    }

    /// Creates an account of `role` in organisation `org`.
    pub async fn user(&self, role: caseguard::domain::user::Role, org: &str) -> TestUser {
        use caseguard::authn::accounts::{self, NewAccount};
        use caseguard::domain::org::OrgCode;
        use caseguard::domain::user::{DisplayName, EmailAddress};
        let email = format!(
            "{}.{}@test.caseguard.invalid",
            role.as_str(),
            uuid::Uuid::new_v4().simple()
        );
        let password = format!("lúa chín vàng {} đồng xa", uuid::Uuid::new_v4().simple());
        let secret = caseguard::authn::totp::new_secret().unwrap();
        let hash = caseguard::authn::password::hash_blocking(&password).unwrap();
        let state = self.state.clone();
        let clock = self.clock.clone();
        let (account_email, account_secret, org) = (email.clone(), secret.clone(), org.to_owned());
        let created = tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().unwrap();
            let org_id = caseguard::db::organisations::find_by_code(&mut conn, &org)
                .unwrap()
                .unwrap_or_else(|| panic!("no organisation {org}"))
                .id;
            let admin = root_admin(&state, &mut conn);
            let by = capability_of(
                &state,
                &mut conn,
                &admin,
                caseguard::authz::Action::UserCreate,
                &org_id,
            );
            accounts::create(
                &mut conn,
                &state.keyring.current(),
                &state.auditor,
                &clock,
                NewAccount {
                    org: OrgCode::parse(&org).unwrap(),
                    role,
                    email: EmailAddress::parse(&account_email).unwrap(),
                    name: DisplayName::parse("Người dùng thử").unwrap(),
                    password_hash: Some(hash),
                    totp_secret: Some(account_secret),
                },
                &by,
            )
            .unwrap()
        })
        .await
        .unwrap();
        TestUser {
            id: created.user_id,
            email,
            password,
            totp_secret: secret,
        }
    }

    /// The user's TOTP code at the clock's current time.
    /// Sends a JSON request with a bearer token: the status and the body
    /// (`null` when it is not JSON).
    pub async fn call_with_token(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = self
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                self.url(path),
            )
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// [`Self::call_with_token`] as `user`, signed in afresh.
    pub async fn call_as(
        &self,
        user: &TestUser,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let token = self.token(user).await;
        self.call_with_token(&token, method, path, body).await
    }

    pub fn totp(&self, user: &TestUser) -> String {
        use caseguard::clock::Clock;
        let step = u64::try_from(self.clock.now().timestamp()).unwrap()
            / caseguard::authn::totp::STEP_SECONDS;
        caseguard::authn::totp::code_at_step(&user.totp_secret, step).unwrap()
    }

    /// The body of a correct sign-in, after moving the clock to a fresh TOTP
    /// step (each code works once).
    pub fn login_body(&self, user: &TestUser) -> serde_json::Value {
        self.clock.advance(chrono::Duration::seconds(30));
        serde_json::json!({"email": user.email, "password": user.password, "totp": self.totp(user)})
    }

    /// Signs in through the API and returns an access token.
    pub async fn token(&self, user: &TestUser) -> String {
        let response = self
            .client
            .post(self.url("/api/v1/auth/token"))
            .json(&self.login_body(user))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "sign-in failed");
        let body: serde_json::Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// The id of the organisation with `code`.
    pub async fn org_id(&self, code: &str) -> String {
        let state = self.state.clone();
        let code = code.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().unwrap();
            caseguard::db::organisations::find_by_code(&mut conn, &code)
                .unwrap()
                .unwrap()
                .id
        })
        .await
        .unwrap()
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestApp {
    /// Posts a case with an `Idempotency-Key`; the status and JSON body.
    pub async fn post_case(
        &self,
        token: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url("/api/v1/cases"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("the server itself stays up");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Every case (key → id) reads back, with its key in the pupil's name;
    /// and the store holds exactly these cases.
    pub async fn assert_cases_readable(
        &self,
        token: &str,
        cases: &std::collections::BTreeMap<String, String>,
    ) {
        use diesel::prelude::*;
        for (key, id) in cases {
            let response = self
                .get_with_token(&format!("/api/v1/cases/{id}"), token)
                .await;
            assert_eq!(response.status(), 200, "case of {key}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert!(
                body["pupil"]["name"]
                    .as_str()
                    .unwrap()
                    .contains(key.as_str()),
                "{body}"
            );
        }
        let made: i64 = caseguard::db::schema::cases::table
            .count()
            .get_result(&mut self.db.connect())
            .unwrap();
        assert_eq!(made, i64::try_from(cases.len()).unwrap(), "cases made");
    }
}

/// A valid case whose pupil's name and narrative carry `key` (so a read can
/// tell it is this case); the same key always gives the same body.
pub fn marked_case(key: &str, narrative_words: usize) -> serde_json::Value {
    serde_json::json!({
        "risk_level": "medium",
        "pupil": {"name": format!("Học sinh {key}"), "date_of_birth": "2013-04-05",
                  "sex": "female", "class": "7A", "guardian": "Mẹ"},
        "incident": {"type": "sexual_assault", "contexts": ["on_premises"], "date": "2026-10-05",
                     "location_type": "school_premises", "perpetrator_relation": "teacher_or_staff",
                     "narrative": format!("Tường thuật {key} {}", "dài ".repeat(narrative_words))}
    })
}

impl TestApp {
    /// A browser session made through the API: its cookie pair and CSRF token.
    pub async fn browser_session(&self, user: &TestUser) -> (String, String) {
        let session = self
            .client
            .post(self.url("/api/v1/auth/session"))
            .json(&self.login_body(user))
            .send()
            .await
            .unwrap();
        assert_eq!(session.status(), reqwest::StatusCode::OK);
        let cookie = session.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let csrf = session.json::<serde_json::Value>().await.unwrap()["csrf_token"]
            .as_str()
            .unwrap()
            .to_owned();
        (cookie, csrf)
    }
}

/// The single-use token of an intake form page (`name="intake_token"`).
pub fn intake_token_in(html: &str) -> String {
    html.split("name=\"intake_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the intake form carries its token")
        .to_owned()
}

impl TestApp {
    /// The newest one-time account link (activation or password) queued for
    /// `email`, read from the outbox as the person's mailbox would get it.
    pub async fn mailed_account_link(&self, email: &str) -> Option<String> {
        let state = self.state.clone();
        let email = email.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().unwrap();
            caseguard::notify::outbox::all(&mut conn)
                .unwrap()
                .into_iter()
                .rev()
                .filter(|m| {
                    m.recipient == email
                        && matches!(m.template.as_str(), "account_enrolment" | "password_reset")
                })
                .find_map(|m| {
                    let params: serde_json::Value = serde_json::from_str(&m.params).ok()?;
                    params["link"].as_str().map(str::to_owned)
                })
        })
        .await
        .unwrap()
    }
}
