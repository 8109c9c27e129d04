//! Fault: the disk under the SQLite store fills up.
//!
//! A real full filesystem: a small tmpfs mounted over the data directory
//! (database, write-ahead log, keyring). Cases are taken in, then a filler
//! file takes every free byte, and intake goes on: each request gets either
//! a 201 or a clean 507 with the JSON error body (no 500, nothing of the
//! database's words); the store stays sound (`PRAGMA integrity_check`) and
//! every acknowledged case stays readable. Then the filler goes and the same
//! server, never restarted, takes cases again.
//!
//! Mounting needs root (CI runs as root). Without it the test skips, unless
//! `CG_TEST_REQUIRE_ROOT=1` (as `.ci/run` sets), where it fails.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use caseguard::domain::user::Role;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, stderr};

const REQUIRE_ROOT_VAR: &str = "CG_TEST_REQUIRE_ROOT";

/// A tmpfs of `size` mounted at a directory, unmounted on drop.
struct SmallDisk {
    at: PathBuf,
}

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Self { at: at.to_owned() }),
            other => {
                let why = other.map_or_else(|e| e.to_string(), |o| stderr(&o));
                assert!(
                    !std::env::var(REQUIRE_ROOT_VAR).is_ok_and(|v| v == "1"),
                    "{REQUIRE_ROOT_VAR}=1 but a tmpfs cannot be mounted: {why}"
                );
                eprintln!("skipping: cannot mount a tmpfs (needs root): {why}");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).output();
    }
}

/// Fills the filesystem holding `path` to the last byte.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0xA5_u8; 4096];
    let mut written = 0_u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = file.sync_all();
    written
}

async fn post(app: &TestApp, token: &str, key: &str) -> (u16, Value) {
    app.post_case(token, key, &crate::helpers::marked_case(key, 200))
        .await
}

fn integrity(db: &TestDb) -> String {
    let path = db.data_dir().join("caseguard.db");
    let mut conn = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    conn.batch_execute("PRAGMA busy_timeout = 5000").unwrap();
    diesel::sql_query("PRAGMA integrity_check")
        .load::<IntegrityRow>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|r| r.integrity_check)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(QueryableByName)]
struct IntegrityRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_cleanly_and_recovers() {
    let mut db = TestDb::external(Backend::Sqlite, String::new());
    db.url = format!("sqlite://{}", db.data_dir().join("caseguard.db").display());
    let Some(_disk) = SmallDisk::mount(&db.data_dir(), "24m") else {
        return;
    };
    let app = TestApp::spawn_on(db, None, &[("outbox_poll_seconds", json!(0))])
        .await
        .with_demo_orgs()
        .await;
    let focal = app.user(Role::FocalPoint, "SX-AL-AB-TH").await;
    let token = app.token(&focal).await;

    let mut acked = BTreeMap::new();
    for i in 0..10 {
        let key = format!("disk-before-{i}");
        let (status, body) = post(&app, &token, &key).await;
        assert_eq!(status, 201, "{body}");
        acked.insert(key, body["id"].as_str().unwrap().to_owned());
    }

    let filler = app.db.data_dir().join("filler");
    let filled = fill(&filler);
    // Intake goes on against a full disk until SQLite has used the space it
    // already had (free pages, the write-ahead log's length): every answer a
    // 201 or a 507, bounded by a count.
    let (mut refused, mut pending) = (0, Vec::new());
    for i in 0..2_000 {
        let key = format!("disk-full-{i}");
        let (status, body) = post(&app, &token, &key).await;
        match status {
            201 => {
                acked.insert(key, body["id"].as_str().unwrap().to_owned());
            }
            507 => {
                assert_eq!(body["error"]["code"], "storage_full", "{body}");
                let text = body.to_string();
                for internal in ["disk is full", "sqlite", "caseguard.db", "database or"] {
                    assert!(!text.contains(internal), "{body}");
                }
                refused += 1;
                pending.push(key);
                if refused >= 5 {
                    break;
                }
            }
            other => panic!("answer {other} to a write on a full disk: {body}"),
        }
    }
    assert!(
        refused >= 5,
        "the disk never filled ({filled} bytes of filler)"
    );
    // Reading a case writes its audit entry first: with no room for it the
    // read is refused the same clean way (fail closed), never served
    // unaudited.
    assert_eq!(app.get("/healthz").await.status(), 200);
    let (_, first) = acked.first_key_value().unwrap();
    let read = app
        .get_with_token(&format!("/api/v1/cases/{first}"), &token)
        .await;
    assert_eq!(read.status(), 507);
    let body: Value = read.json().await.unwrap();
    assert_eq!(body["error"]["code"], "storage_full", "{body}");
    // Nothing is corrupted, and every acknowledged case is in the store.
    assert_eq!(integrity(&app.db), "ok");
    let ids: Vec<String> = caseguard::db::schema::cases::table
        .select(caseguard::db::schema::cases::id)
        .load(&mut app.db.connect())
        .unwrap();
    for (key, id) in &acked {
        assert!(ids.contains(id), "case of {key} is not in the store");
    }

    // Space comes back: the same server takes the refused requests again.
    std::fs::remove_file(&filler).unwrap();
    for key in &pending {
        let (status, body) = post(&app, &token, key).await;
        assert_eq!(status, 201, "{body}");
        acked.insert(key.clone(), body["id"].as_str().unwrap().to_owned());
    }
    let (status, body) = post(&app, &token, "disk-after").await;
    assert_eq!(status, 201, "{body}");
    acked.insert("disk-after".into(), body["id"].as_str().unwrap().to_owned());
    app.assert_cases_readable(&token, &acked).await;
    assert_eq!(integrity(&app.db), "ok");
    eprintln!(
        "disk full: {} cases acknowledged, {refused} refused with 507 while full, \
         integrity ok, 0 lost",
        acked.len()
    );
}
