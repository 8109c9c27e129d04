//! Fault: PostgreSQL stopped and started again under load.
//!
//! The shared test server is never touched: the test runs a private
//! PostgreSQL (initdb into a temporary directory, a free port, its socket in
//! that directory; as the `postgres` OS user when run as root, since initdb
//! refuses root). The real server runs on it while four clients post cases
//! with idempotency keys. Then PostgreSQL is stopped (`-m immediate`, as a
//! crash or a kill would), and the test checks that requests get a 503 with
//! the JSON error body, `/readyz` is red, `/healthz` stays green; then it is
//! started again and the same server, never restarted, serves again. At the
//! end every case acknowledged with 201 is there and readable, and no case
//! exists twice.
//!
//! Needs PostgreSQL's server binaries (`/usr/lib/postgresql/*/bin`): without
//! them the test skips, unless `CG_TEST_REQUIRE_POSTGRES=1` (CI), where it
//! fails.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use caseguard::domain::user::Role;
use diesel::prelude::*;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{Backend, REQUIRE_PG_VAR, TestApp, TestDb, free_port, stderr};

/// A PostgreSQL server of the test's own.
struct PrivatePostgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    /// Root runs the server tools as this OS user.
    run_as: Option<&'static str>,
}

fn server_binaries() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A numeric id of the postgres OS user (`-u` or `-g`).
fn postgres_id(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "running as root needs the postgres OS user"
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

impl PrivatePostgres {
    /// `None` (skip) when the server binaries are not installed.
    fn start() -> Option<Self> {
        let Some(bin) = server_binaries() else {
            assert!(
                !std::env::var(REQUIRE_PG_VAR).is_ok_and(|v| v == "1"),
                "{REQUIRE_PG_VAR}=1 but no PostgreSQL server binaries under /usr/lib/postgresql"
            );
            eprintln!("skipping: no PostgreSQL server binaries under /usr/lib/postgresql");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("caseguard-pg-fault-")
            .tempdir()
            .unwrap();
        let run_as = if is_root() {
            let (uid, gid) = (postgres_id("-u"), postgres_id("-g"));
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            Some("postgres")
        } else {
            None
        };
        let server = Self {
            dir,
            bin,
            port: free_port(),
            run_as,
        };
        let data = server.data();
        let out = server.tool(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
        );
        assert!(out.status.success(), "initdb: {}", stderr(&out));
        server.start_server();
        Some(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn tool(&self, name: &str, args: &[&str]) -> Output {
        let program = self.bin.join(name);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        command.args(args).current_dir(self.dir.path());
        command.output().unwrap()
    }

    fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        let out = self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
        assert!(out.status.success(), "pg_ctl start: {}", stderr(&out));
    }

    /// Stops the server the hard way: no checkpoint, every connection cut.
    fn stop_server(&self) {
        let out = self.tool(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        assert!(out.status.success(), "pg_ctl stop: {}", stderr(&out));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.tool("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }
}

/// Four clients posting cases; what they were told.
#[derive(Default)]
struct Load {
    acked: Mutex<BTreeMap<String, String>>,
    /// Keys sent without a 201: sent again later with the same body.
    pending: Mutex<Vec<String>>,
    unavailable: AtomicUsize,
    /// Answers that are neither 201 nor the 503 of an outage.
    unexpected: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// The JSON error body of an outage: a code and a message, nothing of the
/// database's own words.
fn assert_outage_body(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{body}");
    for internal in [
        "postgres",
        "127.0.0.1",
        "connection refused",
        "server closed",
        "r2d2",
    ] {
        assert!(
            !body.to_string().to_lowercase().contains(internal),
            "{body}"
        );
    }
}

impl Load {
    async fn post(&self, app: &TestApp, token: &str, key: &str) -> (u16, Value) {
        app.post_case(token, key, &crate::helpers::marked_case(key, 0))
            .await
    }

    async fn work(self: Arc<Self>, app: Arc<TestApp>, token: String) {
        // Bounded: a worker stops by itself after this many requests.
        for _ in 0..5_000 {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let key = self
                .pending
                .lock()
                .unwrap()
                .pop()
                .unwrap_or_else(|| format!("pgfault-{}", uuid::Uuid::new_v4().simple()));
            let (status, body) = self.post(&app, &token, &key).await;
            match status {
                201 => {
                    let id = body["id"].as_str().unwrap().to_owned();
                    let previous = self.acked.lock().unwrap().insert(key.clone(), id.clone());
                    assert!(previous.is_none_or(|p| p == id), "{key} answered two cases");
                }
                503 => {
                    assert_outage_body(&body, "service_unavailable");
                    self.unavailable.fetch_add(1, Ordering::SeqCst);
                    self.pending.lock().unwrap().push(key);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => {
                    self.unexpected
                        .lock()
                        .unwrap()
                        .push(format!("{other} {body}"));
                    self.pending.lock().unwrap().push(key);
                }
            }
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }
}

/// Waits (bounded by a count of looks, not asserted on time) for `what`.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..3_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("gave up waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_and_started_under_load() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let db = TestDb::external(Backend::Postgres, pg.url());
    let app = TestApp::spawn_on(
        db,
        None,
        &[
            ("outbox_poll_seconds", json!(0)),
            ("db_connect_timeout_secs", json!(1)),
        ],
    )
    .await
    .with_demo_orgs()
    .await;
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let token = app.token(&focal).await;
    let app = Arc::new(app);
    let load = Arc::new(Load::default());
    let workers: Vec<_> = (0..4)
        .map(|_| tokio::spawn(load.clone().work(app.clone(), token.clone())))
        .collect();

    wait_for("20 cases acknowledged", || load.acked() >= 20).await;
    let (first_key, first_id) = {
        let acked = load.acked.lock().unwrap();
        let (k, v) = acked.iter().next().unwrap();
        (k.clone(), v.clone())
    };

    pg.stop_server();
    let unavailable_before = load.unavailable.load(Ordering::SeqCst);
    wait_for("8 intake requests answered 503", || {
        load.unavailable.load(Ordering::SeqCst) >= unavailable_before + 8
    })
    .await;
    // Liveness stays green, readiness goes red, reads get the same 503.
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    assert_outage_body(&ready.json().await.unwrap(), "not_ready");
    let read = app
        .get_with_token(&format!("/api/v1/cases/{first_id}"), &token)
        .await;
    assert_eq!(read.status(), 503);
    assert_outage_body(&read.json().await.unwrap(), "service_unavailable");
    let during_outage = load.acked();

    pg.start_server();
    // The same server, never restarted: its pool reconnects.
    wait_for("20 more cases acknowledged after the restart", || {
        load.acked() >= during_outage + 20
    })
    .await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    load.stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }

    // Every request that got no 201 is sent again, as a client would.
    let pending: Vec<String> = std::mem::take(&mut *load.pending.lock().unwrap());
    for key in pending {
        let (status, body) = load.post(&app, &token, &key).await;
        assert_eq!(status, 201, "{body}");
        load.acked
            .lock()
            .unwrap()
            .insert(key, body["id"].as_str().unwrap().to_owned());
    }
    let unexpected = load.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "answers other than 201/503: {unexpected:?}"
    );

    // Everything acknowledged is there, readable, once.
    let acked = load.acked.lock().unwrap().clone();
    assert!(acked.contains_key(&first_key));
    let distinct: std::collections::BTreeSet<&String> = acked.values().collect();
    assert_eq!(distinct.len(), acked.len(), "two keys answered one case");
    app.assert_cases_readable(&token, &acked).await;
    let requests: i64 = caseguard::db::schema::case_requests::table
        .count()
        .get_result(&mut app.db.connect())
        .unwrap();
    assert_eq!(
        requests,
        i64::try_from(acked.len()).unwrap(),
        "idempotency rows"
    );
    eprintln!(
        "postgres fault: {} cases acknowledged ({during_outage} before the restart), \
         {} answers 503 while stopped, 0 lost, 0 duplicates",
        acked.len(),
        load.unavailable.load(Ordering::SeqCst)
    );
}
