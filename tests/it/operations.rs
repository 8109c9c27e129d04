//! Operations: backup and restore through the real binary on both backends,
//! damaged archives refused, a move from SQLite to PostgreSQL, two `serve`
//! processes on one PostgreSQL, and the client address behind a proxy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use caseguard::crypto::envelope::DataKey;
use caseguard::crypto::keyring::{FileKeyProvider, Keyring};
use caseguard::crypto::sealed::Binding;
use caseguard::db::DbConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Text};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, caseguard, free_port, stderr, stdout};
use crate::smtp_sink::SmtpSink;

on_both_backends!(backup_and_restore_keep_every_case_readable);

/// Every table `src/db/schema.rs` declares.
fn schema_tables() -> Vec<String> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/db/schema.rs")).unwrap();
    let mut names = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line.starts_with("diesel::table!") {
            let header = lines.next().unwrap();
            names.push(header.split_whitespace().next().unwrap().to_owned());
        }
    }
    names.sort();
    assert!(names.len() > 20, "{names:?}");
    names
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn counts(db: &TestDb) -> BTreeMap<String, i64> {
    let mut conn = db.connect();
    schema_tables()
        .into_iter()
        .map(|table| {
            let sql = format!("SELECT COUNT(*) AS n FROM {table}");
            let n = match &mut conn {
                DbConnection::Sqlite(c) => diesel::sql_query(sql).get_result::<Count>(c),
                DbConnection::Postgresql(c) => diesel::sql_query(sql).get_result::<Count>(c),
            }
            .unwrap_or_else(|e| panic!("{table}: {e}"))
            .n;
            (table, n)
        })
        .collect()
}

#[derive(QueryableByName)]
struct SealedName {
    #[diesel(sql_type = Text)]
    case_id: String,
    #[diesel(sql_type = Binary)]
    wrapped_dek: Vec<u8>,
    #[diesel(sql_type = Binary)]
    name_enc: Vec<u8>,
}

/// Every pupil's name, opened independently of the code under test's own
/// check: unwrap the case's data key, open the sealed name.
fn pupil_names(db: &TestDb, keyring: &Keyring) -> BTreeMap<String, String> {
    let sql = "SELECT p.case_id AS case_id, k.wrapped_dek AS wrapped_dek, p.name_enc AS name_enc \
               FROM pupils p JOIN case_keys k ON k.case_id = p.case_id";
    let rows: Vec<SealedName> = match &mut db.connect() {
        DbConnection::Sqlite(c) => diesel::sql_query(sql).load(c).unwrap(),
        DbConnection::Postgresql(c) => diesel::sql_query(sql).load(c).unwrap(),
    };
    rows.into_iter()
        .map(|row| {
            let dek = DataKey::unwrap(keyring, &row.case_id, &row.wrapped_dek).unwrap();
            let binding = Binding {
                table: "pupils",
                column: "name_enc",
                row_id: &row.case_id,
                case_id: &row.case_id,
            };
            let name = dek.open_text(&binding, &row.name_enc).unwrap();
            (row.case_id, name.expose().to_owned())
        })
        .collect()
}

fn env(db: &TestDb, keyring: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("CASEGUARD_DATABASE_URL", db.url.clone()),
        ("CASEGUARD_DATA_DIR", db.data_dir().display().to_string()),
        ("CASEGUARD_KEYRING", keyring.display().to_string()),
    ]
}

fn run(dir: &Path, env: &[(&'static str, String)], args: &[&str]) -> std::process::Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    caseguard(dir, &env, args)
}

/// A store loaded with the demo district (organisations, accounts of every
/// role, cases with their clocks), and its keyring.
fn populated(backend: Backend) -> Option<(TestDb, PathBuf)> {
    let db = TestDb::create(backend)?;
    let keyring = db.dir.path().join("keyring");
    let out = run(db.dir.path(), &env(&db, &keyring), &["demo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    Some((db, keyring))
}

fn assert_restored(source: &TestDb, target: &TestDb, keyring: &Path, label: &str) {
    let (before, after) = (counts(source), counts(target));
    for (table, n) in &before {
        let restored = after[table];
        match table.as_str() {
            // The restore is itself recorded (and may complete a checkpoint).
            "audit_log" => assert_eq!(restored, n + 1, "{label}: {table}"),
            "audit_checkpoints" => assert!(restored >= *n, "{label}: {table}"),
            _ => assert_eq!(restored, *n, "{label}: table {table}"),
        }
    }
    let keys = FileKeyProvider::new(keyring).read().unwrap();
    let names = pupil_names(source, &keys);
    assert!(names.len() >= 5, "the demo has cases: {names:?}");
    assert_eq!(
        pupil_names(target, &keys),
        names,
        "{label}: every case opens"
    );
    let verify = run(
        target.dir.path(),
        &env(target, keyring),
        &["audit", "verify"],
    );
    assert!(verify.status.success(), "{label}: {}", stderr(&verify));
    assert!(
        stdout(&verify).contains("audit log intact"),
        "{}",
        stdout(&verify)
    );
}

async fn backup_and_restore_keep_every_case_readable(backend: Backend) {
    let Some((source, keyring)) = populated(backend) else {
        return;
    };
    let archive = source.dir.path().join("district.cgbackup");
    let out = run(
        source.dir.path(),
        &env(&source, &keyring),
        &["backup", "--out", archive.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Every table of the schema is in the archive's listing, except the
    // derived ones, which restoring rebuilds (their counts are compared
    // with the source's below, with every other table's).
    let listing = stdout(&out);
    for table in schema_tables()
        .into_iter()
        .filter(|t| !caseguard::store::catalog::DERIVED.contains(&t.as_str()))
    {
        assert!(
            listing
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{table} "))),
            "table {table} missing from the backup:\n{listing}"
        );
    }
    // Encrypted: no name, no table name, no key material in the file.
    let bytes = std::fs::read(&archive).unwrap();
    assert!(bytes.starts_with(b"CGBACKUP"));
    let keys = FileKeyProvider::new(&keyring).read().unwrap();
    let names = pupil_names(&source, &keys);
    let text = String::from_utf8_lossy(&bytes);
    for needle in names
        .values()
        .map(String::as_str)
        .chain(["organisations", "audit_log"])
    {
        assert!(!text.contains(needle), "{needle} readable in the archive");
    }
    let keyring_text = std::fs::read_to_string(&keyring).unwrap();
    for line in keyring_text.lines().filter(|l| l.starts_with("material")) {
        let material = line.split('"').nth(1).unwrap();
        assert!(!text.contains(material), "key material in the archive");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&archive).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the archive is private");
    }
    // A second backup never overwrites the first.
    let again = run(
        source.dir.path(),
        &env(&source, &keyring),
        &["backup", "--out", archive.to_str().unwrap()],
    );
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );

    // Into an empty store of the same backend, and (from SQLite) of the other.
    let mut targets = vec![backend];
    if backend == Backend::Sqlite {
        targets.push(Backend::Postgres);
    }
    for target_backend in targets {
        let Some(target) = TestDb::create(target_backend) else {
            continue;
        };
        let out = run(
            target.dir.path(),
            &env(&target, &keyring),
            &["restore", archive.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let report = stdout(&out);
        assert!(report.contains("audit log intact"), "{report}");
        assert!(
            report.contains(&format!(
                "{n} case(s): {n} readable, 0 with content destroyed by retention, 0 unreadable",
                n = names.len()
            )),
            "{report}"
        );
        assert_restored(
            &source,
            &target,
            &keyring,
            &format!("{backend:?} -> {target_backend:?}"),
        );
        // The restored store serves: the real server starts on it and is ready.
        let settings = target.settings_with(&[("keyring", json!(keyring))]);
        let app = caseguard::startup::Application::build(settings)
            .await
            .unwrap();
        assert_eq!(
            app.state().db.backend().as_str(),
            format!("{target_backend:?}").to_lowercase()
        );
    }
}

/// Every table of a store after a refused restore is empty.
fn assert_nothing_restored(target: &TestDb) {
    let path = target.dir.path().join("caseguard.db");
    if !path.exists() {
        return;
    }
    let mut conn = target.connect();
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let DbConnection::Sqlite(c) = &mut conn else {
        unreachable!()
    };
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations'",
    )
    .load(c)
    .unwrap();
    for table in tables {
        let n = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {}", table.name))
            .get_result::<Count>(c)
            .unwrap()
            .n;
        assert_eq!(
            n, 0,
            "table {} has rows after a refused restore",
            table.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_backups_are_refused_and_restore_nothing() {
    let (source, keyring) = populated(Backend::Sqlite).unwrap();
    let archive = source.dir.path().join("district.cgbackup");
    let out = run(
        source.dir.path(),
        &env(&source, &keyring),
        &["backup", "--out", archive.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let good = std::fs::read(&archive).unwrap();
    assert!(good.len() > 1000);
    let mut flipped = good.clone();
    let middle = good.len() / 2;
    flipped[middle] ^= 0x40;
    let mut header = good.clone();
    header[8] = 9; // format version
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "flipped",
            flipped,
            // Which chunk depends on the archive's size.
            "fails its integrity check",
        ),
        (
            "truncated",
            good[..good.len() - 100].to_vec(),
            "the backup is truncated",
        ),
        (
            "half",
            good[..good.len() / 2].to_vec(),
            "the backup is truncated",
        ),
        (
            "header only",
            good[..60].to_vec(),
            "the backup is truncated",
        ),
        (
            "longer",
            [good.clone(), b"x".to_vec()].concat(),
            "unexpected data after its last chunk",
        ),
        ("version", header, "format version 9"),
        (
            "not a backup",
            b"SQLite format 3\0".to_vec(),
            "this is not a caseguard backup",
        ),
        ("empty", Vec::new(), "this is not a caseguard backup"),
    ];
    for (label, bytes, message) in cases {
        let target = TestDb::create(Backend::Sqlite).unwrap();
        let file = target.dir.path().join("damaged.cgbackup");
        std::fs::write(&file, bytes).unwrap();
        let out = run(
            target.dir.path(),
            &env(&target, &keyring),
            &["restore", file.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1), "{label}: {}", stdout(&out));
        let error = stderr(&out);
        assert!(error.contains(message), "{label}: {error}");
        assert!(error.contains("nothing was restored"), "{label}: {error}");
        assert_nothing_restored(&target);
    }

    // Another installation's keyring cannot open it, and says which key it needs.
    let stranger = TestDb::create(Backend::Sqlite).unwrap();
    let other_keyring = stranger.dir.path().join("keyring");
    assert!(
        run(
            stranger.dir.path(),
            &env(&stranger, &other_keyring),
            &["keys", "status"]
        )
        .status
        .success()
    );
    let target = TestDb::create(Backend::Sqlite).unwrap();
    let out = run(
        target.dir.path(),
        &env(&target, &other_keyring),
        &["restore", archive.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("which this keyring does not hold"),
        "{}",
        stderr(&out)
    );
    assert_nothing_restored(&target);

    // No keyring at all: a setting to fix, and no new keyring is left behind.
    let missing = target.dir.path().join("no-such-keyring");
    let out = run(
        target.dir.path(),
        &env(&target, &missing),
        &["restore", archive.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!missing.exists());

    // A store in use is never overwritten.
    let out = run(
        source.dir.path(),
        &env(&source, &keyring),
        &["restore", archive.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_moves_to_postgres() {
    let (source, keyring) = populated(Backend::Sqlite).unwrap();
    let Some(target) = TestDb::create(Backend::Postgres) else {
        return;
    };
    let out = run(
        source.dir.path(),
        &env(&source, &keyring),
        &["migrate-store", "--from", &source.url, "--to", &target.url],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("audit log intact"), "{report}");
    assert_restored(&source, &target, &keyring, "sqlite -> postgres");
    // A second move into the filled store is refused.
    let out = run(
        source.dir.path(),
        &env(&source, &keyring),
        &["migrate-store", "--from", &source.url, "--to", &target.url],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
}

/// A `caseguard serve` child process, killed when dropped.
struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_replica(db: &TestDb, keyring: &Path, smtp: &str, name: &str) -> Replica {
    let port = free_port();
    let data = db.dir.path().join(name);
    std::fs::create_dir_all(&data).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_caseguard"))
        .arg("serve")
        .current_dir(&data)
        .env_clear()
        .env("CASEGUARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("CASEGUARD_DATABASE_URL", &db.url)
        .env("CASEGUARD_DATA_DIR", &data)
        .env("CASEGUARD_KEYRING", keyring)
        .env("CASEGUARD_SMTP_URL", smtp)
        .env("CASEGUARD_OUTBOX_POLL_SECONDS", "1")
        // Tokens name the service they come from: one address for all.
        .env("CASEGUARD_PUBLIC_URL", "https://caseguard.test/")
        .env("CASEGUARD_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Replica {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn wait_ready(client: &reqwest::Client, replica: &Replica) {
    for _ in 0..400 {
        if let Ok(response) = client.get(format!("{}/readyz", replica.base)).send().await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("replica {} never became ready", replica.base);
}

fn login_body(login: &Value) -> Value {
    let totp = totp_rs::TOTP::from_url(login["totp_uri"].as_str().unwrap()).unwrap();
    json!({"email": login["email"], "password": login["password"], "totp": totp.generate_current().unwrap()})
}

#[derive(QueryableByName)]
struct OutboxState {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    attempts: i32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_sessions_and_do_background_work_once() {
    let Some(db) = TestDb::create(Backend::Postgres) else {
        return;
    };
    let keyring = db.dir.path().join("keyring");
    let demo = run(db.dir.path(), &env(&db, &keyring), &["demo", "--json"]);
    assert!(demo.status.success(), "{}", stderr(&demo));
    let logins: Vec<Value> = serde_json::from_slice(&demo.stdout).unwrap();
    // Every open clock of the demo cases is overdue: both replicas' first
    // scheduler pass races for them.
    let DbConnection::Postgresql(pg) = &mut db.connect() else {
        unreachable!()
    };
    let overdue = diesel::sql_query(
        "UPDATE deadlines SET due_at = now() AT TIME ZONE 'UTC' - interval '2 days', \
         next_check_at = now() AT TIME ZONE 'UTC' - interval '1 day' WHERE met_at IS NULL",
    )
    .execute(pg)
    .unwrap();
    assert!(overdue >= 5, "the demo has open clocks: {overdue}");

    let sink = SmtpSink::start().await;
    let a = start_replica(&db, &keyring, &sink.url(), "a");
    let b = start_replica(&db, &keyring, &sink.url(), "b");
    let client = reqwest::Client::new();
    wait_ready(&client, &a).await;
    wait_ready(&client, &b).await;

    // A browser session made on one replica works on the other.
    let focal = logins.iter().find(|l| l["role"] == "focal_point").unwrap();
    let response = client
        .post(format!("{}/api/v1/auth/session", a.base))
        .json(&login_body(focal))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    for replica in [&a, &b] {
        let me = client
            .get(format!("{}/api/v1/me", replica.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200, "session on {}", replica.base);
    }
    // A token made on B works on A; revoked on A, it is dead on B at once.
    let district = logins
        .iter()
        .find(|l| l["role"] == "district_officer")
        .unwrap();
    let token: Value = client
        .post(format!("{}/api/v1/auth/token", b.base))
        .json(&login_body(district))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let me = |base: String, token: String| {
        let client = client.clone();
        async move {
            client
                .get(format!("{base}/api/v1/me"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me(a.base.clone(), token.clone()).await, 200);
    let revoked = client
        .delete(format!("{}/api/v1/auth/token", a.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    assert_eq!(me(b.base.clone(), token.clone()).await, 401);

    // Every overdue clock escalated once, every notice sent once.
    let mut settled = false;
    for _ in 0..300 {
        let DbConnection::Postgresql(pg) = &mut db.connect() else {
            unreachable!()
        };
        let escalated = diesel::sql_query("SELECT COUNT(*) AS n FROM escalations")
            .get_result::<Count>(pg)
            .unwrap()
            .n;
        let outbox: Vec<OutboxState> = diesel::sql_query("SELECT status, attempts FROM outbox")
            .load(pg)
            .unwrap();
        if escalated == i64::try_from(overdue).unwrap()
            && !outbox.is_empty()
            && outbox.iter().all(|o| o.status == "sent")
        {
            assert!(
                outbox.iter().all(|o| o.attempts == 1),
                "a notice was tried twice"
            );
            let accepted = sink.counts_by_message_id();
            assert_eq!(accepted.len(), outbox.len(), "{accepted:?}");
            assert!(accepted.values().all(|&n| n == 1), "{accepted:?}");
            settled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(settled, "escalations and notices did not settle");
    #[derive(QueryableByName)]
    struct Duplicate {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let DbConnection::Postgresql(pg) = &mut db.connect() else {
        unreachable!()
    };
    let duplicates = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM (SELECT deadline_id, level FROM escalations \
         GROUP BY deadline_id, level HAVING COUNT(*) > 1) d",
    )
    .get_result::<Duplicate>(pg)
    .unwrap()
    .n;
    assert_eq!(duplicates, 0);
    // Both replicas keep the audit chain whole between them.
    drop((a, b));
    let verify = run(db.dir.path(), &env(&db, &keyring), &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_limit_keys_on_the_forwarded_address_from_trusted_proxies_only() {
    let attempt = |app: &TestApp, forwarded: &str| {
        let request = app
            .client
            .post(app.url("/api/v1/auth/token"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"email": "nobody@example.org", "password": "wrong password here", "totp": "000000"}));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // Behind a trusted proxy (the test client connects from 127.0.0.1).
    let behind = TestApp::spawn_configured(
        Backend::Sqlite,
        None,
        &[
            ("trusted_proxies", json!(["127.0.0.1", "10.0.0.0/8"])),
            ("login_attempts_per_minute", json!(2)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(attempt(&behind, "203.0.113.1").await, 401);
    assert_eq!(attempt(&behind, "203.0.113.1").await, 401);
    assert_eq!(attempt(&behind, "203.0.113.1").await, 429);
    // Another client behind the same proxy has its own allowance, even when
    // it forges the header (the proxy appends the real address).
    assert_eq!(attempt(&behind, "203.0.113.1, 198.51.100.7").await, 401);
    assert_eq!(attempt(&behind, "198.51.100.7, 10.1.1.1").await, 401);
    assert_eq!(attempt(&behind, "198.51.100.7").await, 429);
    // The audit log records the client, not the proxy.
    let state = behind.state.clone();
    let addresses: Vec<Option<String>> = tokio::task::spawn_blocking(move || {
        use caseguard::db::schema::audit_log::dsl as a;
        let mut conn = state.db.get().unwrap();
        a::audit_log
            .filter(a::action.eq("auth.login"))
            .select(a::client_ip)
            .load(&mut *conn)
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        addresses.contains(&Some("203.0.113.1".to_owned())),
        "{addresses:?}"
    );
    assert!(
        !addresses.contains(&Some("127.0.0.1".to_owned())),
        "{addresses:?}"
    );

    // Without trusted proxies the header is ignored: one address, one limit.
    let direct = TestApp::spawn_configured(
        Backend::Sqlite,
        None,
        &[("login_attempts_per_minute", json!(2))],
    )
    .await
    .unwrap();
    assert_eq!(attempt(&direct, "203.0.113.1").await, 401);
    assert_eq!(attempt(&direct, "203.0.113.2").await, 401);
    assert_eq!(attempt(&direct, "203.0.113.3").await, 429);
}
